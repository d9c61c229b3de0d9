"""The admins' configuration: entities, clients, contracts with their milestones
and rates, integrations and mappings.

Every function here is an idempotent upsert keyed by a natural key (an entity's
or client's ``code``, a contract's ``reference``, an integration's ``key``...):
applying the same data twice changes nothing and records nothing the second
time. Each change leaves an audit record listing the fields that changed;
secrets are never written to the audit trail, only the fact that they changed.
The API and ``jalon config apply`` both go through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping as MappingABC
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, identifiers, secrets
from .errors import Conflict, Invalid, NotFound
from .models import (
    CONTRACT_KINDS,
    RETAINER_PERIODS,
    Client,
    Contract,
    ContractMember,
    Entity,
    Integration,
    Mapping,
    Milestone,
    NotificationChannel,
    Rate,
)
from .money import check_currency, to_decimal
from .terms import PaymentTerms
from .types import utcnow
from .vat import Vat, check_french_rate

Data = MappingABC[str, Any]

SECRET_FIELDS = frozenset({"secret", "previous_secret", "credentials"})
# the languages jalon speaks, each with the Babel locale its amounts and dates are written in
LOCALES = {"fr": "fr_FR", "en": "en_GB"}
LANGUAGES = tuple(LOCALES)
OPERATION_NATURES = ("services", "goods", "mixed")


def _singular(model: type) -> str:
    """The record's kind as audit actions name it: "entity", "client", "milestone"..."""
    table = model.__tablename__
    return table[:-3] + "y" if table.endswith("ies") else table[:-1]


def _get_by(session: Session, model: type, field: str, value: Any, code: str) -> Any:
    found = session.execute(select(model).where(getattr(model, field) == value)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no {_singular(model)} with {field} {value!r}", code=code)
    return found


def get_entity(session: Session, code: str) -> Entity:
    return _get_by(session, Entity, "code", code, "entity_not_found")


def get_client(session: Session, code: str) -> Client:
    return _get_by(session, Client, "code", code, "client_not_found")


def get_contract(session: Session, reference: str) -> Contract:
    return _get_by(session, Contract, "reference", reference, "contract_not_found")


def get_integration(session: Session, key: str) -> Integration:
    return _get_by(session, Integration, "key", key, "integration_not_found")


def _assign(obj: Any, values: Data) -> dict[str, Any]:
    """Set the attributes that differ; return {field: new value} of what
    changed, for the audit trail, which is not sealed: a secret, or any value
    sealed at rest (a channel's target, a chat webhook's URL in it), as "(secret)"."""
    hidden = SECRET_FIELDS | secrets.sealed_fields(type(obj))
    changed: dict[str, Any] = {}
    for field, value in values.items():
        if getattr(obj, field) != value:
            setattr(obj, field, value)
            changed[field] = "(secret)" if field in hidden else value
    return changed


def _upsert(
    session: Session, model: type, key_field: str, key: Any, values: Data, *, actor: str, extra_key: Data | None = None
) -> tuple[Any, bool, dict[str, Any]]:
    query = select(model).where(getattr(model, key_field) == key)
    for field, value in (extra_key or {}).items():
        query = query.where(getattr(model, field) == value)
    obj = session.execute(query).scalar_one_or_none()
    created = obj is None
    if created:
        obj = model(**{key_field: key, **(extra_key or {})})
        session.add(obj)
    changed = _assign(obj, values)
    if created or changed:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=f"{_singular(model)}.{'created' if created else 'updated'}",
            subject=obj,
            details=changed,
        )
    return obj, created, changed


def _optional(data: Data, field: str, check) -> Any:  # type: ignore[no-untyped-def]
    value = data.get(field)
    if value in (None, ""):
        return None
    return check(value)


def _address(data: Data) -> dict[str, Any]:
    country = (data.get("country_code") or "FR").upper()
    if len(country) != 2 or not country.isalpha():
        raise Invalid(f"country_code {country!r} is not an ISO 3166 alpha-2 code", code="invalid_country")
    return {
        "address_line1": data.get("address_line1") or "",
        "address_line2": data.get("address_line2") or None,
        "postcode": data.get("postcode") or "",
        "city": data.get("city") or "",
        "country_code": country,
    }


def _require(data: Data, *fields: str) -> None:
    missing = [f for f in fields if data.get(f) in (None, "")]
    if missing:
        raise Invalid(f"missing: {', '.join(missing)}", code="missing_field", details={"fields": missing})


def upsert_entity(session: Session, data: Data, *, actor: str) -> tuple[Entity, bool]:
    _require(data, "code", "name")
    siren = _optional(data, "siren", identifiers.siren)
    siret = _optional(data, "siret", identifiers.siret)
    if siren and siret and not siret.startswith(siren):
        raise Invalid("the SIRET must start with the SIREN", code="siret_siren_mismatch")
    capital = _optional(data, "share_capital", lambda v: to_decimal(v, what="share capital"))
    prefix = data.get("invoice_prefix") or "F"
    # the number is the prefix, the year and 5+ digits: within the 35 characters and the
    # A-Z a-z 0-9 + - _ / of BR-FR-01 and BR-FR-02
    if not (prefix.isascii() and all(c.isalnum() or c in "+-_/" for c in prefix)) or len(prefix) > 20:
        raise Invalid("invoice_prefix: at most 20 of A-Z, a-z, 0-9, '+', '-', '_' and '/' (BR-FR-02: no space, "
                      "no accent)", code="invalid_prefix", details={"field": "invoice_prefix", "rule": "BR-FR-02"})
    siren_value = siren or (siret[:9] if siret else None)
    values = {
        "name": data["name"],
        "legal_form": data.get("legal_form") or None,
        "share_capital": capital,
        "siren": siren_value,
        "siret": siret,
        **_electronic_address(data, siren_value),
        "vat_franchise": bool(data.get("vat_franchise", False)),
        "rcs": data.get("rcs") or None,
        "vat_number": _optional(data, "vat_number", identifiers.vat_number),
        "iban": _optional(data, "iban", identifiers.iban),
        "bic": _optional(data, "bic", identifiers.bic),
        "email": data.get("email") or None,
        "currency": check_currency(data.get("currency") or "EUR"),
        "invoice_prefix": prefix,
        "vat_on_debits": bool(data.get("vat_on_debits", False)),
        **_billing_policy(data),
        **_address(data),
    }
    existing = session.execute(select(Entity).where(Entity.code == data["code"])).scalar_one_or_none()
    if existing is not None and existing.invoice_prefix != prefix and _has_issued(session, existing):
        raise Conflict(
            "the numbering prefix cannot change once invoices are issued: the sequence must stay continuous",
            code="prefix_locked",
        )
    entity, created, _ = _upsert(session, Entity, "code", data["code"], values, actor=actor)
    return entity, created


def _electronic_address(data: Data, siren_value: str | None) -> dict[str, Any]:
    """The electronic invoicing address given (0225 by default), checked; none given:
    None, and the invoice derives it from the SIREN when issued."""
    value = (data.get("electronic_address") or "").strip()
    if not value:
        if data.get("electronic_address_scheme"):
            raise Invalid("electronic_address_scheme is given without electronic_address",
                          code="invalid_electronic_address", details={"field": "electronic_address"})
        return {"electronic_address": None, "electronic_address_scheme": None}
    scheme, value = identifiers.electronic_address(value, data.get("electronic_address_scheme"),
                                                   siren_value=siren_value)
    return {"electronic_address": value, "electronic_address_scheme": scheme}


def _billing_policy(data: Data) -> dict[str, Any]:
    """What the entity prints on its invoices about payment, and when drafts issue themselves."""
    nature = data.get("operation_nature") or "services"
    if nature not in OPERATION_NATURES:
        raise Invalid(f"operation_nature must be one of {', '.join(OPERATION_NATURES)}",
                      code="invalid_operation_nature")
    penalty = _optional(data, "late_penalty_rate", lambda v: to_decimal(v, what="late penalty rate"))
    if penalty is not None and not Decimal(0) < penalty <= Decimal(100):
        raise Invalid("late_penalty_rate is a yearly percentage above 0 and at most 100 "
                      "(leave it out for the legal rate: the ECB rate + 10 points)", code="invalid_penalty_rate")
    threshold = _optional(data, "auto_issue_below", lambda v: to_decimal(v, what="auto-issue threshold"))
    if threshold is not None and threshold <= 0:
        raise Invalid("auto_issue_below must be a positive amount", code="invalid_auto_issue_threshold")
    discount = (data.get("early_payment_discount") or "").strip() or None
    if discount is not None and len(discount) > 300:
        raise Invalid("early_payment_discount is at most 300 characters", code="invalid_discount_terms")
    return {
        "operation_nature": nature,
        "late_penalty_rate": penalty,
        "early_payment_discount": discount,
        "auto_issue_below": threshold,
    }


def _delivery_address(data: Data) -> dict[str, Any]:
    delivery = data.get("delivery_address")
    if not delivery:
        return {f"delivery_{key}": None for key in ("address_line1", "address_line2", "postcode", "city",
                                                     "country_code")}
    if not isinstance(delivery, MappingABC):
        raise Invalid("delivery_address is an address (address_line1, postcode, city, country_code)",
                      code="invalid_address")
    _require(delivery, "address_line1", "city")
    address = _address(delivery)
    return {f"delivery_{key}": value for key, value in address.items()}


def _has_issued(session: Session, entity: Entity) -> bool:
    from .models import Invoice

    return session.execute(
        select(Invoice.id).where(Invoice.entity_id == entity.id, Invoice.number.is_not(None)).limit(1)
    ).first() is not None


def upsert_client(session: Session, data: Data, *, actor: str) -> tuple[Client, bool]:
    _require(data, "code", "name")
    language = (data.get("language") or "fr").lower()
    if language not in LANGUAGES:
        raise Invalid(f"language must be one of {', '.join(LANGUAGES)}", code="invalid_language")
    terms_data = data.get("payment_terms") or {}
    terms = PaymentTerms(terms_data.get("kind", "net"), terms_data.get("days", 30))
    emails = list(data.get("billing_emails") or [])
    for email in emails:
        if not isinstance(email, str) or "@" not in email or " " in email.strip():
            raise Invalid(f"{email!r} is not an e-mail address", code="invalid_email")
    siret = _optional(data, "siret", identifiers.siret)
    siren_value = _optional(data, "siren", identifiers.siren) or (siret[:9] if siret else None)
    values = {
        "name": data["name"],
        "siren": siren_value,
        "siret": siret,
        **_electronic_address(data, siren_value),
        "vat_number": _optional(data, "vat_number", identifiers.vat_number),
        "currency": check_currency(data.get("currency") or "EUR"),
        "language": language,
        "terms_kind": terms.kind,
        "terms_days": terms.days,
        "billing_emails": [e.strip() for e in emails],
        **_address(data),
        **_delivery_address(data),
    }
    client, created, _ = _upsert(session, Client, "code", data["code"], values, actor=actor)
    return client, created


def upsert_contract(session: Session, data: Data, *, actor: str) -> tuple[Contract, bool]:
    """A contract with, optionally, its milestones, rates and members (each list,
    when given, is upserted item by item; items not named are left alone)."""
    _require(data, "reference", "name", "kind", "entity", "client")
    kind = data["kind"]
    if kind not in CONTRACT_KINDS:
        raise Invalid(f"kind must be one of {', '.join(CONTRACT_KINDS)}", code="invalid_contract_kind")
    entity = get_entity(session, data["entity"])
    client = get_client(session, data["client"])
    currency = check_currency(data.get("currency") or client.currency)
    vat_data = data.get("vat") or {}
    vat = Vat.franchise() if entity.vat_franchise and not vat_data else check_french_rate(
        Vat(vat_data.get("category", "S"), vat_data.get("rate", Decimal("20")), vat_data.get("exemption_reason"),
            vat_data.get("exemption_code")))
    if entity.vat_franchise and vat.category in ("S", "Z"):
        raise Invalid(f"vat.category: entity {entity.code} is under the franchise (art. 293 B du CGI) and "
                      "charges no VAT: leave vat out, or give category E", code="vat_franchise_no_vat",
                      details={"field": "vat.category"})
    total = _optional(data, "total_amount", lambda v: to_decimal(v, what="total amount"))
    retainer_amount = _optional(data, "retainer_amount", lambda v: to_decimal(v, what="retainer amount"))
    retainer_period = data.get("retainer_period") or None
    if kind == "retainer":
        if retainer_amount is None or retainer_amount <= 0 or retainer_period not in RETAINER_PERIODS:
            raise Invalid(
                f"a retainer needs a positive retainer_amount and a retainer_period ({', '.join(RETAINER_PERIODS)})",
                code="invalid_retainer",
            )
    if total is not None and total <= 0:
        raise Invalid("total_amount must be positive", code="invalid_amount")
    starts_on = _optional(data, "starts_on", lambda v: v if isinstance(v, date) else _parse_date(v, "starts_on"))
    ends_on = _optional(data, "ends_on", lambda v: v if isinstance(v, date) else _parse_date(v, "ends_on"))
    if starts_on and ends_on and ends_on < starts_on:
        raise Invalid("ends_on is before starts_on", code="invalid_period")
    hours_per_day = to_decimal(data.get("hours_per_day", Decimal("8")), what="hours per day")
    if not Decimal(0) < hours_per_day <= 24:
        raise Invalid("hours_per_day must be between 0 and 24", code="invalid_hours_per_day")
    values = {
        "name": data["name"],
        "kind": kind,
        "entity_id": entity.id,
        "client_id": client.id,
        "currency": currency,
        "total_amount": total,
        "retainer_amount": retainer_amount,
        "retainer_period": retainer_period,
        "hours_per_day": hours_per_day,
        "vat_category": vat.category,
        "vat_rate": vat.rate,
        "vat_exemption_reason": vat.exemption_reason,
        "purchase_order_ref": data.get("purchase_order_ref") or None,
        "starts_on": starts_on,
        "ends_on": ends_on,
    }
    existing = session.execute(select(Contract).where(Contract.reference == data["reference"])).scalar_one_or_none()
    if existing is not None and (existing.entity_id, existing.client_id, existing.currency) != (
        entity.id, client.id, currency
    ) and existing.milestones and any(m.status != "pending" for m in existing.milestones):
        raise Conflict("a contract with billed milestones cannot change entity, client or currency",
                       code="contract_locked")
    if existing is not None and existing.total_amount != total and any(
        m.percentage is not None and m.status != "pending" for m in existing.milestones
    ):
        raise Conflict("the contract's total cannot change: a billed milestone is a percentage of it",
                       code="milestone_locked")
    contract, created, _ = _upsert(session, Contract, "reference", data["reference"], values, actor=actor)
    for position, milestone in enumerate(data.get("milestones") or [], start=1):
        upsert_milestone(session, contract, {"position": position, **milestone}, actor=actor)
    for rate in data.get("rates") or []:
        upsert_rate(session, contract, rate, actor=actor)
    for member in data.get("members") or []:
        upsert_member(session, contract, member, actor=actor)
    check_milestone_plan(contract)
    return contract, created


def check_milestone_plan(contract: Contract) -> None:
    """Percentages add up to at most 100 %, amounts to at most the contract total."""
    if not contract.milestones:
        return
    if contract.kind != "fixed_price":
        raise Invalid("only a fixed-price contract has milestones", code="milestones_need_fixed_price")
    percentages = sum((m.percentage for m in contract.milestones if m.percentage is not None), Decimal(0))
    if percentages > 100:
        raise Invalid(f"milestone percentages add up to {percentages} %, over 100 %", code="milestones_over_100")
    if any(m.percentage is not None for m in contract.milestones) and contract.total_amount is None:
        raise Invalid("percentage milestones need the contract's total_amount", code="contract_total_missing")
    if contract.total_amount is not None:
        planned = sum((m.price().amount for m in contract.milestones), Decimal(0))
        if planned > contract.total_amount:
            raise Invalid(
                f"milestones add up to {planned}, more than the contract's {contract.total_amount}",
                code="milestones_over_total",
            )


def upsert_milestone(session: Session, contract: Contract, data: Data, *, actor: str) -> tuple[Milestone, bool]:
    _require(data, "reference", "name")
    amount = _optional(data, "amount", lambda v: to_decimal(v, what="milestone amount"))
    percentage = _optional(data, "percentage", lambda v: to_decimal(v, what="milestone percentage"))
    if (amount is None) == (percentage is None):
        raise Invalid("a milestone has an amount or a percentage, not both, not neither",
                      code="milestone_amount_or_percentage")
    if amount is not None and amount <= 0:
        raise Invalid("a milestone's amount must be positive", code="invalid_amount")
    if percentage is not None and not Decimal(0) < percentage <= 100:
        raise Invalid("a milestone's percentage must be above 0 and at most 100", code="invalid_percentage")
    match = data.get("match") or {}
    selectors = {
        "match_task_id": match.get("task_id") or data.get("match_task_id") or None,
        "match_label": match.get("label") or data.get("match_label") or None,
        "match_task_type": match.get("task_type") or data.get("match_task_type") or None,
    }
    if not any(selectors.values()):
        raise Invalid(
            f"milestone {data['reference']} needs a selector: match.task_id, match.label or match.task_type",
            code="milestone_selector_required",
        )
    values: dict[str, Any] = {
        "name": data["name"],
        "amount": amount,
        "percentage": percentage,
        "position": int(data.get("position") or 0),
        **selectors,
    }
    existing = session.execute(
        select(Milestone).where(Milestone.contract_id == contract.id, Milestone.reference == data["reference"])
    ).scalar_one_or_none()
    if existing is not None and existing.status != "pending" and (
        existing.amount, existing.percentage
    ) != (amount, percentage):
        raise Conflict(f"milestone {existing.reference} is {existing.status}: its price cannot change",
                       code="milestone_locked")
    milestone, created, _ = _upsert(
        session, Milestone, "reference", data["reference"], values, actor=actor, extra_key={"contract_id": contract.id}
    )
    if created:
        session.refresh(contract, ["milestones"])
    return milestone, created


def upsert_rate(session: Session, contract: Contract, data: Data, *, actor: str) -> tuple[Rate, bool]:
    if contract.kind != "time_and_materials":
        raise Invalid("only a time-and-materials contract has rates", code="rates_need_time_and_materials")
    person, role = data.get("person") or None, data.get("role") or None
    if (person is None) == (role is None):
        raise Invalid("a rate is for a person or for a role", code="rate_person_or_role")
    _require(data, "amount", "effective_from")
    amount = to_decimal(data["amount"], what="rate")
    if amount <= 0:
        raise Invalid("a rate must be positive", code="invalid_amount")
    unit = data.get("unit") or "day"
    if unit not in ("hour", "day"):
        raise Invalid("a rate's unit is hour or day", code="invalid_rate_unit")
    effective_from = data["effective_from"]
    if not isinstance(effective_from, date):
        effective_from = _parse_date(effective_from, "effective_from")
    rate, created, _ = _upsert(
        session, Rate, "contract_id", contract.id, {"amount": amount, "unit": unit}, actor=actor,
        extra_key={"person_ref": person, "role": role, "effective_from": effective_from},
    )
    return rate, created


def upsert_member(session: Session, contract: Contract, data: Data, *, actor: str) -> tuple[ContractMember, bool]:
    _require(data, "person", "role")
    member, created, _ = _upsert(
        session, ContractMember, "contract_id", contract.id, {"role": data["role"]}, actor=actor,
        extra_key={"person_ref": data["person"]},
    )
    return member, created


def rate_for(contract: Contract, person_ref: str, on: date, members: Iterable[ContractMember] = ()) -> Rate | None:
    """The rate in force on ``on`` for this person: their own rate first, else their role's."""
    role = next((m.role for m in members if m.person_ref == person_ref), None)
    for wanted in (("person_ref", person_ref), ("role", role)):
        if wanted[1] is None:
            continue
        rates = [r for r in contract.rates if getattr(r, wanted[0]) == wanted[1] and r.effective_from <= on]
        if rates:
            return max(rates, key=lambda r: r.effective_from)
    return None


# the connector's check of an integration's settings and base_url: (source, settings, base_url=)
# -> the settings to store
IntegrationCheck = Callable[..., MappingABC[str, Any]]


def upsert_integration(session: Session, data: Data, *, actor: str, rotation_time=None,  # type: ignore[no-untyped-def]
                       check: IntegrationCheck | None = None) -> tuple[Integration, bool]:
    """An integration; a new ``secret`` keeps the previous one for the overlap
    the connector allows (rotation without lost deliveries). ``check(source,
    settings, base_url=...)`` is the connector's validation (a source some
    plugin serves, settings its schema accepts, a base_url its SSRF guard
    accepts) and returns the settings to store: the core knows no plugin and
    opens no socket."""
    _require(data, "key", "source")
    key = data["key"]
    if not all(c.isalnum() or c in "-_" for c in key) or len(key) > 64:
        raise Invalid("an integration key may hold letters, digits, '-' and '_' (64 at most)",
                      code="invalid_integration_key")
    values: dict[str, Any] = {
        "source": data["source"],
        "name": data.get("name") or key,
        "base_url": data.get("base_url") or None,
        "settings": dict(data.get("settings") or {}),
        "enabled": bool(data.get("enabled", True)),
    }
    existing = session.execute(select(Integration).where(Integration.key == key)).scalar_one_or_none()
    if existing is not None and existing.source != data["source"]:
        raise Conflict(f"integration {key} is a {existing.source} integration", code="integration_source_locked")
    if check is not None:
        values["settings"] = dict(check(data["source"], data.get("settings"), base_url=values["base_url"]))
    secret = data.get("secret")
    if secret:
        if existing is None or existing.secret != secret:
            values["secret"] = secret
            if existing is not None and existing.secret:
                values["previous_secret"] = existing.secret
                values["secret_rotated_at"] = rotation_time or utcnow()
    if data.get("credentials") is not None:
        values["credentials"] = dict(data["credentials"])
    integration, created, _ = _upsert(session, Integration, "key", key, values, actor=actor)
    return integration, created


def upsert_mapping(session: Session, data: Data, *, actor: str) -> tuple[Mapping, bool]:
    _require(data, "integration", "project", "contract")
    integration = get_integration(session, data["integration"])
    contract = get_contract(session, data["contract"])
    statuses = [str(s) for s in data.get("done_statuses") or []]
    mapping, created, _ = _upsert(
        session, Mapping, "integration_id", integration.id,
        {"contract_id": contract.id, "done_statuses": statuses}, actor=actor,
        extra_key={"pm_project": str(data["project"])},
    )
    return mapping, created


ChannelCheck = Callable[[Data, Any], None]


def get_channel(session: Session, key: str) -> NotificationChannel:
    return _get_by(session, NotificationChannel, "key", key, "channel_not_found")


def upsert_channel(
    session: Session, data: Data, *, actor: str, check: ChannelCheck | None = None
) -> tuple[NotificationChannel, bool]:
    """A notification channel keyed by ``key``. ``check(data, existing)`` is the
    connector's validation (plugin kinds, target schema, SSRF guard): the core
    opens no socket. The secret is write-only: omitted, the stored one stays;
    the audit trail only says that it changed."""
    _require(data, "key", "kind")
    key = data["key"]
    if not isinstance(key, str) or not all(c.isalnum() or c in "-_" for c in key) or len(key) > 64:
        raise Invalid("a channel key may hold letters, digits, '-' and '_' (64 at most)",
                      code="invalid_channel_key")
    target = data.get("target") or {}
    if not isinstance(target, MappingABC):
        raise Invalid("target must be a mapping", code="invalid_channel_target")
    events = data.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise Invalid("events must be a list of event names", code="invalid_channel_events")
    existing = session.execute(select(NotificationChannel).where(NotificationChannel.key == key)).scalar_one_or_none()
    if check is not None:
        check(data, existing)
    values: dict[str, Any] = {
        "kind": data["kind"],
        "name": data.get("name") or key,
        "target": dict(target),
        "events": list(events),
        "allow_private_network": bool(data.get("allow_private_network", False)),
        "enabled": bool(data.get("enabled", True)),
    }
    if data.get("secret"):
        values["secret"] = data["secret"]
    channel, created, _ = _upsert(session, NotificationChannel, "key", key, values, actor=actor)
    return channel, created


def _parse_date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{field} {value!r} is not a date (YYYY-MM-DD)", code="invalid_date") from None


CONFIG_SECTIONS = ("entities", "clients", "contracts", "integrations", "mappings", "channels")


def config_sections(config: Data) -> dict[str, list[Data]]:
    """A configuration's sections in the order they apply (a section refers to
    the ones before it), each a list of mappings; ``Invalid`` for an unknown
    section, a section that is not a list or an item that is not a mapping."""
    unknown = set(config) - {*CONFIG_SECTIONS, "version"}
    if unknown:
        raise Invalid(f"unknown section(s): {', '.join(sorted(map(str, unknown)))}", code="config_unknown_section")
    sections: dict[str, list[Data]] = {}
    for section in CONFIG_SECTIONS:
        items = config.get(section) or []
        if not isinstance(items, list):
            raise Invalid(f"{section} must be a list", code="config_invalid_section")
        for index, item in enumerate(items):
            if not isinstance(item, MappingABC):
                raise Invalid(f"{section}[{index}] must be a mapping", code="config_invalid_item")
        sections[section] = items
    return sections


def apply_config(
    session: Session, config: Data, *, actor: str, channel_check: ChannelCheck | None = None,
    integration_check: IntegrationCheck | None = None,
) -> dict[str, dict[str, int]]:
    """Apply a whole configuration (the YAML file's content) in the caller's
    transaction; returns how many records of each kind were created and updated.
    ``channel_check`` validates each channel (see :func:`upsert_channel`),
    ``integration_check`` each integration's settings (see
    :func:`upsert_integration`). ``jalon config apply`` has loaded each item
    through the admin API's schemas first (types, unknown fields); what is
    checked here are the domain rules, the same for the API and the file."""
    summary: dict[str, dict[str, int]] = {}
    upserts = {
        "entities": upsert_entity,
        "clients": upsert_client,
        "contracts": upsert_contract,
        "integrations": lambda session, item, actor: upsert_integration(session, item, actor=actor,
                                                                        check=integration_check),
        "mappings": upsert_mapping,
        "channels": lambda session, item, actor: upsert_channel(session, item, actor=actor, check=channel_check),
    }
    for section, items in config_sections(config).items():
        upsert = upserts[section]
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for index, item in enumerate(items):
            # a change is what leaves an audit record (nested milestones and rates included)
            audits_before = _pending_audits(session)
            try:
                _, created = upsert(session, item, actor=actor)
            except (Invalid, NotFound, Conflict) as error:
                error.message = f"{section}[{index}]: {error.message}"
                error.args = (error.message,)
                raise
            if created:
                counts["created"] += 1
            else:
                counts["updated" if _pending_audits(session) > audits_before else "unchanged"] += 1
        summary[section] = counts
    return summary


def _pending_audits(session: Session) -> int:
    return audit.recorded_in(session)
