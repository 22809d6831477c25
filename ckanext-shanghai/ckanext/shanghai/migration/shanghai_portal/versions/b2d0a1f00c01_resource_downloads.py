"""Resource downloads per day, for the portal's download counts and charts.

Revision ID: b2d0a1f00c01
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "b2d0a1f00c01"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_download",
        sa.Column("resource_id", sa.UnicodeText, nullable=False),
        sa.Column("package_id", sa.UnicodeText, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("resource_id", "day"),
    )
    op.create_index("shanghai_download_package", "shanghai_download", ["package_id"])


def downgrade():
    op.drop_table("shanghai_download")
