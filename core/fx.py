"""Foreign currencies: the ECB's euro reference rates, and the VAT in euros they give.

An invoice in another currency must still state its VAT total in euros
(CGI art. 289-IV; BR-FR-CO-12, BT-111), converted at the latest rate the
European Central Bank published on the day the VAT became chargeable (CGI
art. 266-1 bis). jalon never fetches rates: an admin downloads the ECB's
``eurofxref-hist.csv`` and loads it (``jalon rates load``, or the API's
import), or types a rate. A rate is what the ECB publishes: how many units of
the currency one euro buys.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from . import audit
from .errors import Invalid, NotFound
from .models import ExchangeRate, Invoice
from .money import check_currency, quantize, to_decimal
from .types import utcnow

EURO = "EUR"
SOURCES = ("ecb", "manual")
# the ECB publishes on TARGET working days: a day's latest rate is four days old at most
# (Easter Monday takes Thursday's), so a week without one means the rates were not loaded
LOOKBACK = timedelta(days=7)
# what the rate column keeps on every engine (NUMERIC(24, 6) on PostgreSQL): more would be
# rounded by one engine and not by the other
RATE_PLACES = 6
# far above any currency's rate, and within what the column holds
RATE_CEILING = Decimal(10) ** 12
HOW_TO_LOAD = ("load the ECB's rates (download eurofxref-hist.csv from the ECB, then "
               "`jalon rates load eurofxref-hist.csv` or POST /api/v1/exchange-rates/import), "
               "or type one with `jalon rates set`")

Row = tuple[str, date, Decimal]


@dataclass(frozen=True, slots=True)
class LoadResult:
    added: int
    updated: int
    unchanged: int
    skipped_manual: int


@dataclass(frozen=True)
class _Rates:
    """What the audit trail names for rates, which have no id of their own: the table and a key."""

    __tablename__ = "exchange_rates"
    id: str


# ------------------------------------------------------------------ values


def check_rate(value: Any) -> Decimal:
    """A rate as the ECB writes it: a positive decimal, at most 6 places (floats refused)."""
    rate = to_decimal(value, what="exchange rate")
    if rate <= 0:
        raise Invalid(f"an exchange rate must be positive, not {rate}", code="invalid_exchange_rate")
    if rate >= RATE_CEILING:
        raise Invalid(f"exchange rate {rate} is out of range", code="invalid_exchange_rate")
    if rate != round(rate, RATE_PLACES):
        raise Invalid(f"an exchange rate has at most {RATE_PLACES} decimal places, not {rate}",
                      code="invalid_exchange_rate")
    return rate


def _foreign(currency: Any) -> str:
    currency = check_currency(currency)
    if currency == EURO:
        raise Invalid("EUR is the euro itself: it has no exchange rate", code="invalid_currency")
    return currency


# ------------------------------------------------------------------ the ECB's CSV files

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# the one-day eurofxref.csv writes "05 December 2026", in English whatever the locale
_LONG_DAY = re.compile(r"^(\d{1,2}) ([A-Za-z]+) (\d{4})$")
_MONTHS = {name: n for n, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}
SDMX_COLUMNS = ("FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX", "TIME_PERIOD", "OBS_VALUE")
# the daily reference rate against the euro; a data-api file may hold other series too
SDMX_SERIES = {"FREQ": "D", "CURRENCY_DENOM": "EUR", "EXR_TYPE": "SP00", "EXR_SUFFIX": "A"}
WIDE_MISSING = frozenset({"N/A"})
SDMX_MISSING = frozenset({"", "NaN"})


def _bad(line: int, message: str, column: str | None = None) -> Invalid:
    where = f"line {line}" + (f", column {column}" if column else "")
    return Invalid(f"ECB rates file, {where}: {message}", code="ecb_csv_invalid",
                   details={"line": line, "column": column})


def decode(data: bytes) -> str:
    """The text of an uploaded file (the ECB's are ASCII; a UTF-8 BOM is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Invalid(f"ECB rates file: not UTF-8 text (byte {error.start})", code="ecb_csv_invalid") from None


def _day(text: str, line: int, column: str) -> date:
    try:
        if _ISO_DAY.match(text):
            return date.fromisoformat(text)
        long = _LONG_DAY.match(text)
        if long and long.group(2).lower() in _MONTHS:
            return date(int(long.group(3)), _MONTHS[long.group(2).lower()], int(long.group(1)))
    except ValueError:
        pass
    raise _bad(line, f"{text!r} is not a date (2026-12-04, or 04 December 2026)", column)


def _rate(text: str, line: int, column: str) -> Decimal:
    try:
        return check_rate(text)
    except Invalid as error:
        raise _bad(line, error.message, column) from None


def _currency(text: str, line: int, column: str) -> str:
    try:
        return _foreign(text)
    except Invalid as error:
        raise _bad(line, error.message, column) from None


def _records(text: str):  # type: ignore[no-untyped-def]
    """(line number, stripped cells) of each row holding something; ``#`` lines are comments."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells) and not cells[0].startswith("#"):
                yield reader.line_num, cells
    except csv.Error as error:
        raise _bad(reader.line_num, f"not CSV ({error})") from None


def _wide(header: list[str], records, header_line: int) -> list[Row]:  # type: ignore[no-untyped-def]
    """``Date,USD,JPY,...`` then one row a day; "N/A" where the ECB has no rate (an empty
    value is an error: the ECB never writes one); a trailing empty column."""
    names = header[1:]
    while names and not names[-1]:
        names.pop()
    currencies = []
    for index, name in enumerate(names, start=2):
        currency = _currency(name, header_line, str(index))
        if currency in currencies:
            raise _bad(header_line, f"{currency} is named twice", currency)
        currencies.append(currency)
    rows = []
    for line, cells in records:
        values = cells[1:]
        while values and not values[-1]:  # the trailing column
            values.pop()
        if len(values) != len(currencies):
            raise _bad(line, f"expected {len(currencies)} values, one per currency of the header, found {len(values)}")
        day = _day(cells[0], line, "Date")
        rows += [(currency, day, _rate(value, line, currency))
                 for currency, value in zip(currencies, values) if value not in WIDE_MISSING]
    return rows


def _sdmx(header: list[str], records, header_line: int) -> list[Row]:  # type: ignore[no-untyped-def]
    """data-api.ecb.europa.eu's SDMX CSV: one observation a row; only the daily reference rates are kept."""
    at = {name: header.index(name) for name in SDMX_COLUMNS}
    rows = []
    for line, cells in records:
        if len(cells) < len(header):
            raise _bad(line, f"{len(cells)} columns where the header names {len(header)}")
        if any(cells[at[name]] != wanted for name, wanted in SDMX_SERIES.items()):
            continue
        value = cells[at["OBS_VALUE"]]
        if value in SDMX_MISSING:
            continue
        currency = _currency(cells[at["CURRENCY"]], line, "CURRENCY")
        rows.append((currency, _day(cells[at["TIME_PERIOD"]], line, "TIME_PERIOD"), _rate(value, line, "OBS_VALUE")))
    return rows


def parse_ecb_csv(text: str) -> list[Row]:
    """The (currency, day, rate) of an ECB file, in either format the ECB publishes:

    * the wide ``eurofxref-hist.csv`` (and the one-day ``eurofxref.csv``):
      ``Date,USD,JPY,...``, one row a day, ``N/A`` where there is no rate;
    * the long SDMX CSV of data-api.ecb.europa.eu (``KEY,FREQ,CURRENCY,...,
      TIME_PERIOD,OBS_VALUE,...``), of which the daily reference rates are kept.

    All or nothing: the first bad value raises :class:`Invalid`
    (``ecb_csv_invalid``) naming its line and column; a file that holds no
    rate at all raises ``ecb_csv_empty`` (the wrong file, most likely)."""
    records = _records(text)
    first = next(records, None)
    if first is None:
        raise Invalid("ECB rates file: it is empty (no header)", code="ecb_csv_invalid",
                      details={"line": 1, "column": None})
    line, header = first
    if header[0].lower() == "date":
        rows = _wide(header, records, line)
    elif set(SDMX_COLUMNS) <= set(header):
        rows = _sdmx(header, records, line)
    else:
        raise _bad(line, f"the header {','.join(header[:4])},... is neither the ECB's eurofxref CSV "
                         "(Date,USD,JPY,...) nor its SDMX CSV (KEY,FREQ,CURRENCY,...,TIME_PERIOD,OBS_VALUE)")
    seen: dict[tuple[str, date], Decimal] = {}
    for currency, day, rate in rows:
        if seen.setdefault((currency, day), rate) != rate:
            raise Invalid(f"ECB rates file: {currency} on {day} is given twice, {seen[currency, day]} and {rate}",
                          code="ecb_csv_invalid", details={"line": None, "column": currency})
    if not seen:
        raise Invalid("ECB rates file: it holds no daily euro reference rate", code="ecb_csv_empty")
    return [(currency, day, rate) for (currency, day), rate in seen.items()]


# ------------------------------------------------------------------ the table


def load(session: Session, rows: Iterable[Row], *, source: str = "ecb", replace: bool = False,
         actor: str) -> LoadResult:
    """Upsert parsed rates. A rate an admin typed (``manual``) stays unless
    ``replace``: the admin knew better, or a load would silently undo them.
    Loading the same file again changes nothing and records nothing; a load
    that changes something leaves one audit record summing it up."""
    if source not in SOURCES:
        raise Invalid(f"source must be one of {', '.join(SOURCES)}", code="invalid_rate_source")
    checked = [(_foreign(currency), day, check_rate(rate)) for currency, day, rate in rows]
    if not checked:
        return LoadResult(0, 0, 0, 0)
    days = [day for _, day, _ in checked]
    existing = {
        (currency, day): (rate, was)
        for currency, day, rate, was in session.execute(
            select(ExchangeRate.currency, ExchangeRate.day, ExchangeRate.rate, ExchangeRate.source)
            .where(ExchangeRate.day.between(min(days), max(days)))
        )
    }
    now = utcnow()
    added, changed = [], []
    unchanged = kept = 0
    for currency, day, rate in checked:
        found = existing.get((currency, day))
        value = {"currency": currency, "day": day, "rate": rate, "source": source, "loaded_at": now}
        if found is None:
            added.append(value)
        elif found[1] == "manual" and source != "manual" and not replace:
            kept += 1
        elif found == (rate, source):
            unchanged += 1
        else:
            changed.append(value)
    if added:
        session.execute(ExchangeRate.__table__.insert(), added)
    if changed:
        session.execute(update(ExchangeRate), changed)  # by primary key
    for held in [obj for obj in session.identity_map.values() if isinstance(obj, ExchangeRate)]:
        session.expire(held)  # the statements above went around them
    result = LoadResult(len(added), len(changed), unchanged, kept)
    if added or changed:
        first, last = min(days), max(days)
        audit.record(session, actor=actor, action="exchange_rates.loaded", subject=_Rates(f"{first}..{last}"),
                     details={"source": source, "replace": replace, "from": first, "until": last,
                              "currencies": sorted({currency for currency, _, _ in checked}), **asdict(result)})
    return result


def set_rate(session: Session, currency: str, day: date, rate: Any, *, actor: str) -> tuple[ExchangeRate, bool]:
    """Type a rate (source ``manual``), which later loads keep. Returns (rate, created);
    setting the same rate again changes nothing and records nothing."""
    currency, rate = _foreign(currency), check_rate(rate)
    found = session.get(ExchangeRate, (currency, day))
    created = found is None
    if found is not None and found.rate == rate and found.source == "manual":
        return found, False
    previous = None if found is None else {"rate": found.rate, "source": found.source}
    if found is None:
        found = ExchangeRate(currency=currency, day=day)
        session.add(found)
    found.rate, found.source, found.loaded_at = rate, "manual", utcnow()
    session.flush()
    audit.record(session, actor=actor, action="exchange_rate.set", subject=_Rates(f"{currency}/{day}"),
                 details={"currency": currency, "day": day, "rate": rate, "previous": previous})
    return found, created


def delete_rate(session: Session, currency: str, day: date, *, actor: str) -> None:
    """Remove one rate (a typo, say). Issued invoices keep the rate they froze."""
    found = session.get(ExchangeRate, (check_currency(currency), day))
    if found is None:
        raise NotFound(f"no {currency} rate on {day}", code="exchange_rate_not_found")
    session.delete(found)
    session.flush()
    audit.record(session, actor=actor, action="exchange_rate.deleted", subject=_Rates(f"{currency}/{day}"),
                 details={"currency": currency, "day": day, "rate": found.rate, "source": found.source})


def rates_query(currency: str | None = None, since: date | None = None, until: date | None = None) -> Select:
    """Rates newest first, then by currency; ``since`` and ``until`` included."""
    query = select(ExchangeRate).order_by(ExchangeRate.day.desc(), ExchangeRate.currency)
    if currency is not None:
        query = query.where(ExchangeRate.currency == check_currency(currency))
    if since is not None:
        query = query.where(ExchangeRate.day >= since)
    if until is not None:
        query = query.where(ExchangeRate.day <= until)
    return query


def list_rates(session: Session, currency: str | None = None, since: date | None = None,
               until: date | None = None) -> list[ExchangeRate]:
    return list(session.execute(rates_query(currency, since, until)).scalars())


def rate_for(session: Session, currency: str, day: date) -> ExchangeRate:
    """The latest rate published on or before ``day``: the ECB publishes on
    TARGET working days only, so a Saturday takes Friday's. None in the week
    before ``day``: ``exchange_rate_missing``, rather than an old rate
    silently put on an invoice."""
    currency = _foreign(currency)
    found = session.execute(
        select(ExchangeRate)
        .where(ExchangeRate.currency == currency, ExchangeRate.day <= day, ExchangeRate.day >= day - LOOKBACK)
        .order_by(ExchangeRate.day.desc()).limit(1)
    ).scalar_one_or_none()
    if found is None:
        latest = session.scalar(select(ExchangeRate.day).where(ExchangeRate.currency == currency,
                                                                 ExchangeRate.day <= day)
                                .order_by(ExchangeRate.day.desc()).limit(1))
        known = f" (the latest known is of {latest})" if latest else ""
        raise Invalid(f"no ECB rate for {currency} on {day} or in the {LOOKBACK.days} days before{known}: {HOW_TO_LOAD}",
                      code="exchange_rate_missing", details={"currency": currency, "day": day, "latest": latest})
    return found


def chargeable_day(invoice: Invoice) -> date:
    """The day whose rate converts the invoice's VAT into euros.

    Goods: the VAT becomes chargeable on delivery (CGI art. 269), so the
    delivery date (``service_date``, BT-72). Services: it becomes chargeable
    when the price is paid, or when invoiced if the entity opted for VAT on
    debits; the payment day is unknown when the invoice is written, yet the
    invoice must state its VAT in euros, so it uses the rate of its own date.
    This is the rate on the invoice; a difference at payment is a matter for
    the VAT return, not for the invoice. ``mixed`` counts as services.
    """
    if invoice.issue_date is None:
        raise ValueError("the invoice has no issue date yet: freeze() runs inside issue(), once it is set")
    if invoice.entity.operation_nature == "goods":
        return invoice.service_date or invoice.issue_date
    return invoice.issue_date


def freeze(session: Session, invoice: Invoice) -> None:
    """Set the invoice's exchange rate, the ECB day it is of, and its VAT
    total in euros (rounded half up to the cent), or clear the three for an
    invoice in euros. Called from ``issue()`` before the status leaves draft
    is flushed: an issued invoice's columns are frozen, by the guard and by
    the database (the look-up here flushes nothing, so a status already set
    in memory is fine). Raises ``exchange_rate_missing`` when no rate is
    loaded, so the issue fails and uses no number."""
    if invoice.currency == EURO:
        invoice.exchange_rate = invoice.exchange_rate_date = invoice.vat_total_eur = None
        return
    with session.no_autoflush:
        found = rate_for(session, invoice.currency, chargeable_day(invoice))
    invoice.exchange_rate = found.rate
    invoice.exchange_rate_date = found.day
    invoice.vat_total_eur = quantize(invoice.total_vat / found.rate, 2, "half_up")
