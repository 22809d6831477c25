"""Real-time data products: which DataStore table is a keyed real-time feed
(its key and observation-time columns, its declared interval), and the
departments' push keys (only a hash is kept; a key is shown once).

The observations themselves (history, partitioned by day) live beside the
table in the DataStore's database; see ckanext.shanghai.realtime.store.

Revision ID: d7e2f4a10001
Revises:
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "d7e2f4a10001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_realtime_product",
        sa.Column("resource_id", sa.UnicodeText, primary_key=True),
        sa.Column("package_id", sa.UnicodeText, nullable=False),
        sa.Column("organization_id", sa.UnicodeText, nullable=False),
        sa.Column("key_field", sa.UnicodeText, nullable=False),
        sa.Column("time_field", sa.UnicodeText, nullable=False),
        sa.Column("refresh_seconds", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.UnicodeText, nullable=True),
        sa.CheckConstraint("refresh_seconds >= 10", name="shanghai_realtime_product_interval"),
    )
    op.create_index("shanghai_realtime_product_package", "shanghai_realtime_product", ["package_id"])
    op.create_index("shanghai_realtime_product_org", "shanghai_realtime_product", ["organization_id"])

    op.create_table(
        "shanghai_realtime_push_key",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("resource_id", sa.UnicodeText,
                  sa.ForeignKey("shanghai_realtime_product.resource_id", ondelete="CASCADE"), nullable=False),
        sa.Column("organization_id", sa.UnicodeText, nullable=False),
        # sha256 of the key: the key itself is shown once and never stored.
        sa.Column("key_hash", sa.UnicodeText, nullable=False, unique=True),
        sa.Column("hint", sa.UnicodeText, nullable=False),
        sa.Column("label", sa.UnicodeText, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.UnicodeText, nullable=True),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.UnicodeText, nullable=True),
    )
    op.create_index("shanghai_realtime_push_key_resource", "shanghai_realtime_push_key", ["resource_id"])


def downgrade():
    op.drop_table("shanghai_realtime_push_key")
    op.drop_table("shanghai_realtime_product")
