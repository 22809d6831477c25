"""Webhooks of real-time products: a subscriber's address and signing
secret, where its deliveries have got to (the last event id delivered),
when the next attempt is due after a failure, and every delivery attempt
(so the subscriber sees its failed deliveries).

Revision ID: d7e2f4a10002
Revises: d7e2f4a10001
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "d7e2f4a10002"
down_revision = "d7e2f4a10001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_realtime_webhook",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("resource_id", sa.UnicodeText,
                  sa.ForeignKey("shanghai_realtime_product.resource_id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.UnicodeText, nullable=False),
        sa.Column("url", sa.UnicodeText, nullable=False),
        # Kept (not hashed): every delivery is signed with it.
        sa.Column("secret", sa.UnicodeText, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("last_event_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("shanghai_realtime_webhook_due", "shanghai_realtime_webhook", ["active", "next_attempt"])
    op.create_table(
        "shanghai_realtime_delivery",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("webhook_id", sa.UnicodeText,
                  sa.ForeignKey("shanghai_realtime_webhook.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("first_event_id", sa.BigInteger, nullable=False),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error", sa.UnicodeText, nullable=True),
    )
    op.create_index("shanghai_realtime_delivery_webhook", "shanghai_realtime_delivery", ["webhook_id", "at"])


def downgrade():
    op.drop_table("shanghai_realtime_delivery")
    op.drop_table("shanghai_realtime_webhook")
