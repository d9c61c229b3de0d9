"""What a plugin sees of an integration when its deliveries are translated:
the done statuses the integration's mappings name, each once."""

from __future__ import annotations

from jalon.core import catalog
from jalon.core.db import unit_of_work

from jalon.connector.relay.intake import mapped_done_statuses
from tests.factories import CONTRACT, seed


def test_the_done_statuses_of_every_mapping_reach_the_view(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        seed(session)
        catalog.upsert_contract(session, {**CONTRACT, "reference": "LUM-2", "milestones": []}, actor="admin")
        catalog.upsert_mapping(session, {"integration": "jira-atelier", "project": "WEB",
                                         "contract": "LUM-2026-01", "done_statuses": ["Livré", "validé client"]},
                               actor="admin")
        catalog.upsert_mapping(session, {"integration": "jira-atelier", "project": "APP", "contract": "LUM-2",
                                         "done_statuses": ["validé client", "Recetté"]}, actor="admin")
        integration = catalog.get_integration(session, "jira-atelier")
        assert mapped_done_statuses(session, [integration.id]) == {
            integration.id: ("Livré", "validé client", "Recetté")}
        assert mapped_done_statuses(session, [integration.id + 1]) == {}
