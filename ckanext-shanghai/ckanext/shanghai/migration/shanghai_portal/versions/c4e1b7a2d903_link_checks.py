"""The last check of each resource link (the link checker, assessment/links.py).

Revision ID: c4e1b7a2d903
Revises: b2d0a1f00c01
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "c4e1b7a2d903"
down_revision = "b2d0a1f00c01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shanghai_link_check",
        sa.Column("resource_id", sa.UnicodeText, primary_key=True),
        sa.Column("package_id", sa.UnicodeText, nullable=False),
        # The URL checked: a check of another URL than the resource's now is no check of it.
        sa.Column("url", sa.UnicodeText, nullable=False),
        sa.Column("status", sa.UnicodeText, nullable=False),  # ok | broken
        sa.Column("http_status", sa.Integer),
        sa.Column("method", sa.UnicodeText),
        sa.Column("final_url", sa.UnicodeText),
        sa.Column("code", sa.UnicodeText),
        sa.Column("reason_zh", sa.UnicodeText),
        sa.Column("reason_en", sa.UnicodeText),
        sa.Column("checked_at", sa.DateTime, nullable=False),
        # Since when the link has been broken (kept across checks while it stays so).
        sa.Column("broken_since", sa.DateTime),
    )
    op.create_index("shanghai_link_check_package", "shanghai_link_check", ["package_id"])
    op.create_index("shanghai_link_check_checked", "shanghai_link_check", ["checked_at"])


def downgrade():
    op.drop_table("shanghai_link_check")
