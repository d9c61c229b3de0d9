"""Exchange rates: the ECB's euro reference rates that convert a foreign invoice's VAT into euros.

Rates travel as decimal strings ("1.0842": units of the currency for 1 EUR).
The import takes the ECB's CSV file as it is downloaded (``text/csv``), all
or nothing; jalon never fetches it itself.
"""

from __future__ import annotations

import re
from datetime import date

from flask import request
from flask.views import MethodView
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import (
    DecimalString,
    PageArgs,
    Schema,
    currency_field,
    page_of,
    paginate,
)
from jalon.connector.web.api.problems import Problem
from jalon.core import fx
from jalon.core.errors import Invalid
from jalon.core.money import check_currency
from marshmallow import fields

blp = Blueprint("exchange_rates", __name__, url_prefix="/exchange-rates",
                description="ECB euro reference rates, for invoices in other currencies")
protect(blp, write_scopes=("admin",))

CSV_MIMETYPE = "text/csv"
# the ECB's whole history since 1999 is over 2 MB, beyond the API's 1 MiB default
IMPORT_MAX_BYTES = 16 * 1024 * 1024
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ExchangeRateIn(Schema):
    rate = DecimalString(required=True, metadata={
        "example": "1.0842", "description": "Units of the currency for 1 EUR, as the ECB writes it (at most 6 places)"})


class ExchangeRateOut(Schema):
    currency = fields.String(metadata={"example": "USD"})
    day = fields.Date(metadata={"description": "The ECB's publication day"})
    rate = DecimalString(metadata={"example": "1.0842"})
    source = fields.String(metadata={"description": "ecb (loaded from a file) or manual (typed; loads keep it)"})
    loaded_at = fields.DateTime()


ExchangeRatePage = page_of(ExchangeRateOut, "ExchangeRatePage")


class ExchangeRateListArgs(PageArgs):
    currency = currency_field()
    since = fields.Date(metadata={"description": "From this day, included"})
    until = fields.Date(metadata={"description": "Up to this day, included"})


class ExchangeRateImportArgs(Schema):
    replace = fields.Boolean(load_default=False, truthy={"true"}, falsy={"false"}, metadata={
        "description": "Overwrite the rates an admin typed too (kept otherwise)"})


class ExchangeRateLoadOut(Schema):
    added = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    skipped_manual = fields.Integer(metadata={"description": "Rates an admin typed, kept"})


def _key(currency: str, day: str) -> tuple[str, date]:
    """The path's currency and day, refused as the core refuses a bad value (422)."""
    check_currency(currency)
    try:
        if ISO_DAY.match(day):
            return currency, date.fromisoformat(day)
    except ValueError:
        pass
    raise Invalid(f"{day!r} is not a day (YYYY-MM-DD)", code="invalid_date")


@blp.route("")
class Rates(MethodView):
    @blp.arguments(ExchangeRateListArgs, location="query")
    @blp.response(200, ExchangeRatePage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List exchange rates (newest day first)"""
        return paginate(db(), fx.rates_query(args.get("currency"), args.get("since"), args.get("until")), args)


@blp.route("/<currency>/<day>")
class RateByDay(MethodView):
    @blp.arguments(ExchangeRateIn)
    @blp.response(200, ExchangeRateOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=ExchangeRateOut, description="Created")
    def put(self, data, currency, day):  # type: ignore[no-untyped-def]
        """Type a rate (source manual, which later imports keep; idempotent)"""
        found, created = fx.set_rate(db(), *_key(currency, day), data["rate"], actor=actor())
        return found, 201 if created else 200

    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")  # exchange_rate_not_found
    def delete(self, currency, day):  # type: ignore[no-untyped-def]
        """Delete a rate (issued invoices keep the rate they used)"""
        fx.delete_rate(db(), *_key(currency, day), actor=actor())


@blp.route("/import", methods=["POST"])
@blp.arguments(ExchangeRateImportArgs, location="query")
@blp.response(200, ExchangeRateLoadOut)
@blp.doc(requestBody={"required": True, "description": "The ECB's eurofxref-hist.csv (or eurofxref.csv, or an "
                      "SDMX CSV of data-api.ecb.europa.eu), as downloaded",
                      "content": {CSV_MIMETYPE: {"schema": {"type": "string"}}}})
def import_rates(args):  # type: ignore[no-untyped-def]
    """Import the ECB's CSV file: all or nothing, idempotent"""
    if request.mimetype != CSV_MIMETYPE:
        raise Problem(415, "unsupported_media_type", f"the request body must be {CSV_MIMETYPE}: the ECB's file")
    request.max_content_length = IMPORT_MAX_BYTES
    rows = fx.parse_ecb_csv(fx.decode(request.get_data(cache=False)))
    return fx.load(db(), rows, replace=args["replace"], actor=actor())
