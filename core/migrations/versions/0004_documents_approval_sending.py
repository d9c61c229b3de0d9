"""documents, approval links, entity billing policy, delivery address, deposits

Adds what issue 5 needs: the rendered documents of issued invoices (append-only),
one-click approval links, the entity's printed payment conditions and its
auto-issue policy, the client's delivery address, the deposits already paid on
an invoice, and the invoice an outbox message is about.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jalon.core.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MESSAGE = "jalon: append-only record"
# 0002's list of what an issued invoice may never change, with the deposits added
FROZEN = (
    "kind", "entity_id", "client_id", "contract_id", "milestone_id", "corrects_invoice_id", "currency",
    "number", "sequence_year", "sequence_no", "issue_date", "service_date", "due_date", "purchase_order_ref",
    "note", "total_net", "total_vat", "total_gross", "prepaid_amount", "issued_at", "issued_by",
)
FROZEN_JSON = ("seller", "buyer", "payment_terms")


def _frozen_invoice_trigger(dialect: str) -> None:
    if dialect == "postgresql":
        changed = " OR ".join(
            [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN]
            + [f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in FROZEN_JSON]
        )
        op.execute("DROP TRIGGER invoices_frozen_update ON invoices")
        op.execute(
            "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices FOR EACH ROW "
            f"WHEN (OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed})) EXECUTE FUNCTION jalon_refuse()"
        )
        op.execute(
            "CREATE TRIGGER invoice_documents_append_only BEFORE UPDATE OR DELETE ON invoice_documents "
            "FOR EACH ROW EXECUTE FUNCTION jalon_refuse()"
        )
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN + FROZEN_JSON)
    op.execute("DROP TRIGGER invoices_frozen_update")
    op.execute(
        "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices "
        f"WHEN OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: issued invoice'); END"
    )
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER invoice_documents_no_{action.lower()} BEFORE {action} ON invoice_documents "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: invoice_documents'); END"
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    money = jalon.core.types.ExactDecimal()
    when = jalon.core.types.UTCDateTime(timezone=True)
    # plain ADD COLUMNs: no table is rebuilt, so 0002's triggers stay in place
    op.add_column("entities", sa.Column("operation_nature", sa.String(10), nullable=False, server_default="services"))
    op.add_column("entities", sa.Column("late_penalty_rate", money, nullable=True))
    op.add_column("entities", sa.Column("early_payment_discount", sa.String(300), nullable=True))
    op.add_column("entities", sa.Column("auto_issue_below", money, nullable=True))
    for name, length in (("delivery_address_line1", 200), ("delivery_address_line2", 200),
                         ("delivery_postcode", 20), ("delivery_city", 100), ("delivery_country_code", 2)):
        op.add_column("clients", sa.Column(name, sa.String(length), nullable=True))
    op.add_column("invoices", sa.Column("prepaid_amount", money, nullable=False, server_default="0"))
    if dialect == "postgresql":
        op.add_column("outbox_messages", sa.Column("invoice_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_outbox_messages_invoice_id_invoices"), "outbox_messages", "invoices",
                              ["invoice_id"], ["id"])
    else:  # SQLite adds a foreign key only by rebuilding the table (it has no trigger)
        with op.batch_alter_table("outbox_messages") as batch:
            batch.add_column(sa.Column("invoice_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(op.f("fk_outbox_messages_invoice_id_invoices"), "invoices",
                                     ["invoice_id"], ["id"])
    op.create_index(op.f("ix_outbox_messages_invoice_id"), "outbox_messages", ["invoice_id"])

    op.create_table(
        "invoice_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.CheckConstraint("kind IN ('pdf', 'xml')", name=op.f("ck_invoice_documents_kind")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_invoice_documents_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_documents")),
        sa.UniqueConstraint("invoice_id", "kind", name=op.f("uq_invoice_documents_invoice_id")),
    )
    op.create_table(
        "approval_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        sa.Column("used_by", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_approval_links_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_links")),
        sa.UniqueConstraint("digest", name=op.f("uq_approval_links_digest")),
    )
    op.create_index(op.f("ix_approval_links_invoice_id"), "approval_links", ["invoice_id"])
    _frozen_invoice_trigger(dialect)


def downgrade() -> None:
    raise NotImplementedError("jalon migrations go forward only: restore a backup to go back")
