"""One error handler: every failure becomes an RFC 9457 JSON problem.

``{"type", "title", "status", "code", "detail", "errors"}`` with a stable
machine ``code``; ``errors`` ({field: [messages]}) only for validation
failures. Domain errors keep the core's own code (``invoice_not_draft``...).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Flask, current_app, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from jalon.core.errors import Conflict, Invalid, JalonError, NotFound

from jalon.connector.integrations import error_paths

PROBLEM_TYPE_BASE = "https://jalon.dev/problems/"
PROBLEM_MIMETYPE = "application/problem+json"

log = logging.getLogger("jalon.connector.web.api")

# the stable code of an HTTP error that carries no more precise one
STATUS_CODES: dict[int, str] = {
    400: "bad_request",  # malformed_json, json_too_deep: see MalformedJson
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "internal_error",
    503: "service_unavailable",
}

DOMAIN_STATUS: tuple[tuple[type[JalonError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),  # ImmutableRecord is a Conflict
    (Invalid, 422),
)


class Problem(Exception):
    """An error raised by the connector itself (auth, health...)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class MalformedJson(BadRequest):
    """The body claims to be JSON and is not."""

    code_name = "malformed_json"
    description = "The request body is not valid JSON."


class JsonTooDeep(MalformedJson):
    """The body is JSON whose arrays and objects nest too deeply to be read."""

    code_name = "json_too_deep"
    description = "The request body nests too deeply to be read."


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem (served as application/problem+json)."""

    type = ma.fields.String(metadata={"description": "URI of the problem type", "example": PROBLEM_TYPE_BASE + "not_found"})
    title = ma.fields.String(metadata={"description": "Short summary of the HTTP status"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    code = ma.fields.String(metadata={"description": "Stable machine-readable code", "example": "invoice_not_draft"})
    detail = ma.fields.String(metadata={"description": "Human-readable explanation of this occurrence"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Validation failures only: dotted field path -> messages"},
    )


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail or HTTPStatus(status).description or HTTPStatus(status).phrase,
    }
    if errors is not None:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages -> {"milestones.2.amount": [...]}: the
    connector's one flattening (:func:`~jalon.connector.integrations.error_paths`),
    list items written ``.i`` as a JSON pointer reader expects."""
    return error_paths(messages, prefix, item=".{}")


def _validation_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    # webargs files messages under the request location ({"json": {...}}): drop that level
    messages = data.get("errors") or data.get("messages") or {}
    merged: dict[str, list[str]] = {}
    for location_messages in (messages.values() if isinstance(messages, dict) else [messages]):
        for field, msgs in flatten_errors(location_messages).items():
            merged.setdefault(field, []).extend(msgs)
    return merged


def _log_unexpected(error: BaseException) -> None:
    # the method and path only: never the body, which may hold secrets
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=error)


def handle_error(error: BaseException):  # type: ignore[no-untyped-def]
    """The one error handler of the app."""
    if isinstance(error, Problem):
        return problem_response(error.status, error.code, error.detail, errors=error.errors, headers=error.headers)
    if isinstance(error, JalonError):
        status = next((s for cls, s in DOMAIN_STATUS if isinstance(error, cls)), 422)
        errors = None
        details = error.details if isinstance(error.details, dict) else {}
        if isinstance(details.get("errors"), dict):  # marshmallow's messages, e.g. of a plugin's settings
            errors = flatten_errors(details["errors"])
        elif details.get("fields"):
            errors = {str(f): ["Missing data for required field."] for f in details["fields"]}
        return problem_response(status, error.code, error.message, errors=errors)
    if isinstance(error, IntegrityError):
        # a concurrent request won a race on a unique key: the state, not the request, is at fault
        return problem_response(409, "conflict", "the change conflicts with data written at the same time; retry")
    if isinstance(error, HTTPException):
        status = error.code or 500
        if status >= 500:
            original = getattr(error, "original_exception", None)
            if original is not None:
                _log_unexpected(original)
            if isinstance(error, InternalServerError):
                return problem_response(500, "internal_error", "An unexpected error occurred.")
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        data = getattr(error, "data", None) or {}
        if "headers" in data and data["headers"]:
            headers.update(data["headers"])
        if isinstance(error, MalformedJson):
            return problem_response(400, error.code_name, error.description, headers=headers)
        if status == 422:
            return problem_response(
                422, "validation_failed", "The request does not match the expected schema.",
                errors=_validation_errors(data), headers=headers,
            )
        code = STATUS_CODES.get(status) or HTTPStatus(status).name.lower()
        return problem_response(status, code, data.get("message") or error.description, headers=headers)
    _log_unexpected(error)
    return problem_response(500, "internal_error", "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(Problem, handle_error)
    app.register_error_handler(JalonError, handle_error)
    app.register_error_handler(HTTPException, handle_error)
    app.register_error_handler(Exception, handle_error)
