"""Foreign currencies: the ECB's files read exactly, rates loaded idempotently,
the rate of the chargeable day found, and the VAT total in euros frozen to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from jalon.core import catalog, fx
from jalon.core.db import unit_of_work
from jalon.core.errors import Invalid, NotFound
from jalon.core.models import AuditRecord, ExchangeRate
from jalon.core.vat import Vat
from sqlalchemy import func, select

from tests.factories import ENTITY, draft, line

D = Decimal
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecb-rates-sample.csv"

# the head of the ECB's eurofxref-hist.csv, as downloaded: every currency since 1999, N/A, a trailing column
HIST = (
    "Date,USD,JPY,BGN,CYP,CZK,DKK,EEK,GBP,HUF,LTL,LVL,MTL,PLN,ROL,RON,SEK,SIT,SKK,CHF,ISK,NOK,HRK,RUB,TRL,TRY,"
    "AUD,BRL,CAD,CNY,HKD,IDR,ILS,INR,KRW,MXN,MYR,NZD,PHP,SGD,THB,ZAR,\n"
    "2026-12-04,1.0842,163.12,1.9558,N/A,24.929,7.4656,N/A,0.8521,406.53,N/A,N/A,N/A,4.2683,N/A,4.9776,11.0015,"
    "N/A,N/A,0.9398,144.9,11.8415,N/A,N/A,N/A,43.6289,1.7805,6.4585,1.5695,8.2563,8.8112,18936.23,4.1478,"
    "96.8445,1627.33,22.1437,4.9659,1.9223,64.568,1.4996,37.985,20.9715,\n"
    "2026-12-03,1.0836,162.87,1.9558,N/A,24.931,7.4655,N/A,0.85289,406.1,N/A,N/A,N/A,4.2691,N/A,4.9775,11.0025,"
    "N/A,N/A,0.937,144.7,11.8395,N/A,N/A,N/A,43.5771,1.7788,6.4522,1.5701,8.2535,8.8062,18921.98,4.1496,"
    "96.7315,1625.66,22.1328,4.9614,1.9203,64.544,1.4987,37.962,20.9583,\n"
)
# eurofxref.csv: one day, its date written out, spaces after the commas
ONE_DAY = ("Date, USD, JPY, BGN, CZK, DKK, GBP, HUF, PLN, RON, SEK, CHF, \n"
           "04 December 2026, 1.0842, 163.12, 1.9558, 24.929, 7.4656, 0.8521, 406.53, 4.2683, 4.9776, 11.0015, "
           "0.9398, \n")
SDMX_HEADER = "KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n"
# data-api.ecb.europa.eu, SDMX CSV: a quoted title with a comma; missing values, a monthly series and
# an end-of-period one to leave out
SDMX = (
    "KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS,TITLE_COMPL\n"
    'EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2026-12-03,1.0836,A,"ECB reference exchange rate, US dollar/Euro"\n'
    'EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2026-12-04,1.0842,A,"ECB reference exchange rate, US dollar/Euro"\n'
    'EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2026-12-07,NaN,M,"ECB reference exchange rate, US dollar/Euro"\n'
    'EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2026-12-08,,M,"ECB reference exchange rate, US dollar/Euro"\n'
    'EXR.M.USD.EUR.SP00.A,M,USD,EUR,SP00,A,2026-11,1.0840,A,"monthly average"\n'
    'EXR.D.USD.EUR.SP00.E,D,USD,EUR,SP00,E,2026-12-04,1.0900,A,"end of period"\n'
)


def rates(text: str) -> dict[tuple[str, date], Decimal]:
    return {(currency, day): rate for currency, day, rate in fx.parse_ecb_csv(text)}


def problem(text: str) -> Invalid:
    with pytest.raises(Invalid) as raised:
        fx.parse_ecb_csv(text)
    return raised.value


# ------------------------------------------------------------------ reading the files


def test_the_history_file_gives_every_published_rate_and_skips_the_n_a():
    found = rates(HIST)
    assert found["USD", date(2026, 12, 4)] == D("1.0842")
    assert found["GBP", date(2026, 12, 3)] == D("0.85289")
    assert found["IDR", date(2026, 12, 4)] == D("18936.23")
    assert ("CYP", date(2026, 12, 4)) not in found
    assert len(found) == 2 * 30  # 41 currencies in the header, 11 of them N/A


def test_rates_are_exact_decimals_as_written():
    [(_, _, rate)] = fx.parse_ecb_csv("Date,CHF,\n2026-12-04,0.937,\n")
    assert type(rate) is Decimal and str(rate) == "0.937"


def test_the_one_day_file_with_its_written_out_date_is_read():
    found = rates(ONE_DAY)
    assert found["USD", date(2026, 12, 4)] == D("1.0842")
    assert found["CHF", date(2026, 12, 4)] == D("0.9398")
    assert len(found) == 11


def test_the_sdmx_file_keeps_only_the_daily_reference_rates():
    assert rates(SDMX) == {("USD", date(2026, 12, 3)): D("1.0836"), ("USD", date(2026, 12, 4)): D("1.0842")}


def test_the_sample_file_of_the_demo_is_read():
    found = rates(SAMPLE.read_text(encoding="utf-8"))
    assert {currency for currency, _ in found} == {"USD", "GBP", "CHF", "JPY"}
    days = {day for _, day in found}
    assert min(days) == date(2026, 10, 26) and max(days) == date(2026, 12, 4)
    assert all(day.weekday() < 5 for day in days) and len(found) == 4 * 30


def test_the_sample_file_starts_with_the_ecb_header_after_its_comments():
    first = next(row for row in SAMPLE.read_text(encoding="utf-8").splitlines() if not row.startswith("#"))
    assert first.startswith("Date,USD,") and first.endswith(",")


def test_a_byte_order_mark_is_dropped():
    assert rates(fx.decode("\ufeffDate,USD,\n2026-12-04,1.0842,\n".encode())) == {("USD", date(2026, 12, 4)): D("1.0842")}


@pytest.mark.parametrize(("text", "where"), [
    ("Date,USD,\n2026-12-04,-1.08,\n", "line 2, column USD"),
    ("Date,USD,\n2026-12-04,0,\n", "line 2, column USD"),
    ("Date,USD,\n2026-12-04,abc,\n", "line 2, column USD"),
    ("Date,USD,\n2026-12-04,Infinity,\n", "line 2, column USD"),
    ("Date,USD,\n2026-12-04,1.0842123,\n", "line 2, column USD"),
    ("Date,USD,\n2026-12-04,1.0842,\n2026-12-32,1.0842,\n", "line 3, column Date"),
    ("Date,USD,\n04/12/2026,1.0842,\n", "line 2, column Date"),
    ("Date,USD,\n31 Decembre 2026,1.0842,\n", "line 2, column Date"),
    ("Date,USD,ZZZ,\n2026-12-04,1.0842,1,\n", "line 1, column 3"),
    ("Date,USD,EUR,\n2026-12-04,1.0842,1,\n", "line 1, column 3"),
    ("Date,USD,USD,\n2026-12-04,1.0842,1.0842,\n", "line 1, column USD"),
    ("Date,USD,JPY,\n2026-12-04,1.0842,\n", "line 2"),
    ("Date,USD,\n2026-12-04,1.0842,163.12,\n", "line 2"),
    ("Time,Currency,Rate\n2026-12-04,USD,1.0842\n", "line 1"),
    (SDMX_HEADER + "EXR.D.XYZ.EUR.SP00.A,D,XYZ,EUR,SP00,A,2026-12-04,1.5\n", "line 2, column CURRENCY"),
    (SDMX_HEADER + "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2026-12-04,-2\n", "line 2, column OBS_VALUE"),
    (SDMX_HEADER + "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A\n", "line 2"),
    ("Date,USD,JPY,\n2026-12-04,,163.12,\n", "line 2, column USD"),
])
def test_a_bad_file_is_refused_naming_the_line_and_column(text, where):
    error = problem(text)
    assert error.code == "ecb_csv_invalid"
    assert f"ECB rates file, {where}:" in error.message


def test_an_empty_file_is_refused():
    assert problem("").code == problem("\n\n").code == "ecb_csv_invalid"


def test_a_file_without_any_rate_is_refused_as_the_wrong_file():
    assert problem("Date,USD,\n2026-12-04,N/A,\n").code == "ecb_csv_empty"
    assert problem(SDMX.replace(",D,USD", ",M,USD")).code == "ecb_csv_empty"


def test_a_day_given_twice_with_two_rates_is_refused():
    assert problem("Date,USD,\n2026-12-04,1.0842,\n2026-12-04,1.0843,\n").code == "ecb_csv_invalid"
    assert rates("Date,USD,\n2026-12-04,1.0842,\n2026-12-04,1.0842,\n") == {("USD", date(2026, 12, 4)): D("1.0842")}


def test_bytes_that_are_not_text_are_refused():
    with pytest.raises(Invalid) as raised:
        fx.decode(b"\xff\xfe\x00D")
    assert raised.value.code == "ecb_csv_invalid"


# ------------------------------------------------------------------ loading


def count(Session, model=ExchangeRate) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(Session) as session:
        return session.scalar(select(func.count()).select_from(model))


def load(Session, text: str, **kw):  # type: ignore[no-untyped-def]
    with unit_of_work(Session) as session:
        return fx.load(session, fx.parse_ecb_csv(text), actor="test", **kw)


def test_loading_the_same_file_twice_changes_and_records_nothing_the_second_time(Session):
    assert load(Session, HIST) == fx.LoadResult(added=60, updated=0, unchanged=0, skipped_manual=0)
    audits = count(Session, AuditRecord)
    assert load(Session, HIST) == fx.LoadResult(added=0, updated=0, unchanged=60, skipped_manual=0)
    assert count(Session) == 60 and count(Session, AuditRecord) == audits == 1


def test_a_load_is_audited_with_its_summary(Session):
    load(Session, SDMX)
    with unit_of_work(Session) as session:
        record = session.execute(select(AuditRecord)).scalar_one()
        assert (record.actor, record.action, record.subject_type) == ("test", "exchange_rates.loaded", "exchange_rates")
        assert record.details["added"] == 2 and record.details["currencies"] == ["USD"]
        assert record.details["from"] == "2026-12-03" and record.details["until"] == "2026-12-04"


def test_a_corrected_rate_is_updated(Session):
    load(Session, SDMX)
    result = load(Session, SDMX.replace("1.0842", "1.0844"))
    assert (result.updated, result.unchanged) == (1, 1)
    with unit_of_work(Session) as session:
        assert session.get(ExchangeRate, ("USD", date(2026, 12, 4))).rate == D("1.0844")


def test_a_typed_rate_is_kept_by_a_load_unless_replaced(Session):
    with unit_of_work(Session) as session:
        fx.set_rate(session, "USD", date(2026, 12, 4), "1.0850", actor="admin")
    assert load(Session, SDMX) == fx.LoadResult(added=1, updated=0, unchanged=0, skipped_manual=1)
    with unit_of_work(Session) as session:
        kept = session.get(ExchangeRate, ("USD", date(2026, 12, 4)))
        assert (kept.rate, kept.source) == (D("1.0850"), "manual")
    assert load(Session, SDMX, replace=True).updated == 1
    with unit_of_work(Session) as session:
        replaced = session.get(ExchangeRate, ("USD", date(2026, 12, 4)))
        assert (replaced.rate, replaced.source) == (D("1.0842"), "ecb")


def test_a_refused_file_stores_nothing(Session):
    with pytest.raises(Invalid):
        load(Session, HIST.replace("2026-12-03,1.0836", "2026-12-03,-1.0836"))
    assert count(Session) == 0


def test_set_rate_is_audited_and_idempotent(Session):
    with unit_of_work(Session) as session:
        _, created = fx.set_rate(session, "USD", date(2026, 12, 4), "1.0842", actor="admin")
        _, again = fx.set_rate(session, "USD", date(2026, 12, 4), D("1.08420"), actor="admin")
    assert (created, again) == (True, False)
    with unit_of_work(Session) as session:
        [record] = session.execute(select(AuditRecord)).scalars()
        assert (record.action, record.subject_id) == ("exchange_rate.set", "USD/2026-12-04")
        assert record.details["rate"] == "1.0842"


@pytest.mark.parametrize(("currency", "rate", "code"), [
    ("USD", "0", "invalid_exchange_rate"),
    ("USD", "-1.08", "invalid_exchange_rate"),
    ("USD", "1.0842001", "invalid_exchange_rate"),
    ("USD", 1.0842, "float_refused"),
    ("USD", "NaN", "invalid_decimal"),
    ("usd", "1.08", "invalid_currency"),
    ("ZZZ", "1.08", "invalid_currency"),
    ("EUR", "1", "invalid_currency"),
])
def test_set_rate_refuses_a_bad_value(Session, currency, rate, code):
    with unit_of_work(Session) as session, pytest.raises(Invalid) as raised:
        fx.set_rate(session, currency, date(2026, 12, 4), rate, actor="admin")
    assert raised.value.code == code


def test_delete_rate_removes_it_and_an_unknown_one_is_not_found(Session):
    load(Session, SDMX)
    with unit_of_work(Session) as session:
        fx.delete_rate(session, "USD", date(2026, 12, 4), actor="admin")
    assert count(Session) == 1
    with unit_of_work(Session) as session, pytest.raises(NotFound) as raised:
        fx.delete_rate(session, "USD", date(2026, 12, 4), actor="admin")
    assert raised.value.code == "exchange_rate_not_found"


def test_list_rates_filters_by_currency_and_days_newest_first(Session):
    load(Session, HIST)
    with unit_of_work(Session) as session:
        found = fx.list_rates(session, "USD")
        assert [(r.day, r.rate) for r in found] == [(date(2026, 12, 4), D("1.0842")), (date(2026, 12, 3), D("1.0836"))]
        assert len(fx.list_rates(session, since=date(2026, 12, 4))) == 30
        assert len(fx.list_rates(session, until=date(2026, 12, 3))) == 30
        assert fx.list_rates(session, "USD", since=date(2026, 12, 5)) == []


# ------------------------------------------------------------------ the rate of a day


@pytest.fixture
def sample(Session):  # type: ignore[no-untyped-def]
    load(Session, SAMPLE.read_text(encoding="utf-8"))
    return Session


@pytest.mark.parametrize(("day", "published"), [
    (date(2026, 12, 4), date(2026, 12, 4)),  # a Friday: its own
    (date(2026, 12, 5), date(2026, 12, 4)),  # Saturday: Friday's
    (date(2026, 12, 6), date(2026, 12, 4)),  # Sunday: Friday's
    (date(2026, 12, 11), date(2026, 12, 4)),  # a week on: still Friday's, the last day allowed
])
def test_rate_for_takes_the_latest_published_on_or_before_the_day(sample, day, published):
    with unit_of_work(sample) as session:
        found = fx.rate_for(session, "USD", day)
        assert found.day == published and found.currency == "USD"


def test_a_rate_older_than_a_week_is_missing_and_the_error_says_how_to_load(sample):
    with unit_of_work(sample) as session, pytest.raises(Invalid) as raised:
        fx.rate_for(session, "USD", date(2026, 12, 12))
    error = raised.value
    assert error.code == "exchange_rate_missing"
    assert "USD" in error.message and "2026-12-12" in error.message and "2026-12-04" in error.message
    assert "jalon rates load eurofxref-hist.csv" in error.message


def test_a_currency_never_loaded_is_missing(sample):
    with unit_of_work(sample) as session, pytest.raises(Invalid) as raised:
        fx.rate_for(session, "SEK", date(2026, 12, 4))
    assert raised.value.code == "exchange_rate_missing" and "SEK" in raised.value.message


def test_a_day_before_any_rate_is_missing(sample):
    with unit_of_work(sample) as session, pytest.raises(Invalid) as raised:
        fx.rate_for(session, "USD", date(2026, 10, 25))
    assert raised.value.code == "exchange_rate_missing"


# ------------------------------------------------------------------ freezing the invoice


def usd_draft(session, *lines, nature: str = "services", currency: str = "USD",  # type: ignore[no-untyped-def]
              issued_on=date(2026, 12, 5), served_on=date(2026, 11, 30)):
    """A draft in another currency, dated as issue() dates it, of an entity selling ``nature``."""
    catalog.upsert_entity(session, {**ENTITY, "operation_nature": nature}, actor="test")
    invoice = draft(session, *lines, currency=currency)
    invoice.issue_date, invoice.service_date = issued_on, served_on
    return invoice


def test_freeze_converts_the_vat_total_at_the_rate_of_the_invoice_date_for_services(world, sample):
    with unit_of_work(world) as session:
        invoice = usd_draft(session, line("6172.80"))  # VAT 20 %: 1234.56 USD
        assert invoice.total_vat == D("1234.56")
        fx.freeze(session, invoice)
        # issued on a Saturday: Friday's 1.0842; 1234.56 / 1.0842 = 1138.682...
        assert (invoice.exchange_rate, invoice.exchange_rate_date) == (D("1.0842"), date(2026, 12, 4))
        assert invoice.vat_total_eur == D("1138.68")


def test_freeze_takes_the_delivery_day_for_goods(world, sample):
    with unit_of_work(world) as session:
        invoice = usd_draft(session, line("6172.80"), nature="goods")
        fx.freeze(session, invoice)
        assert (invoice.exchange_rate, invoice.exchange_rate_date) == (D("1.0835"), date(2026, 11, 30))
        assert invoice.vat_total_eur == D("1139.42")  # 1234.56 / 1.0835 = 1139.418...


def test_freeze_takes_the_invoice_date_for_mixed_operations(world, sample):
    with unit_of_work(world) as session:
        invoice = usd_draft(session, line("6172.80"), nature="mixed")
        fx.freeze(session, invoice)
        assert invoice.exchange_rate_date == date(2026, 12, 4)


def test_freeze_rounds_half_up_to_the_cent(world):
    with unit_of_work(world) as session:
        fx.set_rate(session, "USD", date(2026, 12, 4), "2", actor="admin")
        invoice = usd_draft(session, line("1.25"))  # VAT 0.25 USD: 0.125 EUR
        fx.freeze(session, invoice)
        assert invoice.vat_total_eur == D("0.13")  # half even would say 0.12


def test_freeze_in_a_zero_decimal_currency(world, sample):
    with unit_of_work(world) as session:
        invoice = usd_draft(session, line("100000", vat=Vat("S", D("10"))), currency="JPY")
        assert invoice.total_vat == D("10000")
        fx.freeze(session, invoice)
        assert invoice.exchange_rate == D("163.12") and invoice.vat_total_eur == D("61.30")  # 61.304...


def test_freeze_clears_the_three_for_an_invoice_in_euros(world):
    with unit_of_work(world) as session:
        invoice = draft(session)
        invoice.issue_date = date(2026, 12, 4)
        invoice.exchange_rate, invoice.exchange_rate_date, invoice.vat_total_eur = D("1"), date(2026, 12, 4), D("1")
        fx.freeze(session, invoice)
        assert (invoice.exchange_rate, invoice.exchange_rate_date, invoice.vat_total_eur) == (None, None, None)


def test_freeze_without_a_rate_fails_with_the_missing_rate(world):
    with unit_of_work(world) as session:
        invoice = usd_draft(session)
        with pytest.raises(Invalid) as raised:
            fx.freeze(session, invoice)
        assert raised.value.code == "exchange_rate_missing"
        assert invoice.exchange_rate is None and invoice.vat_total_eur is None


def test_the_frozen_values_are_stored_exactly(world, sample):
    with unit_of_work(world) as session:
        invoice = usd_draft(session, line("6172.80"))
        fx.freeze(session, invoice)
        invoice_id = invoice.id
    with unit_of_work(world) as session:
        from jalon.core.models import Invoice

        stored = session.get(Invoice, invoice_id)
        assert (stored.exchange_rate, stored.exchange_rate_date, stored.vat_total_eur) == (
            D("1.0842"), date(2026, 12, 4), D("1138.68"))


def test_a_rate_the_session_holds_is_read_afresh_after_a_load(Session):
    with unit_of_work(Session) as session:
        typed, _ = fx.set_rate(session, "USD", date(2026, 12, 4), "1.0850", actor="admin")
        fx.load(session, fx.parse_ecb_csv(SDMX), replace=True, actor="test")
        assert (typed.rate, typed.source) == (D("1.0842"), "ecb")
