"""Harvest records, job reports and rejected records.

Revision ID: a1c0de5e7b01
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "a1c0de5e7b01"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # One row per record identity a source has ever delivered: what it
    # became in the catalog and the content hash it had, so a run can tell
    # added / updated / unchanged / withdrawn without loading the catalog.
    op.create_table(
        "shanghai_harvest_record",
        sa.Column("source_id", sa.UnicodeText, nullable=False),
        sa.Column("identity", sa.UnicodeText, nullable=False),
        sa.Column("package_id", sa.UnicodeText),
        sa.Column("content_hash", sa.UnicodeText),
        sa.Column("state", sa.UnicodeText, nullable=False, server_default="pending"),
        sa.Column("last_seen_job_id", sa.UnicodeText),
        sa.Column("withdrawn_reason", sa.UnicodeText),
        sa.Column("modified", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("source_id", "identity"),
    )
    op.create_index("shanghai_harvest_record_package", "shanghai_harvest_record", ["package_id"])
    op.create_index("shanghai_harvest_record_seen", "shanghai_harvest_record",
                    ["source_id", "last_seen_job_id"])

    op.create_table(
        "shanghai_harvest_report",
        sa.Column("job_id", sa.UnicodeText, primary_key=True),
        sa.Column("source_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("outcome", sa.UnicodeText, nullable=False, server_default="running"),
        sa.Column("records_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("added", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("withdrawn", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message_zh", sa.UnicodeText),
        sa.Column("message_en", sa.UnicodeText),
        sa.Column("started", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.Column("finished", sa.DateTime),
    )

    op.create_table(
        "shanghai_harvest_rejection",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("identity", sa.UnicodeText),
        sa.Column("position", sa.Integer),
        sa.Column("field", sa.UnicodeText),
        sa.Column("reason_zh", sa.UnicodeText, nullable=False),
        sa.Column("reason_en", sa.UnicodeText, nullable=False),
    )


def downgrade():
    op.drop_table("shanghai_harvest_rejection")
    op.drop_table("shanghai_harvest_report")
    op.drop_table("shanghai_harvest_record")
