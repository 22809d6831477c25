"""Conditional-open data products: data-use agreements (versioned, per
department, with the city's standard text as version 1 of the default),
access requests and their grants, and the audit trail.

Revision ID: c3a1e5d20001
Revises:
Create Date: 2026-11-26
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa

revision = "c3a1e5d20001"
down_revision = None
branch_labels = None
depends_on = None

CITY_AGREEMENT_ZH = """数据使用协议（全市通用文本）

一、申请人只能将所获数据用于申请中写明的用途和使用场景，不得超出范围使用，不得转让、出售或向第三方提供。
二、申请人应采取必要的安全措施保护数据，防止泄露、篡改和丢失；涉及个人信息的，应遵守《中华人民共和国个人信息保护法》。
三、使用期限届满或授权被撤销后，申请人应停止使用并删除所获数据。
四、基于数据形成的成果公开发布时，应注明数据来源于本平台及数据提供部门。
五、违反本协议的，数据提供部门可撤销授权，并依法追究相应责任。"""

CITY_AGREEMENT_EN = """Data use agreement (the city's standard text)

1. The applicant uses the data only for the purpose and use stated in the application; the data is not passed on, sold or provided to any third party.
2. The applicant protects the data against leaks, alteration and loss; personal information is handled under the Personal Information Protection Law of the PRC.
3. When the period ends or the grant is revoked, the applicant stops using the data and deletes it.
4. Published work based on the data names this portal and the providing department as its source.
5. On a breach, the providing department may revoke the grant and pursue liability under the law."""


def upgrade():
    agreement = op.create_table(
        "shanghai_agreement",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        # NULL: the city's standard agreement, used by a department that has none of its own.
        sa.Column("organization_id", sa.UnicodeText, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("text_zh", sa.UnicodeText, nullable=False),
        sa.Column("text_en", sa.UnicodeText, nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.UnicodeText, nullable=True),
        sa.UniqueConstraint("organization_id", "version", name="shanghai_agreement_version"),
    )
    op.create_index("shanghai_agreement_city_version", "shanghai_agreement", ["version"],
                    unique=True, postgresql_where=sa.text("organization_id is null"))

    op.create_table(
        "shanghai_access_request",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("package_id", sa.UnicodeText, nullable=False),
        sa.Column("organization_id", sa.UnicodeText, nullable=False),
        sa.Column("user_id", sa.UnicodeText, nullable=False),
        sa.Column("purpose", sa.UnicodeText, nullable=False),
        sa.Column("intended_use", sa.UnicodeText, nullable=False),
        sa.Column("applicant_org", sa.UnicodeText, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("agreement_id", sa.UnicodeText, sa.ForeignKey("shanghai_agreement.id"), nullable=False),
        sa.Column("status", sa.UnicodeText, nullable=False),
        sa.Column("submitted", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("decided", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.UnicodeText, nullable=True),
        sa.Column("decision_reason", sa.UnicodeText, nullable=True),
        sa.Column("expires", sa.Date, nullable=True),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.UnicodeText, nullable=True),
        sa.Column("revoke_reason", sa.UnicodeText, nullable=True),
        # The applicant has not yet seen the latest decision in the portal.
        sa.Column("unseen", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("status in ('pending', 'approved', 'rejected', 'revoked', 'withdrawn')",
                           name="shanghai_access_request_status"),
    )
    op.create_index("shanghai_access_request_user", "shanghai_access_request", ["user_id", "package_id"])
    op.create_index("shanghai_access_request_queue", "shanghai_access_request", ["organization_id", "status"])
    # One open application per user and product.
    op.create_index("shanghai_access_request_one_pending", "shanghai_access_request",
                    ["user_id", "package_id"], unique=True, postgresql_where=sa.text("status = 'pending'"))

    op.create_table(
        "shanghai_access_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", sa.UnicodeText, nullable=True),
        sa.Column("actor_name", sa.UnicodeText, nullable=True),
        sa.Column("action", sa.UnicodeText, nullable=False),
        sa.Column("organization_id", sa.UnicodeText, nullable=True),
        sa.Column("package_id", sa.UnicodeText, nullable=True),
        sa.Column("resource_id", sa.UnicodeText, nullable=True),
        sa.Column("request_id", sa.UnicodeText, nullable=True),
        sa.Column("detail", sa.UnicodeText, nullable=True),
    )
    op.create_index("shanghai_access_audit_org", "shanghai_access_audit", ["organization_id", "at"])
    op.create_index("shanghai_access_audit_package", "shanghai_access_audit", ["package_id", "at"])

    op.bulk_insert(agreement, [{
        "id": "city-standard-1", "organization_id": None, "version": 1,
        "text_zh": CITY_AGREEMENT_ZH, "text_en": CITY_AGREEMENT_EN,
        "created": dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc), "created_by": None,
    }])


def downgrade():
    op.drop_table("shanghai_access_audit")
    op.drop_table("shanghai_access_request")
    op.drop_table("shanghai_agreement")
