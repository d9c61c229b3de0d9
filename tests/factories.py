"""A small, realistic world for tests: one entity, one client, one fixed-price
contract with three milestones, a Jira integration and its mapping."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from jalon.core import catalog
from jalon.core.events import TaskCompleted, TaskReopened

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
                         status="Done", actor="alice", **kw)


def reopened(task: str = "WEB-1", minute: int = 1, **kw: Any) -> TaskReopened:
    return TaskReopened(integration="jira-atelier", project_ref="WEB", task_ref=task, occurred_at=at(minute),
                        status="In Progress", actor="alice", **kw)


D = Decimal
