"""Developer applications (each holding one CKAN API token) and usage per
day, product and key.

Revision ID: e4a9c2b10001
Revises:
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "e4a9c2b10001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_application",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("user_id", sa.UnicodeText, nullable=False),
        # The jti of the CKAN API token (table api_token) that is its key.
        sa.Column("token_id", sa.UnicodeText, nullable=False, unique=True),
        sa.Column("name", sa.UnicodeText, nullable=False),
        sa.Column("description", sa.UnicodeText, nullable=False, server_default=""),
        sa.Column("contact", sa.UnicodeText, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked", sa.DateTime, nullable=True),
    )
    op.create_index("shanghai_application_user", "shanghai_application", ["user_id"])
    # One row per day, product ('' for calls that name none) and key ('' for
    # calls without one), flushed from Redis counters.
    op.create_table(
        "shanghai_usage",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("package_id", sa.UnicodeText, nullable=False),
        sa.Column("key_id", sa.UnicodeText, nullable=False),
        sa.Column("api_calls", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("downloads", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("day", "package_id", "key_id"),
    )
    op.create_index("shanghai_usage_package", "shanghai_usage", ["package_id", "day"])
    op.create_index("shanghai_usage_key", "shanghai_usage", ["key_id", "day"])


def downgrade():
    op.drop_table("shanghai_usage")
    op.drop_table("shanghai_application")
