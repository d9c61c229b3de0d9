"""The admin REST API under /api/v1: one flask-smorest blueprint per area.

OpenAPI is served at /api/v1/openapi.json and browsable at /api/v1/docs.
"""

from __future__ import annotations

import http
import typing

import flask_smorest
from apispec import BasePlugin
from flask import Flask
from flask_smorest.utils import prepare_response
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from jalon.connector.web.api.fields import DecimalString, IdConverter, PathText
from jalon.connector.web.api.problems import PROBLEM_MIMETYPE, JsonTooDeep, MalformedJson, ProblemSchema, handle_error

PREFIX = "/api/v1"

# no body of this API nests deeper (a contract's milestone's VAT is 4 levels): deeper JSON is
# refused before any code walks it, and JSON too deep for the parser itself is refused alike
MAX_JSON_DEPTH = 32


def nests_deeper_than(value: typing.Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels
    (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: typing.Iterable[typing.Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JalonParser(FlaskParser):
    def _raw_load_json(self, req):  # type: ignore[no-untyped-def]
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise UnsupportedMediaType("the request body must be application/json")
            return webargs_core.missing
        try:
            data = webargs_core.parse_json(req.get_data(cache=True))
        except RecursionError:
            raise JsonTooDeep() from None
        if nests_deeper_than(data, MAX_JSON_DEPTH):
            raise JsonTooDeep()
        return data

    def _handle_invalid_json_error(self, error, req, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:  # type: ignore[no-untyped-def]
        raise MalformedJson()


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JalonParser()


class _ProblemResponsesPlugin(BasePlugin):
    """Documents 401 and 403 on every operation that needs a token."""

    def operation_helper(self, path=None, operations=None, **kwargs):  # type: ignore[no-untyped-def]
        for operation in (operations or {}).values():
            if operation.get("security") == []:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("403", "FORBIDDEN")


class Api(flask_smorest.Api):
    """flask-smorest's Api whose errors are JSON problems, documented as such."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):  # type: ignore[no-untyped-def]
        return handle_error(error)

    def _register_responses(self):  # type: ignore[no-untyped-def]
        for status in http.HTTPStatus:
            response: dict[str, typing.Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


API_CONFIG = {
    "API_TITLE": "jalon admin API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": PREFIX,
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Admin API of jalon. Amounts are decimal strings with a currency; "
            "errors are application/problem+json. See docs/api.md.",
        },
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    },
}


def register_api(app: Flask) -> Api:
    for key, value in API_CONFIG.items():
        app.config.setdefault(key, value)
    # before any route is added (the intake's and the approval pages' too): <id(table):...> and a
    # default segment that never holds a NUL
    app.url_map.converters.update({"id": IdConverter, "default": PathText, "string": PathText})
    api = Api(app, spec_kwargs={"extra_plugins": [_ProblemResponsesPlugin()]})
    api.register_field(DecimalString, "string", "decimal")

    from jalon.connector.web.api import audit, clients, contracts, entities, health, integrations, invoices, mappings, payments
    from jalon.connector.web.api import deliveries
    from jalon.connector.web.api import channels, outbox
    from jalon.connector.web.api import jobs
    from jalon.connector.web.api import exchange_rates

    api.register_blueprint(health.blp)
    for module in (entities, clients, contracts, integrations, mappings, invoices, payments, audit, deliveries,
                   outbox, channels, jobs, exchange_rates):
        api.register_blueprint(module.blp, url_prefix=PREFIX + module.blp.url_prefix)
    return api
