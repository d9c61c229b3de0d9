"""Authenticity (``auth[application_token]``, and the portal when the settings
name it) and the key that makes a redelivery a duplicate."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from jalon.plugins.bitrix24 import verify

from .support import DOMAIN, MEMBER_ID, NOW, TOKEN, fixture_bytes, integration

BODY = fixture_bytes("ONTASKUPDATE__outgoing_webhook")
APP_BODY = fixture_bytes("ONTASKUPDATE__app")
PORTAL = {"member_id": MEMBER_ID, "domain": DOMAIN}


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def delivery_with(*, token: str | None = TOKEN, member_id: str | None = MEMBER_ID, domain: str | None = DOMAIN,
                  event: str = "ONTASKUPDATE", task: str = "4711", ts: str = "1793952900") -> bytes:
    fields = {"event": event, "data[FIELDS_AFTER][ID]": task, "ts": ts}
    for name, value in (("application_token", token), ("member_id", member_id), ("domain", domain)):
        if value is not None:
            fields[f"auth[{name}]"] = value
    return form(**fields)


# --- the application token -----------------------------------------------------------------------------


def test_a_delivery_carrying_the_application_token_is_authentic():
    assert verify.verify(integration(), {}, BODY, NOW) is True


def test_an_apps_delivery_is_authentic_by_its_application_token_too():
    assert verify.verify(integration(), {}, APP_BODY, NOW) is True


def test_a_json_delivery_carrying_the_token_is_authentic():
    assert verify.verify(integration(), {}, fixture_bytes("ONTASKUPDATE__json"), NOW) is True


def test_another_token_is_refused():
    assert verify.verify(integration(secrets=("another-token",)), {}, BODY, NOW) is False
    assert verify.verify(integration(), {}, delivery_with(token=TOKEN + "x"), NOW) is False
    assert verify.verify(integration(), {}, delivery_with(token=TOKEN[:-1]), NOW) is False


def test_the_previous_token_still_works_during_a_rotation_overlap():
    rotating = integration(secrets=("the-new-token", TOKEN))
    assert verify.verify(rotating, {}, BODY, NOW) is True
    assert verify.verify(rotating, {}, delivery_with(token="the-new-token"), NOW) is True
    assert verify.verify(integration(secrets=("the-new-token",)), {}, BODY, NOW) is False


@pytest.mark.parametrize("body", [
    delivery_with(token=None),
    delivery_with(token=""),
    form(event="ONTASKUPDATE", **{"data[FIELDS_AFTER][ID]": "4711"}),  # no auth at all
    form(event="ONTASKUPDATE", auth=TOKEN),  # auth is not a group
    form(**{"event": "ONTASKUPDATE", "auth[application_token][]": TOKEN}),  # the token is a list
    json.dumps({"event": "ONTASKUPDATE", "auth": {"application_token": 12345}}).encode(),
])
def test_a_delivery_without_a_token_is_refused(body):
    assert verify.verify(integration(secrets=(TOKEN, "12345")), {}, body, NOW) is False


def test_the_token_is_read_from_the_body_never_from_a_header():
    headers = {"authorization": TOKEN, "x-application-token": TOKEN}
    assert verify.verify(integration(), headers, delivery_with(token=None), NOW) is False


def test_nothing_is_authentic_for_an_integration_without_secrets():
    assert verify.verify(integration(secrets=()), {}, BODY, NOW) is False
    assert verify.verify(integration(secrets=("",)), {}, delivery_with(token=""), NOW) is False


@pytest.mark.parametrize("body", [b"", b"t=%FF", b"{not json", b"a" + b"[x]" * 40 + b"=1",
                                  b"&".join(b"f%d=1" % n for n in range(1001)) + b"&auth[application_token]=t"])
def test_an_unreadable_body_is_refused_not_raised(body):
    assert verify.verify(integration(secrets=("t",)), {}, body, NOW) is False


def test_a_token_in_non_ascii_is_compared_without_error():
    assert verify.verify(integration(secrets=("jéton",)), {}, delivery_with(token="jéton"), NOW) is True
    assert verify.verify(integration(secrets=("jéton",)), {}, delivery_with(token="jeton"), NOW) is False


# --- the portal ------------------------------------------------------------------------------------------


def test_the_portal_named_in_the_settings_must_be_the_deliverys():
    assert verify.verify(integration(settings=PORTAL), {}, BODY, NOW) is True


@pytest.mark.parametrize("changes", [
    {"member_id": "0" * 32},  # the same token from another portal
    {"member_id": None},
    {"domain": "intrus.bitrix24.fr"},
    {"domain": None},
])
def test_a_delivery_from_another_portal_is_refused_even_with_the_token(changes):
    body = delivery_with(**changes)
    assert verify.verify(integration(settings=PORTAL), {}, body, NOW) is False
    assert verify.verify(integration(), {}, body, NOW) is True  # the settings name no portal: the token suffices


def test_the_domain_is_compared_as_a_host_whatever_its_case_or_a_trailing_dot():
    body = delivery_with(domain="Atelier-Lumen.Bitrix24.FR.")
    assert verify.verify(integration(settings={"domain": DOMAIN}), {}, body, NOW) is True


def test_the_portal_alone_authenticates_nothing():
    assert verify.verify(integration(secrets=("other",), settings=PORTAL), {}, BODY, NOW) is False


# --- idempotency keys ---------------------------------------------------------------------------------------


def test_an_update_is_keyed_by_event_task_and_time():
    assert verify.idempotency_key({}, BODY) == "bitrix24:ONTASKUPDATE:4711:1793952900"


def test_an_exact_redelivery_is_a_duplicate_whatever_its_handler_or_tokens():
    """Two handlers bound to one URL, or an app's delivery beside the outgoing
    webhook's, send the same event with other envelopes: one key."""
    other_handler = BODY.replace(b"event_handler_id=31", b"event_handler_id=32")
    assert verify.idempotency_key({}, other_handler) == verify.idempotency_key({}, BODY)


def test_the_json_rendition_of_a_delivery_has_its_key():
    assert verify.idempotency_key({}, fixture_bytes("ONTASKUPDATE__json")) == "bitrix24:ONTASKUPDATE:4711:1793952900"


def test_two_updates_of_one_task_at_other_times_are_two_deliveries():
    assert verify.idempotency_key({}, delivery_with(ts="1793952901")) != verify.idempotency_key({}, BODY)


def test_updates_of_two_tasks_at_one_time_are_two_deliveries():
    assert verify.idempotency_key({}, delivery_with(task="4712")) != verify.idempotency_key({}, BODY)


def test_a_deletion_is_keyed_by_the_task_it_names_before():
    assert verify.idempotency_key({}, fixture_bytes("ONTASKDELETE__outgoing_webhook")) == \
        "bitrix24:ONTASKDELETE:4711:1793960000"


def test_a_comment_is_keyed_by_its_task_and_message_not_by_its_id_0():
    assert verify.idempotency_key({}, fixture_bytes("ONTASKCOMMENTADD__new_card_ignored")) == \
        "bitrix24:ONTASKCOMMENTADD:4711/0/9120:1793952900"


def test_a_crm_event_is_keyed_by_its_object():
    assert verify.idempotency_key({}, fixture_bytes("ONCRMDEALUPDATE__ignored")) == \
        "bitrix24:ONCRMDEALUPDATE:880:1793952900"


def test_a_key_never_exceeds_200_characters():
    key = verify.idempotency_key({}, delivery_with(task="9" * 300))
    assert key.startswith("bitrix24:") and len(key) <= 200
    assert key == verify.idempotency_key({}, delivery_with(task="9" * 300))


@pytest.mark.parametrize("body", [b"", b"not a form at all %FF", form(event="ONTASKUPDATE", ts="1"),
                                  form(ts="1", **{"data[FIELDS_AFTER][ID]": "1"}),
                                  form(event="ONTASKUPDATE", **{"data[FIELDS_AFTER][ID]": "1"})])
def test_a_body_without_event_object_or_time_leaves_the_key_to_the_connector(body):
    assert verify.idempotency_key({}, body) is None
