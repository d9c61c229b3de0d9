"""64-bit ids for the tables that grow without bound

On PostgreSQL, the primary keys of the tables that grow with traffic
(deliveries, outbox messages, audit records, time entries, invoices and what
hangs off them, job runs) and every column referring to one become BIGINT,
their sequences too (a SERIAL's sequence is ``AS integer`` and would stop at
2^31 - 1 whatever its column). Each table is rewritten once, under a lock:
on a large database, plan the upgrade for a quiet moment.

The invoices' frozen-update trigger names ``corrects_invoice_id`` in its WHEN
clause, which PostgreSQL refuses to retype under it: it is dropped and created
again, as 0004 left it; the issued line guard's function reads the invoice id
into a BIGINT. SQLite's INTEGER is 64-bit already, and its INTEGER PRIMARY
KEY stays the rowid: nothing to do there.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# tables whose id grows with traffic
BIG_TABLES = (
    "invoices", "invoice_lines", "payments", "payment_allocations", "time_entries", "task_states",
    "audit_records", "deliveries", "outbox_messages", "job_runs", "invoice_documents", "approval_links",
)
# the columns that refer to one of them
BIG_REFERENCES = (
    ("invoices", "corrects_invoice_id"), ("invoice_lines", "invoice_id"), ("payment_allocations", "payment_id"),
    ("payment_allocations", "invoice_id"), ("outbox_messages", "delivery_id"), ("outbox_messages", "invoice_id"),
    ("invoice_documents", "invoice_id"), ("approval_links", "invoice_id"),
)

# 0004's list of what an issued invoice may never change
FROZEN = (
    "kind", "entity_id", "client_id", "contract_id", "milestone_id", "corrects_invoice_id", "currency",
    "number", "sequence_year", "sequence_no", "issue_date", "service_date", "due_date", "purchase_order_ref",
    "note", "total_net", "total_vat", "total_gross", "prepaid_amount", "issued_at", "issued_by",
)
FROZEN_JSON = ("seller", "buyer", "payment_terms")


def _frozen_update_trigger() -> str:
    changed = " OR ".join(
        [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN]
        + [f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in FROZEN_JSON]
    )
    return ("CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices FOR EACH ROW "
            f"WHEN (OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed})) EXECUTE FUNCTION jalon_refuse()")


def _issued_line_guard(parent_type: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION jalon_refuse_issued_line() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            parent {parent_type} := CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
        BEGIN
            IF (SELECT status FROM invoices WHERE id = parent) <> 'draft' THEN
                RAISE EXCEPTION 'jalon: append-only record: line of an issued invoice'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$
        """


def _retype_ids(sql_type: str) -> None:
    """The ids, the columns referring to them and the ids' sequences as ``sql_type``."""
    bind = op.get_bind()
    op.execute("DROP TRIGGER invoices_frozen_update ON invoices")
    for table in BIG_TABLES:
        # one ALTER TABLE per table: its rows are rewritten once
        columns = ["id", *(column for referring, column in BIG_REFERENCES if referring == table)]
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {sql_type}" for c in columns))
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}).scalar()
        if sequence is not None:
            op.execute(f"ALTER SEQUENCE {sequence} AS {sql_type}")
    op.execute(_frozen_update_trigger())
    op.execute(_issued_line_guard(sql_type))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _retype_ids("bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _retype_ids("integer")
