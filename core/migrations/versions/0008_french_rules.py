"""the French 2026 rules: electronic addresses, the franchise, deposits, foreign currencies

- entities and clients hold their electronic invoicing address (BT-34, BT-49)
  and its scheme (``0225``, the French directory, by default);
- an entity may be under the small-business franchise (art. 293 B du CGI);
- an invoice may be a deposit invoice (acompte, type 386); a final invoice
  names the deposits it deducts (``invoice_deposits``, each deposit deducted once);
- an invoice in another currency freezes, when issued, the ECB rate it used
  and its VAT total in euros (BT-111), from the ``exchange_rates`` table;
- a line keeps the VATEX code of its exemption (BT-121).

The issued invoice's new columns join the frozen list of the update trigger.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import jalon.core.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MESSAGE = "jalon: append-only record"
# 0006's list of what an issued invoice may never change, with 0008's columns
FROZEN_BEFORE = (
    "kind", "entity_id", "client_id", "contract_id", "milestone_id", "corrects_invoice_id", "currency",
    "number", "sequence_year", "sequence_no", "issue_date", "service_date", "due_date", "purchase_order_ref",
    "note", "total_net", "total_vat", "total_gross", "prepaid_amount", "issued_at", "issued_by",
)
FROZEN_NEW = ("deposit", "exchange_rate", "exchange_rate_date", "vat_total_eur")
FROZEN_JSON = ("seller", "buyer", "payment_terms")


def _frozen_update_trigger(frozen: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(
            [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in frozen]
            + [f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in FROZEN_JSON]
        )
        op.execute("DROP TRIGGER invoices_frozen_update ON invoices")
        op.execute(
            "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices FOR EACH ROW "
            f"WHEN (OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed})) EXECUTE FUNCTION jalon_refuse()"
        )
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in frozen + FROZEN_JSON)
    op.execute("DROP TRIGGER invoices_frozen_update")
    op.execute(
        "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices "
        f"WHEN OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: issued invoice'); END"
    )


def upgrade() -> None:
    exact = jalon.core.types.ExactDecimal()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    for table in ("entities", "clients"):
        op.add_column(table, sa.Column("electronic_address", sa.String(125), nullable=True))
        op.add_column(table, sa.Column("electronic_address_scheme", sa.String(4), nullable=True))
    op.add_column("entities", sa.Column("vat_franchise", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("invoices", sa.Column("deposit", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("invoices", sa.Column("exchange_rate", exact, nullable=True))
    op.add_column("invoices", sa.Column("exchange_rate_date", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("vat_total_eur", exact, nullable=True))
    op.add_column("invoice_lines", sa.Column("vat_exemption_code", sa.String(30), nullable=True))
    op.create_table(
        "invoice_deposits",
        sa.Column("invoice_id", big, nullable=False),
        sa.Column("deposit_id", big, nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_deposits_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["deposit_id"], ["invoices.id"], name=op.f("fk_invoice_deposits_deposit_id_invoices")),
        sa.PrimaryKeyConstraint("invoice_id", "deposit_id", name=op.f("pk_invoice_deposits")),
        sa.UniqueConstraint("deposit_id", name=op.f("uq_invoice_deposits_deposit_id")),
    )
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rate", exact, nullable=False),
        sa.Column("source", sa.String(20), nullable=False, server_default="manual"),
        sa.Column("loaded_at", jalon.core.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "day", name=op.f("pk_exchange_rates")),
    )
    _frozen_update_trigger(FROZEN_BEFORE + FROZEN_NEW)


def downgrade() -> None:
    _frozen_update_trigger(FROZEN_BEFORE)
    op.drop_table("exchange_rates")
    op.drop_table("invoice_deposits")
    op.drop_column("invoice_lines", "vat_exemption_code")
    for column in ("vat_total_eur", "exchange_rate_date", "exchange_rate", "deposit"):
        op.drop_column("invoices", column)
    op.drop_column("entities", "vat_franchise")
    for table in ("clients", "entities"):
        op.drop_column(table, "electronic_address_scheme")
        op.drop_column(table, "electronic_address")
