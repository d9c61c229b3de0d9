"""The REST client's get_issue against Jira's answers, mocked with ``responses``:
each failure ends in the documented exception, and translation decides from it."""

from __future__ import annotations

import pytest
import requests
import responses

from jalon.connector.net.http import LookupCache, BadResponse, NotFound, RateLimited, Unauthorized, Unavailable
from jalon.connector.plugin.types import Unreadable
from jalon.plugins.jira import client, translate

from .support import SITE, delivery, fixture_bytes, integration, rest_client, rest_fixture

URL = f"{SITE}/rest/api/3/issue/10070"


def jira() -> client.JiraClient:
    return client.JiraClient(rest_client(), integration())


@responses.activate
def test_get_issue_returns_what_billing_needs():
    responses.get(URL, json=rest_fixture("issue__web_7"))
    issue = jira().get_issue("10070")
    assert (issue.key, issue.project_key, issue.issue_type) == ("WEB-7", "WEB", "Story")
    assert issue.labels == ("milestone",) and issue.fix_versions == ("v10010",)
    assert (issue.status, issue.status_category) == ("In Progress", "indeterminate")
    assert issue.self_url.endswith("/rest/api/2/issue/10070")
    assert responses.calls[0].request.params["fields"] == "project,issuetype,labels,fixVersions,status,summary"


@responses.activate
def test_get_issue_is_cached_per_integration_and_issue():
    responses.get(URL, json=rest_fixture("issue__web_7"))
    jira().get_issue("10070")
    jira().get_issue("10070")
    assert len(responses.calls) == 1
    other = client.JiraClient(rest_client(key="other"), integration().__class__(
        key="other", source="jira", name="Other", base_url=SITE, settings={}, secrets=("x",)))
    other.get_issue("10070")
    assert len(responses.calls) == 2


@responses.activate
def test_the_cache_forgets_an_issue_after_its_time_to_live():
    now = [0.0]
    cache = LookupCache(ttl=10, timer=lambda: now[0])
    responses.get(URL, json=rest_fixture("issue__web_7"))
    fetch = client.JiraClient(rest_client(cache=cache), integration())
    fetch.get_issue("10070")
    now[0] = 11.0
    fetch.get_issue("10070")
    assert len(responses.calls) == 2


@responses.activate
def test_401_raises_unauthorized_which_translation_lets_the_worker_retry():
    responses.get(URL, status=401)
    with pytest.raises(Unauthorized):
        jira().get_issue("10070")
    assert len(responses.calls) == 1  # no blind retries on bad credentials


@responses.activate
def test_404_raises_not_found_which_translation_turns_into_a_dead_letter():
    responses.get(URL, status=404)
    with pytest.raises(NotFound):
        jira().get_issue("10070")
    with pytest.raises(Unreadable, match="not found"):
        translate.translate(integration(), delivery(fixture_bytes("worklog_created__cloud")), rest_client())


@responses.activate
def test_429_is_retried_after_the_time_jira_asks_for():
    waits: list[float] = []
    responses.get(URL, status=429, headers={"Retry-After": "2"})
    responses.get(URL, json=rest_fixture("issue__web_7"))
    http = rest_client()
    http.sleep = waits.append
    assert client.JiraClient(http, integration()).get_issue("10070").key == "WEB-7"
    assert waits == [2.0]


@responses.activate
def test_429_asking_for_too_long_a_wait_raises_rate_limited_with_the_wait():
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as raised:
        jira().get_issue("10070")
    assert raised.value.retry_after == 3600.0


@responses.activate
def test_500_is_unavailable():
    responses.get(URL, status=500)
    with pytest.raises(Unavailable):
        jira().get_issue("10070")


@responses.activate
def test_a_timeout_is_unavailable_after_retries():
    responses.get(URL, body=requests.Timeout("slow"))
    with pytest.raises(Unavailable, match="timed out"):
        jira().get_issue("10070")
    assert len(responses.calls) == 3  # the first try and two retries


@responses.activate
def test_an_answer_that_is_not_json_is_a_bad_response():
    responses.get(URL, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(BadResponse):
        jira().get_issue("10070")


@responses.activate
def test_json_without_a_project_is_a_bad_response_and_not_cached():
    responses.get(URL, json={"id": "10070", "key": "WEB-7", "fields": {}})
    responses.get(URL, json=rest_fixture("issue__web_7"))
    with pytest.raises(BadResponse):
        jira().get_issue("10070")
    assert jira().get_issue("10070").project_key == "WEB"


@responses.activate
def test_an_issue_key_is_quoted_into_the_path():
    responses.get(f"{SITE}/rest/api/3/issue/WEB%2F7", json=rest_fixture("issue__web_7"))
    jira().get_issue("WEB/7")
    assert len(responses.calls) == 1
