"""Bitrix24's REST client against Bitrix24's answers, mocked with ``responses``:
the two ways in (an inbound webhook, an OAuth app), each failure ending in
the documented exception, the limits waited out at Bitrix24's pace
(``QUERY_LIMIT_EXCEEDED``, ``OPERATION_TIME_LIMIT``), the app's token
refreshed and stored through the kit before it is used, ``batch`` and
paging, on a fake clock that sleeping moves (nothing really sleeps)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from jalon.connector.net.http import (
    BadResponse,
    CredentialsChanged,
    CredentialStore,
    NotFound,
    RateBudgets,
    RateLimited,
    RestClient,
    Unauthorized,
    Unavailable,
)
from jalon.connector.plugin.types import IntegrationView, PermanentFailure
from jalon.plugins.bitrix24.client import (
    BURST,
    OAUTH_URL,
    REFUSED,
    Bitrix24Client,
    php_query,
    webhook_base,
)

EPOCH = 1_800_000_000.0  # the fake clock's start, a Unix time
CODE = "k3yC0deS3cr3t77"
WEBHOOK = f"https://atelier.bitrix24.eu/rest/1/{CODE}/"
PORTAL = "https://atelier.bitrix24.eu/rest/"
ACCESS = "acc3ss-T0KEN-old"
REFRESH = "refr3sh-T0KEN-old"
CLIENT_SECRET = "cl1ent-S3CRET"


class Clock:
    def __init__(self, now: float = EPOCH):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Store(CredentialStore):
    """The kit's credential store as a plugin sees it, in memory."""

    def __init__(self, credentials: Mapping[str, Any]):
        self.credentials = dict(credentials)
        self.saved: list[dict[str, Any]] = []
        self.refusals: list[str] = []

    def load(self) -> Mapping[str, Any]:
        return dict(self.credentials)

    def save(self, changes: Mapping[str, Any], *, expected: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        if expected and any(self.credentials.get(k) != v for k, v in expected.items()):
            raise CredentialsChanged(self.credentials)
        self.credentials.update(changes)
        self.saved.append(dict(changes))
        return dict(self.credentials)

    def refused(self, reason: str) -> None:
        self.refusals.append(reason)


def app_credentials(**changes: Any) -> dict[str, Any]:
    return {"access_token": ACCESS, "refresh_token": REFRESH, "client_id": "local.6a1b2c", "client_secret":
            CLIENT_SECRET, "expires_at": int(EPOCH) + 1800, **changes}


def integration(credentials: Mapping[str, Any] | None = None) -> IntegrationView:
    return IntegrationView(key="b24-atelier", source="bitrix24", name="Bitrix24", base_url="https://atelier.bitrix24.eu",
                           settings={"domain": "atelier.bitrix24.eu"},
                           credentials={"webhook_url": WEBHOOK} if credentials is None else credentials)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def http(clock: Clock, store: CredentialStore | None = None, *, max_retries: int = 2) -> RestClient:
    return RestClient(None, timeout=2.0, max_retries=max_retries, allow_private_network=True, sleep=clock.sleep,
                      clock=clock, budgets=RateBudgets(clock=clock), credentials=store)


def webhook_client(clock: Clock, **options: Any) -> Bitrix24Client:
    return Bitrix24Client(http(clock, **options), integration())


def app_client(clock: Clock, store: Store) -> Bitrix24Client:
    return Bitrix24Client(http(clock, store), integration(store.load()))


def task(task_id: str = "482", **changes: Any) -> dict[str, Any]:
    return {"id": task_id, "title": "Recette du lot 1", "status": "5", "groupId": "12",
            "closedDate": "2026-11-02T10:15:00+01:00", "changedDate": "2026-11-02T10:15:00+01:00",
            "timeSpentInLogs": "5400", **changes}


def body_of(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# --- the two ways in -------------------------------------------------------------------------------


@responses.activate
def test_an_inbound_webhook_posts_json_to_its_own_address_with_no_token(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", json={"result": {"task": task()}})

    assert webhook_client(clock).task("482")["closedDate"] == "2026-11-02T10:15:00+01:00"

    call = responses.calls[0]
    assert body_of(call)["taskId"] == "482" and "TIME_SPENT_IN_LOGS" in body_of(call)["select"]
    assert urlsplit(call.request.url).query == ""


@responses.activate
def test_an_app_posts_to_the_portal_with_its_access_token_as_auth(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{PORTAL}tasks.task.get.json", json={"result": {"task": task()}})

    app_client(clock, Store(app_credentials())).task("482")

    assert query_of(responses.calls[0])["auth"] == [ACCESS]


@pytest.mark.parametrize("url", [
    "http://atelier.bitrix24.eu/rest/1/abc/",  # not https
    "https://atelier.bitrix24.eu/rest/abc/def/",  # no user id
    "https://atelier.bitrix24.eu/api/1/abc/",
    "https://atelier.bitrix24.eu/rest/1/abc/tasks.task.get",
])
def test_a_webhook_url_of_another_shape_is_refused_without_showing_it(url, clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentFailure) as raised:
        Bitrix24Client(http(clock), integration({"webhook_url": url}))

    assert "abc" not in str(raised.value) and "https://<portal>/rest/<user id>/<code>/" in str(raised.value)


def test_a_webhook_url_is_read_with_or_without_its_last_slash() -> None:
    assert webhook_base(WEBHOOK.rstrip("/")) == WEBHOOK


def test_plain_http_is_for_a_portal_on_the_companys_own_network_only() -> None:
    url = f"http://bitrix.intranet.lan/rest/1/{CODE}/"

    assert webhook_base(url, allow_http=True) == url
    with pytest.raises(PermanentFailure):
        webhook_base(url)


def test_batch_subqueries_are_written_as_php_writes_them() -> None:
    assert php_query({"TASKID": "7", "ORDER": {"ID": "asc"}, "SELECT": ["ID", "SECONDS"], "EMPTY": []}) == \
        "TASKID=7&ORDER%5BID%5D=asc&SELECT%5B0%5D=ID&SELECT%5B1%5D=SECONDS"


# --- Bitrix24's failures ---------------------------------------------------------------------------------


@responses.activate
def test_a_refused_token_is_unauthorized_at_once_and_shows_no_credential(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", status=401,
                   json={"error": "invalid_token", "error_description": "Unable to authorize user"})

    with pytest.raises(Unauthorized) as raised:
        webhook_client(clock).task("482")

    assert len(responses.calls) == 1 and clock.slept == []
    message = str(raised.value)
    assert "invalid_token" in message and "--webhook-url" in message
    assert CODE not in message and "/rest/1/" not in message


@responses.activate
def test_query_limit_exceeded_is_waited_out_and_the_answer_kept(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{WEBHOOK}tasks.task.get.json"
    responses.post(url, status=503, json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
    responses.post(url, json={"result": {"task": task()}})

    assert webhook_client(clock).task("482")["id"] == "482"

    assert len(responses.calls) == 2
    assert sum(clock.slept) == pytest.approx(1.0)  # the bucket drains two a second: one second frees room


@responses.activate
def test_query_limit_exceeded_every_time_raises_rather_than_drop_anything(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", status=503, json={"error": "QUERY_LIMIT_EXCEEDED"})

    with pytest.raises(RateLimited) as raised:
        webhook_client(clock, max_retries=2).task("482")

    assert len(responses.calls) == 3 and raised.value.status == 503


@responses.activate
def test_a_near_operation_time_limit_is_waited_until_its_reset(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{WEBHOOK}tasks.task.get.json"
    responses.post(url, status=429, json={"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked",
                                          "time": {"operating": 481.2, "operating_reset_at": int(EPOCH) + 12}})
    responses.post(url, json={"result": {"task": task()}})

    webhook_client(clock).task("482")

    assert clock.slept == [pytest.approx(12.0)]


@responses.activate
def test_a_far_operation_time_limit_is_left_to_a_later_run(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", status=429,
                   json={"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": int(EPOCH) + 300}})

    with pytest.raises(RateLimited) as raised:
        webhook_client(clock).task("482")

    assert raised.value.retry_after == pytest.approx(300.0)
    assert len(responses.calls) == 1 and clock.slept == []


@responses.activate
def test_a_500_is_unavailable(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", status=500, body="<html>oops</html>")

    with pytest.raises(Unavailable):
        webhook_client(clock).task("482")
    assert len(responses.calls) == 1


@responses.activate
def test_a_timeout_is_unavailable_after_the_retries(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", body=requests.Timeout("slow"))

    with pytest.raises(Unavailable) as raised:
        webhook_client(clock, max_retries=1).task("482")

    assert len(responses.calls) == 2 and CODE not in str(raised.value)


@responses.activate
def test_an_answer_that_is_not_json_is_a_bad_response(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", body="not json", content_type="text/html")

    with pytest.raises(BadResponse) as raised:
        webhook_client(clock).task("482")
    assert CODE not in str(raised.value)


@responses.activate
def test_an_empty_result_is_no_task(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", json={"result": []})

    assert webhook_client(clock).task("482") is None


@responses.activate
def test_the_client_paces_itself_within_the_portals_bucket(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", json={"result": {"task": task()}})
    bitrix = webhook_client(clock)

    for _ in range(BURST + 4):
        bitrix.task("482")

    assert clock.slept == [pytest.approx(0.5)] * 4  # a burst, then two a second


# --- the OAuth app's tokens ---------------------------------------------------------------------------


def oauth_answer(**changes: Any) -> dict[str, Any]:
    return {"access_token": "acc3ss-T0KEN-new", "refresh_token": "refr3sh-T0KEN-new", "expires_in": 3600,
            "client_endpoint": PORTAL, "member_id": "d897063e1ce7c5eb9f04b9751eef5915", **changes}


@responses.activate
def test_an_expired_token_is_refreshed_stored_then_the_call_retried(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{PORTAL}tasks.task.get.json"
    responses.post(url, status=401, json={"error": "expired_token", "error_description": "The access token expired"})
    responses.get(OAUTH_URL, json=oauth_answer())
    responses.post(url, json={"result": {"task": task()}})
    store = Store(app_credentials())

    assert app_client(clock, store).task("482")["id"] == "482"

    assert store.saved == [{"access_token": "acc3ss-T0KEN-new", "refresh_token": "refr3sh-T0KEN-new",
                            "expires_at": int(EPOCH) + 3600, "client_endpoint": PORTAL}]
    refresh = query_of(responses.calls[1])
    assert refresh["grant_type"] == ["refresh_token"] and refresh["refresh_token"] == [REFRESH]
    assert refresh["client_secret"] == [CLIENT_SECRET] and "auth" not in refresh
    assert query_of(responses.calls[2])["auth"] == ["acc3ss-T0KEN-new"]


@responses.activate
def test_a_token_past_its_expiry_is_refreshed_before_the_call(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(OAUTH_URL, json=oauth_answer())
    responses.post(f"{PORTAL}tasks.task.get.json", json={"result": {"task": task()}})
    store = Store(app_credentials(expires_at=datetime.fromtimestamp(EPOCH - 5, UTC).isoformat()))

    app_client(clock, store).task("482")

    assert [call.request.method for call in responses.calls] == ["GET", "POST"]
    assert store.credentials["access_token"] == "acc3ss-T0KEN-new"


@responses.activate
def test_a_refused_refresh_token_fails_for_good_says_so_and_stores_nothing(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{PORTAL}tasks.task.get.json", status=401, json={"error": "expired_token"})
    responses.get(OAUTH_URL, status=400, json={"error": "invalid_grant", "error_description": "Invalid grant"})
    store = Store(app_credentials())

    with pytest.raises(PermanentFailure) as raised:
        app_client(clock, store).task("482")

    assert REFUSED in str(raised.value) and "invalid_grant" in str(raised.value)
    assert store.saved == [] and store.credentials == app_credentials()
    assert store.refusals == [str(raised.value)]
    assert REFRESH not in str(raised.value) and CLIENT_SECRET not in str(raised.value)


@responses.activate
def test_a_token_another_worker_refreshed_is_used_without_refreshing_again(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{PORTAL}tasks.task.get.json"
    responses.post(url, status=401, json={"error": "expired_token"})
    responses.post(url, json={"result": {"task": task()}})
    store = Store(app_credentials())
    bitrix = app_client(clock, store)
    store.credentials.update(access_token="acc3ss-by-the-other", refresh_token="refr3sh-by-the-other",
                             expires_at=int(EPOCH) + 3000)

    bitrix.task("482")

    assert len(responses.calls) == 2 and store.saved == []  # no call to oauth.bitrix.info
    assert query_of(responses.calls[1])["auth"] == ["acc3ss-by-the-other"]


@responses.activate
def test_a_refresh_that_loses_the_race_to_store_uses_the_winners_tokens(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{PORTAL}tasks.task.get.json"
    responses.post(url, status=401, json={"error": "expired_token"})
    responses.get(OAUTH_URL, json=oauth_answer())
    responses.post(url, json={"result": {"task": task()}})

    class Racing(Store):
        def save(self, changes, *, expected=None):  # type: ignore[no-untyped-def]
            self.credentials.update(access_token="acc3ss-winner", refresh_token="refr3sh-winner")
            return super().save(changes, expected=expected)

    store = Racing(app_credentials())
    app_client(clock, store).task("482")

    assert store.saved == [] and store.credentials["access_token"] == "acc3ss-winner"
    assert query_of(responses.calls[2])["auth"] == ["acc3ss-winner"]


@responses.activate
def test_a_refresh_server_that_is_away_is_a_failure_to_retry_not_a_refusal(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{PORTAL}tasks.task.get.json", status=401, json={"error": "expired_token"})
    responses.get(OAUTH_URL, status=502)
    store = Store(app_credentials())

    with pytest.raises(Unavailable):
        Bitrix24Client(http(clock, store, max_retries=0), integration(store.load())).task("482")
    assert store.refusals == [] and store.saved == []


@responses.activate
def test_without_a_store_an_expired_token_is_not_refreshed(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{PORTAL}tasks.task.get.json", status=401, json={"error": "expired_token"})

    with pytest.raises(PermanentFailure):
        Bitrix24Client(http(clock), integration(app_credentials())).task("482")
    assert len(responses.calls) == 1


# --- batches and pages -----------------------------------------------------------------------------------


def batch_answer(request: Any) -> tuple[int, dict[str, str], str]:
    """Bitrix24's batch: each subquery answered with its key, ``bad`` ones with an error."""
    cmd = json.loads(request.body)["cmd"]
    result = {key: {"echo": key} for key in cmd if not key.startswith("bad")}
    errors = {key: {"error": "ACCESS_DENIED", "error_description": "Access denied"} for key in cmd
              if key.startswith("bad")}
    return 200, {}, json.dumps({"result": {"result": result, "result_error": errors or [], "result_total": [],
                                           "result_next": [], "result_time": {}}})


@responses.activate
def test_a_batch_of_more_than_50_is_split_and_each_error_is_given_back(clock) -> None:  # type: ignore[no-untyped-def]
    responses.add_callback(responses.POST, f"{WEBHOOK}batch.json", callback=batch_answer)
    calls = {f"t{i}": ("tasks.task.get", {"taskId": i}) for i in range(118)} | {"bad1": ("tasks.task.get", {})}

    results = webhook_client(clock).batch(calls)

    sizes = [len(body_of(call)["cmd"]) for call in responses.calls]
    assert sizes == [50, 50, 19]
    assert all(body_of(call)["halt"] == 0 for call in responses.calls)
    assert body_of(responses.calls[0])["cmd"]["t7"] == "tasks.task.get?taskId=7"
    assert results["t117"] == {"echo": "t117"}
    assert isinstance(results["bad1"], Unauthorized) and "ACCESS_DENIED" in str(results["bad1"])


def item(item_id: int, task_id: str) -> dict[str, Any]:
    return {"ID": str(item_id), "TASK_ID": task_id, "USER_ID": "1", "SECONDS": "600",
            "CREATED_DATE": "2026-11-02T09:00:00+01:00"}


@responses.activate
def test_elapsed_items_are_read_page_after_page(clock) -> None:  # type: ignore[no-untyped-def]
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        result = {}
        for key, query in json.loads(request.body)["cmd"].items():
            params = parse_qs(query.split("?", 1)[1])
            task_id, page = params["TASKID"][0], int(params["PARAMS[NAV_PARAMS][iNumPage]"][0])
            count = {("7", 1): 50, ("7", 2): 3, ("8", 1): 2}[(task_id, page)]
            result[key] = [item(page * 1000 + n, task_id) for n in range(count)]
        return 200, {}, json.dumps({"result": {"result": result, "result_error": []}})

    responses.add_callback(responses.POST, f"{WEBHOOK}batch.json", callback=answer)

    found = webhook_client(clock).elapsed(["7", "8"])

    assert len(found["7"]) == 53 and len(found["8"]) == 2
    assert [sorted(body_of(call)["cmd"]) for call in responses.calls] == [["t7", "t8"], ["t7"]]
    query = body_of(responses.calls[0])["cmd"]["t7"]
    assert query.index("TASKID") < query.index("ORDER") < query.index("FILTER") < query.index("SELECT") < \
        query.index("PARAMS")  # Bitrix24 reads these by position


@responses.activate
def test_an_elapsed_subquery_error_raises_rather_than_report_a_task_half_read(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}batch.json", json={"result": {"result": {"t7": [item(1, "7")]}, "result_error": {
        "t8": {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}}}})

    with pytest.raises(RateLimited):
        webhook_client(clock).elapsed(["7", "8"])


@responses.activate
def test_changed_tasks_are_listed_page_after_page_from_since(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{WEBHOOK}tasks.task.list.json"
    responses.post(url, json={"result": {"tasks": [task(str(i)) for i in range(50)]}, "next": 50, "total": 51})
    responses.post(url, json={"result": {"tasks": [task("50")]}, "total": 51})

    tasks = list(webhook_client(clock).tasks_changed("12", datetime(2026, 11, 2, 9, 0, tzinfo=UTC)))

    assert len(tasks) == 51
    first, second = body_of(responses.calls[0]), body_of(responses.calls[1])
    assert first["filter"] == {"GROUP_ID": "12", ">=CHANGED_DATE": "2026-11-02T09:00:00+00:00"}
    assert (first["start"], second["start"]) == (0, 50)


@responses.activate
def test_an_error_on_a_later_page_raises(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{WEBHOOK}tasks.task.list.json"
    responses.post(url, json={"result": {"tasks": [task(str(i)) for i in range(50)]}, "next": 50})
    responses.post(url, status=500)

    with pytest.raises(Unavailable):
        list(webhook_client(clock).tasks_of_group("12"))


@responses.activate
def test_an_error_in_a_200_body_is_raised_with_its_code(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{WEBHOOK}tasks.task.get.json", json={"error": "ERROR_TASK_NOT_FOUND",
                                                        "error_description": "Task not found"})

    with pytest.raises(NotFound):
        webhook_client(clock).call("tasks.task.get", {"taskId": "9"})


def test_a_method_name_cannot_reach_another_path(clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        webhook_client(clock).call("../../other", {})
