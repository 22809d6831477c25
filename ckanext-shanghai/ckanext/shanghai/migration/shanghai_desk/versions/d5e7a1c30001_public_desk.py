"""The public desk: items (data requests, error reports, comments), their
events (the public thread and the audit trail in one), followers and
in-site notices.

Revision ID: d5e7a1c30001
Revises:
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "d5e7a1c30001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_desk_item",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("kind", sa.UnicodeText, nullable=False),
        sa.Column("title", sa.UnicodeText, nullable=False),
        sa.Column("body", sa.UnicodeText, nullable=False),
        # A data request: why it is wanted and how often it should be updated.
        sa.Column("reason", sa.UnicodeText, nullable=True),
        sa.Column("update_frequency", sa.UnicodeText, nullable=True),
        # An error report: what is wrong.
        sa.Column("error_type", sa.UnicodeText, nullable=True),
        sa.Column("package_id", sa.UnicodeText, nullable=True),
        sa.Column("resource_id", sa.UnicodeText, nullable=True),
        # NULL: a data request whose department the requester did not know;
        # sysadmins pass it on.
        sa.Column("organization_id", sa.UnicodeText, nullable=True),
        sa.Column("user_id", sa.UnicodeText, nullable=False),
        sa.Column("status", sa.UnicodeText, nullable=False),
        sa.Column("submitted", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_deadline", sa.Date, nullable=False),
        sa.Column("answer_deadline", sa.Date, nullable=False),
        sa.Column("acknowledged", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_answered", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extension_reason", sa.UnicodeText, nullable=True),
        sa.Column("closed", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.UnicodeText, nullable=True),
        sa.Column("close_link", sa.UnicodeText, nullable=True),
        sa.Column("close_date", sa.Date, nullable=True),
        sa.Column("close_note", sa.UnicodeText, nullable=True),
        sa.Column("accepted", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded", sa.Date, nullable=True),
        sa.CheckConstraint("kind in ('request', 'error', 'comment')", name="shanghai_desk_item_kind"),
        sa.CheckConstraint("status in ('new', 'acknowledged', 'answered', 'closed')",
                           name="shanghai_desk_item_status"),
    )
    op.create_index("shanghai_desk_item_queue", "shanghai_desk_item", ["organization_id", "status"])
    op.create_index("shanghai_desk_item_package", "shanghai_desk_item", ["package_id"])
    op.create_index("shanghai_desk_item_user", "shanghai_desk_item", ["user_id", "submitted"])

    op.create_table(
        "shanghai_desk_event",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("item_id", sa.UnicodeText, sa.ForeignKey("shanghai_desk_item.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", sa.UnicodeText, nullable=True),
        sa.Column("actor_name", sa.UnicodeText, nullable=True),
        sa.Column("action", sa.UnicodeText, nullable=False),
        sa.Column("organization_id", sa.UnicodeText, nullable=True),
        sa.Column("body", sa.UnicodeText, nullable=True),
        sa.Column("detail", sa.UnicodeText, nullable=True),
    )
    op.create_index("shanghai_desk_event_item", "shanghai_desk_event", ["item_id", "at"])

    op.create_table(
        "shanghai_desk_follow",
        sa.Column("item_id", sa.UnicodeText, sa.ForeignKey("shanghai_desk_item.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.UnicodeText, primary_key=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "shanghai_desk_notice",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.UnicodeText, nullable=False),
        sa.Column("item_id", sa.UnicodeText, sa.ForeignKey("shanghai_desk_item.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("event", sa.UnicodeText, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("seen", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("shanghai_desk_notice_user", "shanghai_desk_notice", ["user_id", "seen"])


def downgrade():
    op.drop_table("shanghai_desk_notice")
    op.drop_table("shanghai_desk_follow")
    op.drop_table("shanghai_desk_event")
    op.drop_table("shanghai_desk_item")
