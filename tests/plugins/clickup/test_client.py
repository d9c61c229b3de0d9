"""ClickUp's REST client against ClickUp's answers, mocked with ``responses``:
the token as ClickUp wants it, each failure ending in the documented
exception, the waits ClickUp asks for (``X-RateLimit-Reset``) and the token's
request budget, on a fake clock that sleeping moves (nothing really sleeps)."""

from __future__ import annotations

import bisect
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from jalon.connector.net.http import (
    BadResponse,
    LookupCache,
    NotFound,
    RateBudget,
    RateBudgets,
    RateLimited,
    RestClient,
    Unauthorized,
    Unavailable,
    parse_rate_limit_reset,
)
from jalon.connector.plugin.types import IntegrationView
from jalon.plugins.clickup.client import API, PER_MINUTE, ClickUpClient, auth_for

TEAM = "9012345678"
TOKEN = "pk_81942_CLIENTTESTTOKEN"
TASK = "86c0m1l5t"
TASK_URL = f"{API}/task/{TASK}"
EPOCH = 1_800_000_000.0  # the fake clock's start, a Unix time (2027-01-15)


class Clock:
    """A fake clock: reading it is free, sleeping moves it and is recorded."""

    def __init__(self, now: float = EPOCH):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def integration(credentials: dict[str, Any] | None = None, base_url: str | None = None) -> IntegrationView:
    return IntegrationView(key="clickup-lumen", source="clickup", name="ClickUp", base_url=base_url,
                           settings={"team_id": TEAM},
                           credentials={"api_token": TOKEN} if credentials is None else credentials)


def http(clock: Clock, *, max_retries: int = 2, budgets: RateBudgets | None = None) -> RestClient:
    """The connector's client with every clock faked: its wall clock, its sleep, the budgets' and the cache's."""
    return RestClient(None, timeout=2.0, max_retries=max_retries, allow_private_network=True, sleep=clock.sleep,
                      clock=clock, budgets=budgets or RateBudgets(clock=clock), cache=LookupCache(timer=clock))


def clickup(clock: Clock, **options: Any) -> ClickUpClient:
    return ClickUpClient(http(clock, **options), integration())


def task(task_id: str = TASK, **changes: Any) -> dict[str, Any]:
    return {"id": task_id, "name": "Recette du lot 1", "status": {"status": "terminé", "type": "closed"},
            "date_updated": "1793610000000", "date_closed": "1793610000000", "list": {"id": "901200000001"},
            "folder": {"id": "90120000002"}, "space": {"id": "90120000003"}, **changes}


# --- the token and the address -------------------------------------------------------------------


@responses.activate
def test_a_personal_token_is_sent_bare_and_the_task_comes_back(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json=task())

    assert clickup(clock).task(TASK)["name"] == "Recette du lot 1"

    assert responses.calls[0].request.headers["Authorization"] == TOKEN  # no "Bearer": ClickUp wants it bare


@responses.activate
def test_an_oauth_access_token_is_sent_as_bearer(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json=task())

    ClickUpClient(http(clock), integration({"access_token": "12345_oauth"})).task(TASK)

    assert responses.calls[0].request.headers["Authorization"] == "Bearer 12345_oauth"


def test_without_a_token_there_is_no_auth_and_the_token_never_shows() -> None:
    assert auth_for(integration({})) is None
    assert TOKEN not in repr(auth_for(integration()))


@responses.activate
def test_the_integration_base_url_replaces_clickups_own(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get("https://clickup-proxy.atelier.test/api/v2/task/86c0m1l5t", json=task())

    ClickUpClient(http(clock), integration(base_url="https://clickup-proxy.atelier.test/api/v2/")).task(TASK)

    assert len(responses.calls) == 1


@responses.activate
def test_a_task_is_fetched_once_for_the_deliveries_of_one_change(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json=task())
    client = clickup(clock)

    client.task(TASK)
    client.task(TASK)

    assert len(responses.calls) == 1


@responses.activate
def test_a_task_id_is_quoted_into_the_path(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/task/a%2Fb", json=task("a/b"))

    assert clickup(clock).task("a/b")["id"] == "a/b"


# --- ClickUp's failures -----------------------------------------------------------------------------


@responses.activate
def test_401_is_unauthorized_and_not_retried(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json={"err": "Token invalid", "ECODE": "OAUTH_025"}, status=401)

    with pytest.raises(Unauthorized) as raised:
        clickup(clock).task(TASK)

    assert len(responses.calls) == 1 and clock.slept == []
    assert TOKEN not in str(raised.value)


@responses.activate
def test_429_waits_until_the_reset_clickup_gives_then_succeeds(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, status=429, headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                                                 "X-RateLimit-Reset": str(int(EPOCH) + 12)})
    responses.get(TASK_URL, json=task())

    assert clickup(clock).task(TASK)["id"] == TASK

    assert clock.slept == [12.0]  # as told, once: the budget does not make it wait again


@responses.activate
def test_429_with_a_reset_already_past_retries_at_once(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, status=429, headers={"X-RateLimit-Reset": str(int(EPOCH) - 5)})
    responses.get(TASK_URL, json=task())

    clickup(clock).task(TASK)

    assert clock.slept == [0.0] and len(responses.calls) == 2  # never a negative wait


@responses.activate
def test_429_with_a_reset_too_far_raises_rate_limited_capped_at_a_minute(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, status=429, headers={"X-RateLimit-Reset": str(int(EPOCH) + 3600)})

    with pytest.raises(RateLimited) as raised:
        clickup(clock).task(TASK)

    assert raised.value.retry_after == 60.0  # a per-minute quota: a further reset is misread
    assert len(responses.calls) == 1 and clock.slept == []  # more than max_wait (30 s): the caller reschedules


@responses.activate
def test_a_retry_after_header_wins_over_the_reset(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, status=429, headers={"Retry-After": "3", "X-RateLimit-Reset": str(int(EPOCH) + 20)})
    responses.get(TASK_URL, json=task())

    clickup(clock).task(TASK)

    assert clock.slept[0] == 3.0


@pytest.mark.parametrize("status", [502, 503, 504])
@responses.activate
def test_a_gateway_error_then_success_is_retried_in_process(clock, status) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, status=status)
    responses.get(TASK_URL, json=task())

    assert clickup(clock).task(TASK)["id"] == TASK
    assert len(responses.calls) == 2


@responses.activate
def test_500_is_unavailable_for_the_caller_to_retry_and_then_succeeds(clock) -> None:  # type: ignore[no-untyped-def]
    # the kit repeats no 500 in-process (a POST may have been done): the worker, the job
    # or the dispatcher tries again later, and then ClickUp answers
    responses.get(TASK_URL, status=500)
    responses.get(TASK_URL, json=task())
    client = clickup(clock)

    with pytest.raises(Unavailable):
        client.task(TASK)
    assert client.task(TASK)["id"] == TASK


@responses.activate
def test_a_timeout_is_unavailable_after_the_retries(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, body=requests.ReadTimeout("slow"))

    with pytest.raises(Unavailable, match="timed out"):
        clickup(clock).task(TASK)

    assert len(responses.calls) == 3  # the first try and two retries


@responses.activate
def test_an_answer_that_is_not_json_is_a_bad_response_and_not_remembered(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, body="<html>ClickUp is down for maintenance</html>", content_type="text/html")
    responses.get(TASK_URL, json=task())
    client = clickup(clock)

    with pytest.raises(BadResponse):
        client.task(TASK)
    assert client.task(TASK)["id"] == TASK


@responses.activate
def test_json_that_is_no_task_is_a_bad_response(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json=["not", "a", "task"])

    with pytest.raises(BadResponse):
        clickup(clock).task(TASK)


# --- the endpoints ---------------------------------------------------------------------------------


@responses.activate
def test_a_time_entry_is_its_data_and_none_when_clickup_has_none(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/team/{TEAM}/time_entries/42", json={"data": {"id": "42", "duration": "900000"}})
    responses.get(f"{API}/team/{TEAM}/time_entries/43", json={"err": "Time entry not found"}, status=404)

    client = clickup(clock)

    assert client.time_entry(TEAM, "42") == {"id": "42", "duration": "900000"}
    assert client.time_entry(TEAM, "43") is None


@responses.activate
def test_time_entries_are_asked_by_date_range_in_milliseconds_with_their_filters(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/team/{TEAM}/time_entries", json={"data": [{"id": "1"}, {"id": "2"}]})
    start = datetime(2026, 11, 1, tzinfo=UTC)

    found = clickup(clock).time_entries(TEAM, start, start + timedelta(hours=1), list_id="901", assignee="1,2")

    assert [entry["id"] for entry in found] == ["1", "2"]
    assert responses.calls[0].request.params == {
        "start_date": "1793491200000", "end_date": "1793494800000", "include_location_names": "true",
        "list_id": "901", "assignee": "1,2"}


def test_time_entries_refuse_a_filter_clickup_does_not_have(clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="project_id"):
        clickup(clock).time_entries(TEAM, datetime.now(UTC), datetime.now(UTC), project_id="1")


@responses.activate
def test_updated_tasks_are_read_page_by_page_until_the_last(clock) -> None:  # type: ignore[no-untyped-def]
    url = f"{API}/list/901/task"
    common = {"date_updated_gt": "1793491200000", "include_closed": "true", "subtasks": "true", "archived": "false"}
    responses.get(url, json={"tasks": [task(f"t{i}") for i in range(100)], "last_page": False},
                  match=[responses.matchers.query_param_matcher({**common, "page": "0"})])
    responses.get(url, json={"tasks": [task("t100"), task("t101")], "last_page": True},
                  match=[responses.matchers.query_param_matcher({**common, "page": "1"})])

    found = list(clickup(clock).tasks_updated("901", datetime(2026, 11, 1, tzinfo=UTC)))

    assert [t["id"] for t in found] == [f"t{i}" for i in range(102)]


@responses.activate
def test_without_last_page_a_short_page_is_the_last(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/list/901/task", json={"tasks": [task("t1")]})

    assert len(list(clickup(clock).tasks_updated("901", datetime(2026, 11, 1, tzinfo=UTC)))) == 1
    assert len(responses.calls) == 1


@responses.activate
def test_a_page_without_tasks_is_a_bad_response(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/list/901/task", json={"err": "oops"})

    with pytest.raises(BadResponse):
        list(clickup(clock).tasks_updated("901", datetime(2026, 11, 1, tzinfo=UTC)))


@responses.activate
def test_a_comment_is_posted_without_notifying_everyone(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{API}/task/{TASK}/comment", json={"id": 458, "hist_id": "26508", "date": 1568036964079})

    assert clickup(clock).post_comment(TASK, "jalon: facture émise")["id"] == 458

    assert json.loads(responses.calls[0].request.body) == {"comment_text": "jalon: facture émise",
                                                           "notify_all": False}


@responses.activate
def test_a_webhook_is_created_with_its_events_and_one_location(clock) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{API}/team/{TEAM}/webhook", json={"id": "wh-1", "webhook": {"id": "wh-1", "secret": "s"}})

    answer = clickup(clock).create_webhook(TEAM, "https://jalon.test/hooks/clickup/k", ["taskDeleted"], list_id=901)

    assert answer["webhook"]["secret"] == "s"
    assert json.loads(responses.calls[0].request.body) == {
        "endpoint": "https://jalon.test/hooks/clickup/k", "events": ["taskDeleted"], "list_id": 901}


@responses.activate
def test_the_workspace_members_are_its_user_ids(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/team", json={"teams": [
        {"id": "1", "members": [{"user": {"id": 1}}]},
        {"id": TEAM, "members": [{"user": {"id": 81942}}, {"user": {"id": 57310}}, {"invited_by": {}}]}]})

    assert clickup(clock).team_members(TEAM) == ["81942", "57310"]
    with pytest.raises(NotFound):
        clickup(clock).team_members("404")


# --- the token's budget: 100 requests a minute, spread --------------------------------------------


def test_x_ratelimit_reset_reads_an_epoch_in_seconds_or_milliseconds() -> None:
    assert parse_rate_limit_reset(str(int(EPOCH) + 12), now=EPOCH) == 12.0
    assert parse_rate_limit_reset(str(int(EPOCH * 1000) + 7000), now=EPOCH) == 7.0
    assert parse_rate_limit_reset(str(int(EPOCH) - 30), now=EPOCH) == 0.0  # never negative
    assert parse_rate_limit_reset(str(int(EPOCH) + 86400), now=EPOCH) == 60.0  # capped
    assert parse_rate_limit_reset("15", now=EPOCH) == 15.0  # seconds left, not a date
    for unreadable in (None, "", "soon", "nan", "-3"):
        assert parse_rate_limit_reset(unreadable, now=EPOCH) is None


def in_any_window(times: list[float], width: float) -> int:
    """The most of ``times`` (sorted) in any half-open window [t, t + width)."""
    return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))


def test_a_budget_keeps_to_its_rate_in_any_minute_and_spreads_the_calls(clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(100, clock=clock)
    sent = []
    for _ in range(350):
        clock.sleep(budget.reserve())
        sent.append(clock.now)

    assert in_any_window(sent, 60.0) <= 100
    assert in_any_window(sent, 15.0) <= 25  # no burst of more than a quarter
    assert sent[24] == EPOCH and sent[25] > EPOCH  # the first quarter goes at once
    assert sent[-1] - sent[0] < 3.5 * 60  # and no slower than the rate


def test_a_turn_further_than_the_caller_may_wait_is_not_booked(clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(10, burst=10, clock=clock)
    for _ in range(10):
        assert budget.reserve() == 0.0

    assert budget.reserve(max_wait=30.0) == 60.0  # not booked: the caller does not send
    assert budget.reserve() == 60.0


@responses.activate
def test_a_client_over_many_calls_never_asks_more_than_100_a_minute(clock) -> None:  # type: ignore[no-untyped-def]
    sent: list[float] = []

    def answer(request):  # type: ignore[no-untyped-def]
        sent.append(clock.now)
        return 200, {}, json.dumps(task())

    responses.add_callback(responses.GET, f"{API}/task/t", callback=answer)
    client = clickup(clock)
    for _ in range(250):
        client.http.get_json(f"{API}/task/t")  # not get_cached: every call reaches ClickUp

    assert len(sent) == 250 and PER_MINUTE == 100
    assert in_any_window(sent, 60.0) <= 100


@responses.activate
def test_when_clickup_says_little_is_left_the_next_calls_wait_their_share(clock) -> None:  # type: ignore[no-untyped-def]
    reset = str(int(EPOCH) + 30)
    responses.get(TASK_URL, json=task(), headers={"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": reset})
    responses.get(f"{API}/task/t2", json=task("t2"))
    client = clickup(clock)

    client.task(TASK)
    client.task("t2")

    assert clock.slept == [10.0]  # 2 left for 30 s: the next one waits a third of it


@responses.activate
def test_clients_of_one_token_share_its_budget_and_another_token_has_its_own(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/task/t", json=task("t"))
    budgets = RateBudgets(clock=clock)
    first = ClickUpClient(http(clock, budgets=budgets), integration())
    second = ClickUpClient(http(clock, budgets=budgets), integration())  # another integration, the same token
    other = ClickUpClient(http(clock, budgets=budgets), integration({"api_token": "pk_other"}))

    assert first.http.budget is second.http.budget
    assert other.http.budget is not first.http.budget
    for _ in range(25):
        first.http.get_json(f"{API}/task/t")
    second.http.get_json(f"{API}/task/t")  # the token's 26th in fifteen seconds
    assert clock.slept == [15.0]
    other.http.get_json(f"{API}/task/t")
    assert clock.slept == [15.0]


@responses.activate
def test_a_spent_budget_beyond_max_wait_raises_rate_limited_without_calling(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(TASK_URL, json=task(), headers={"X-RateLimit-Remaining": "0",
                                                  "X-RateLimit-Reset": str(int(EPOCH) + 50)})
    client = clickup(clock)
    client.http.get_json(TASK_URL)

    with pytest.raises(RateLimited) as raised:
        client.http.get_json(TASK_URL)

    assert raised.value.retry_after == 50.0
    assert len(responses.calls) == 1 and clock.slept == []


def test_the_connectors_clients_share_the_process_budgets_and_another_client_has_its_own() -> None:
    from jalon.connector.net.http import RATE_BUDGETS, client_for

    first, second = client_for(integration(), timeout=1.0), client_for(integration(), timeout=1.0)

    assert first.budgets is second.budgets is RATE_BUDGETS  # the worker, the dispatcher and the jobs alike
    assert ClickUpClient(first, integration()).http.budget is ClickUpClient(second, integration()).http.budget
    assert RestClient(None, timeout=1.0).budgets is not RATE_BUDGETS
