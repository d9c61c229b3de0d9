"""A small, realistic world for tests: one entity, one client, one fixed-price
contract with three milestones, a Jira integration and its mapping."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from jalon.core import catalog, invoicing
from jalon.core.events import TaskCompleted, TaskReopened, TimeLogChanged, TimeLogDeleted, TimeLogged
from jalon.core.invoicing import LineSpec
from jalon.core.vat import Vat

ENTITY = {
    "code": "atelier",
    "name": "Atelier Numérique SAS",
    "legal_form": "SAS",
    "share_capital": "10000",
    "siren": "732829320",
    "rcs": "RCS Paris 732 829 320",
    "vat_number": "FR44732829320",
    "iban": "FR7630006000011234567890189",
    "bic": "AGRIFRPP",
    "address_line1": "12 rue des Jalons",
    "postcode": "75011",
    "city": "Paris",
    "invoice_prefix": "F",
}
CLIENT = {
    "code": "lumiere",
    "name": "Lumière Industries SA",
    "siren": "552100554",
    "vat_number": "FR96552100554",
    "address_line1": "1 avenue de la Gare",
    "postcode": "69002",
    "city": "Lyon",
    "billing_emails": ["compta@lumiere.example"],
    "payment_terms": {"kind": "net", "days": 30},
}
CONTRACT = {
    "reference": "LUM-2026-01",
    "name": "Refonte du site",
    "kind": "fixed_price",
    "entity": "atelier",
    "client": "lumiere",
    "total_amount": "24000.00",
    "milestones": [
        {"reference": "M1", "name": "Maquettes validées", "percentage": "30", "match": {"task_id": "WEB-1"}},
        {"reference": "M2", "name": "Site en recette", "percentage": "50", "match": {"label": "jalon"}},
        {"reference": "M3", "name": "Mise en production", "amount": "4800.00", "match": {"task_type": "Release"}},
    ],
}
INTEGRATION = {"key": "jira-atelier", "source": "jira", "name": "Jira Atelier", "secret": "s3cret"}
MAPPING = {"integration": "jira-atelier", "project": "WEB", "contract": "LUM-2026-01"}


def seed(session, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    config = {
        "entities": [ENTITY],
        "clients": [CLIENT],
        "contracts": [CONTRACT],
        "integrations": [INTEGRATION],
        "mappings": [MAPPING],
    }
    config.update(overrides)
    return catalog.apply_config(session, config, actor="test")


def at(minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, 10, minute, tzinfo=timezone.utc)


def completed(task: str = "WEB-1", minute: int = 0, **kw: Any) -> TaskCompleted:
    return TaskCompleted(integration="jira-atelier", project_ref="WEB", task_ref=task, occurred_at=at(minute),
                         **{"status": "Done", "actor": "alice", **kw})


def reopened(task: str = "WEB-1", minute: int = 1, **kw: Any) -> TaskReopened:
    return TaskReopened(integration="jira-atelier", project_ref="WEB", task_ref=task, occurred_at=at(minute),
                        **{"status": "In Progress", "actor": "alice", **kw})


D = Decimal


# --- helpers for the core's tests (invoices, payments, time events) ---

OTHER_CLIENT = {
    "code": "horizon",
    "name": "Horizon Logistique SARL",
    "siren": "443061841",
    "address_line1": "5 quai du Port",
    "postcode": "13002",
    "city": "Marseille",
    "payment_terms": {"kind": "net", "days": 45},
}


def line(unit_price: str, quantity: str = "1", vat: Vat | None = None, description: str = "Prestation",
         unit: str = "C62") -> LineSpec:
    return LineSpec(description, Decimal(quantity), Decimal(unit_price), unit, vat or Vat())


def draft(session, *lines: LineSpec, client: str = "lumiere", entity: str = "atelier",  # type: ignore[no-untyped-def]
          currency: str | None = None, prepaid_amount: str = "0"):
    """A draft invoice outside any contract (lines default to one of 1 000.00 at 20 %)."""
    return invoicing.create_draft(
        session,
        entity=catalog.get_entity(session, entity),
        client=catalog.get_client(session, client),
        lines=list(lines) or [line("1000.00")],
        currency=currency,
        prepaid_amount=prepaid_amount,
        actor="finance",
    )


def issued(session, *lines: LineSpec, on: date = date(2026, 11, 2), **kw: Any):  # type: ignore[no-untyped-def]
    invoice = draft(session, *lines, **kw)
    return invoicing.issue(session, invoice.id, actor="finance", issue_date=on)


def logged(worklog: str = "WL-1", seconds: int = 3600, minute: int = 0, **kw: Any) -> TimeLogged:
    return TimeLogged(integration="jira-atelier", project_ref="WEB", task_ref="WEB-5", worklog_ref=worklog,
                      seconds=seconds, **{"person_ref": "bob", "occurred_at": at(minute), "actor": "bob", **kw})


def log_changed(worklog: str = "WL-1", seconds: int = 5400, minute: int = 1, **kw: Any) -> TimeLogChanged:
    return TimeLogChanged(integration="jira-atelier", project_ref="WEB", task_ref="WEB-5", worklog_ref=worklog,
                          seconds=seconds, **{"person_ref": "bob", "occurred_at": at(minute), "actor": "bob", **kw})


def log_deleted(worklog: str = "WL-1", minute: int = 2, **kw: Any) -> TimeLogDeleted:
    return TimeLogDeleted(integration="jira-atelier", project_ref="WEB", task_ref="WEB-5", worklog_ref=worklog,
                          **{"person_ref": "bob", "occurred_at": at(minute), "actor": "bob", **kw})
