"""Rejections and warnings keep their code and raw value; reports their
message's code and a warning count; records where a job first met them.

A rejection or warning is one message (a stable code, the field, the raw
value, the text in Chinese and in English) from where it is raised to the
report; before this, the code and the raw value were lost on the way.
``shanghai_harvest_rejection`` also holds the warnings of records that were
taken (``kind``). ``shanghai_harvest_record`` notes the position and content
hash with which the job in ``last_seen_job_id`` first met an identity, so a
later repeat in another batch of the same job is told apart as an exact
``duplicate`` or a ``conflicting-duplicate`` of that record.

Revision ID: d2b7e4c91a03
Revises: a1c0de5e7b01
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "d2b7e4c91a03"
down_revision = "a1c0de5e7b01"
branch_labels = None
depends_on = None


def upgrade():
    # Rows written before this revision were all rejections; their code was
    # not kept, so they say so.
    op.add_column("shanghai_harvest_rejection",
                  sa.Column("kind", sa.UnicodeText, nullable=False, server_default="rejection"))
    op.add_column("shanghai_harvest_rejection",
                  sa.Column("code", sa.UnicodeText, nullable=False, server_default="unrecorded"))
    op.add_column("shanghai_harvest_rejection", sa.Column("value", sa.UnicodeText))
    # From now on every row states its kind and code.
    op.alter_column("shanghai_harvest_rejection", "kind", server_default=None)
    op.alter_column("shanghai_harvest_rejection", "code", server_default=None)
    op.add_column("shanghai_harvest_report",
                  sa.Column("warnings", sa.Integer, nullable=False, server_default="0"))
    op.add_column("shanghai_harvest_report", sa.Column("message_code", sa.UnicodeText))
    op.add_column("shanghai_harvest_record", sa.Column("seen_position", sa.Integer))
    op.add_column("shanghai_harvest_record", sa.Column("seen_hash", sa.UnicodeText))


def downgrade():
    op.drop_column("shanghai_harvest_record", "seen_hash")
    op.drop_column("shanghai_harvest_record", "seen_position")
    op.drop_column("shanghai_harvest_report", "message_code")
    op.drop_column("shanghai_harvest_report", "warnings")
    op.drop_column("shanghai_harvest_rejection", "value")
    op.drop_column("shanghai_harvest_rejection", "code")
    op.drop_column("shanghai_harvest_rejection", "kind")
