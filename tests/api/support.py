"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

PROBLEM_KEYS = {"type", "title", "status", "code", "detail"}


def assert_problem(response, status: int, code: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"https://jalon.dev/problems/{code}"
    assert isinstance(body["detail"], str) and body["detail"]
    return body
