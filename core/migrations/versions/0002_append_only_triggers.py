"""Append-only records enforced by the database itself

The ORM guard (jalon.core.guards) refuses changes with a clear message; these
triggers are the backstop for anything that goes around the ORM (raw SQL, bulk
updates, a console session): an issued invoice's legal content, its lines,
payments, their allocations and the audit trail cannot be changed or deleted.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# what an issued invoice may never change (its status still moves with payments)
FROZEN = (
    "kind", "entity_id", "client_id", "contract_id", "milestone_id", "corrects_invoice_id", "currency",
    "number", "sequence_year", "sequence_no", "issue_date", "service_date", "due_date", "purchase_order_ref",
    "note", "total_net", "total_vat", "total_gross", "issued_at", "issued_by",
)
FROZEN_JSON = ("seller", "buyer", "payment_terms")
APPEND_ONLY = ("payments", "payment_allocations", "audit_records")
MESSAGE = "jalon: append-only record"


def _sqlite_upgrade() -> None:
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {table}'); END"
            )
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN + FROZEN_JSON)
    op.execute(
        "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices "
        f"WHEN OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed}) "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: issued invoice'); END"
    )
    op.execute(
        "CREATE TRIGGER invoices_frozen_delete BEFORE DELETE ON invoices "
        f"WHEN OLD.number IS NOT NULL OR OLD.status <> 'draft' "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: issued invoice'); END"
    )
    for action, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER invoice_lines_frozen_{action.lower()} BEFORE {action} ON invoice_lines "
            f"WHEN (SELECT status FROM invoices WHERE id = {row}.invoice_id) <> 'draft' "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: line of an issued invoice'); END"
        )


def _postgresql_upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION jalon_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE}: %', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION jalon_refuse()"
        )
    changed = " OR ".join(
        [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN]
        + [f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in FROZEN_JSON]
    )
    op.execute(
        "CREATE TRIGGER invoices_frozen_update BEFORE UPDATE ON invoices FOR EACH ROW "
        f"WHEN (OLD.status <> 'draft' AND (NEW.status = 'draft' OR {changed})) EXECUTE FUNCTION jalon_refuse()"
    )
    op.execute(
        "CREATE TRIGGER invoices_frozen_delete BEFORE DELETE ON invoices FOR EACH ROW "
        "WHEN (OLD.number IS NOT NULL OR OLD.status <> 'draft') EXECUTE FUNCTION jalon_refuse()"
    )
    op.execute(
        """
        CREATE FUNCTION jalon_refuse_issued_line() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            parent integer := CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
        BEGIN
            IF (SELECT status FROM invoices WHERE id = parent) <> 'draft' THEN
                RAISE EXCEPTION 'jalon: append-only record: line of an issued invoice'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines "
        "FOR EACH ROW EXECUTE FUNCTION jalon_refuse_issued_line()"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP TRIGGER invoices_frozen_update ON invoices")
        op.execute("DROP TRIGGER invoices_frozen_delete ON invoices")
        op.execute("DROP TRIGGER invoice_lines_frozen ON invoice_lines")
        op.execute("DROP FUNCTION jalon_refuse_issued_line()")
        op.execute("DROP FUNCTION jalon_refuse()")
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(f"DROP TRIGGER {table}_no_delete")
    for name in ("invoices_frozen_update", "invoices_frozen_delete", "invoice_lines_frozen_insert",
                 "invoice_lines_frozen_update", "invoice_lines_frozen_delete"):
        op.execute(f"DROP TRIGGER {name}")
