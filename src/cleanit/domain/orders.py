"""Removal orders (TCO Regulation (EU) 2021/784, Arts 3 and 4; Annex I).

What is here: the Annex I fields and their validation, the order life cycle (one TRANSITIONS
table), the 1-hour clock that restarts after an Annex III obstacle, the escalation schedule,
the Art 3(2) first-order rule and the Art 4 cross-border scrutiny periods.

All instants are kept in UTC. Adding an hour to an aware local time in Python is wall-clock
arithmetic (01:30 + 1 h on the night clocks go forward gives a local time that never
existed), so every input is converted to UTC first and converted back only for display.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cleanit.domain.errors import IllegalTransition, InvalidInput
from cleanit.domain.notices import EU_EEA, canonical_url
from cleanit.domain.raw_input import FieldError, FieldErrors, RawReader, is_email, is_phone, to_utc

# --- Member States -------------------------------------------------------------------------

# The EU-27 (the TCO Regulation is not part of the EEA agreement, so IS, LI and NO are out).
# Greece is stored as "GR", its ISO 3166-1 alpha-2 code, like everywhere else in cleanit
# (notices, decisions' territorial scope); the EU's own style code "EL", which authorities
# often write on Annex I, is accepted and translated.
EU_MEMBER_STATES = EU_EEA - {"IS", "LI", "NO"}
MEMBER_STATE_ALIASES: dict[str, str] = {"EL": "GR"}


def member_state(value: object, *, field: str = "member_state") -> str:
    """The ISO code of an EU Member State ("EL" becomes "GR"); InvalidInput otherwise."""
    code = value.strip().upper() if isinstance(value, str) else ""
    code = MEMBER_STATE_ALIASES.get(code, code)
    if code not in EU_MEMBER_STATES:
        raise InvalidInput(
            f"'{value}' is not an EU Member State; use one of {', '.join(sorted(EU_MEMBER_STATES))}"
            " (Greece: GR or EL)",
            field=field,
        )
    return code


# --- Annex I ---------------------------------------------------------------------------------


class OrderReason(StrEnum):
    """The Art 2(7) tick-boxes of Annex I section B."""

    INCITEMENT = "incitement"  # (a) incites the commission of terrorist offences
    SOLICITATION = "solicitation"  # (b) solicits committing or contributing to one
    PARTICIPATION = "participation"  # (c) solicits participation in a terrorist group's activities
    INSTRUCTION = "instruction"  # (d) instructs on making/using explosives, weapons, methods
    THREAT = "threat"  # (e) threatens to commit a terrorist offence


REASON_PROVISIONS: dict[OrderReason, str] = {
    OrderReason.INCITEMENT: "Art 2(7)(a)",
    OrderReason.SOLICITATION: "Art 2(7)(b)",
    OrderReason.PARTICIPATION: "Art 2(7)(c)",
    OrderReason.INSTRUCTION: "Art 2(7)(d)",
    OrderReason.THREAT: "Art 2(7)(e)",
}

# Art 11(3): the authority may forbid telling the uploader for at most six weeks from its
# decision. Annex I only has a tick-box, so a ticked box without a period means the maximum.
MAX_CONFIDENTIALITY = timedelta(weeks=6)
MAX_ORDER_URLS = 100
MAX_REFERENCE = 100
MAX_TEXT = 10_000
# An order dated in the future of its receipt is an error, but clocks drift.
CLOCK_SKEW = timedelta(minutes=5)

ORDER_FIELDS = (
    "issuing_authority",
    "issuing_member_state",
    "reference",
    "issued_at",
    "content_urls",
    "locating_details",
    "reasons",
    "additional_reasons",
    "withhold_information",
    "confidentiality_days",
    "host_member_state",
    "cross_border",
    "contact_name",
    "contact_email",
    "contact_phone",
    "redress_information",
)


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """A removal order as received, validated, before it is stored. Instants are UTC."""

    issuing_authority: str  # Annex I section E
    issuing_member_state: str  # section A
    reference: str  # section A
    issued_at: datetime  # section A: time and date of issue
    content_urls: tuple[str, ...]  # section B, canonical form, addressee's hosts only
    reasons: frozenset[OrderReason]  # section B tick-boxes
    host_member_state: str  # section A: main establishment or legal representative
    cross_border: bool  # section D: host state differs from the issuing state (Art 4)
    redress_information: str  # section G
    contact_name: str | None = None  # section E/F
    contact_email: str | None = None
    contact_phone: str | None = None
    locating_details: str | None = None  # section B: further information to locate it
    additional_reasons: str | None = None  # section B
    withhold_information: bool = False  # section C, Art 11(3)
    confidentiality_period: timedelta | None = None  # set exactly when withholding

    @property
    def reasons_in_order(self) -> tuple[OrderReason, ...]:
        """The ticked boxes in Annex I order, (a) to (e)."""
        return tuple(r for r in OrderReason if r in self.reasons)


def _host(value: str) -> str:
    host = value.strip().lower().rstrip(".").removeprefix("*.").lstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def hosted_by(url: str, domains: Collection[str]) -> bool:
    """Whether the URL's host is one of ``domains`` or a subdomain of one."""
    host = _host(urlsplit(url).hostname or "")
    if not host:
        return False
    for domain in domains:
        d = _host(domain)
        if d and (host == d or host.endswith("." + d)):
            return True
    return False


def parse_order(
    raw: Mapping[str, Any], *, addressee_domains: Collection[str] | None, now: datetime | None
) -> tuple[OrderDraft | None, list[FieldError]]:
    """The validated order and no errors, or None and every error as (field path, message).

    ``addressee_domains`` None means the addressee is not known (its own error is reported
    elsewhere), so the URLs are checked for form only, not for being hosted by it.
    """
    errors = FieldErrors()
    if not isinstance(raw, Mapping):
        return None, [("body", "must be a JSON object of named fields")]
    r = RawReader(raw, errors)
    r.refuse_unknown(ORDER_FIELDS)

    authority = r.text(
        "issuing_authority", required=True, min_len=2, max_len=300, what="the issuing authority"
    )
    issuing_state = _member_state(r, "issuing_member_state", "the issuing Member State")
    reference = r.text(
        "reference",
        required=True,
        max_len=MAX_REFERENCE,
        what="the removal order's reference number",
    )
    issued_at = r.instant("issued_at", what="the time and date the order was issued")
    if issued_at is not None and now is not None and issued_at > to_utc(now) + CLOCK_SKEW:
        errors.add("issued_at", "the order is dated in the future")

    urls = _content_urls(r, addressee_domains)
    locating = r.text("locating_details", required=False, max_len=MAX_TEXT, what="", multiline=True)
    reasons = _reasons(r)
    additional = r.text(
        "additional_reasons", required=False, max_len=MAX_TEXT, what="", multiline=True
    )

    withhold = r.boolean("withhold_information", default=False)
    days = r.integer("confidentiality_days", low=1, high=MAX_CONFIDENTIALITY.days)
    period: timedelta | None = None
    if withhold:
        period = timedelta(days=days) if days is not None else MAX_CONFIDENTIALITY
    elif days is not None:
        errors.add(
            "confidentiality_days",
            "a confidentiality period only applies when withhold_information is true",
        )

    host_state = _member_state(
        r, "host_member_state", "the Member State of the provider's main establishment"
    )
    given_cross_border = (
        r.boolean("cross_border", default=False) if r.present("cross_border") else None
    )
    cross_border: bool | None = None
    if issuing_state is not None and host_state is not None:
        cross_border = issuing_state != host_state
        if given_cross_border is not None and given_cross_border != cross_border:
            errors.add(
                "cross_border",
                f"cross_border must be {str(cross_border).lower()}: the order is issued by "
                f"{issuing_state} and the provider is established in {host_state}",
            )

    contact_name = r.text("contact_name", required=False, max_len=200, what="")
    before = len(errors.items)
    email = r.text("contact_email", required=False, max_len=320, what="")
    phone = r.text("contact_phone", required=False, max_len=40, what="")
    if email is not None and not is_email(email):
        errors.add("contact_email", "not a valid e-mail address")
    if phone is not None and not is_phone(phone):
        errors.add("contact_phone", "not a valid telephone number, e.g. +32 2 123 45 67")
    # Blank counts as absent; a wrong value already has its own error.
    if email is None and phone is None and len(errors.items) == before:
        errors.add(
            "contact_email",
            "required: an e-mail address or telephone number of the issuing authority "
            "(contact_email or contact_phone)",
        )
    redress = r.text(
        "redress_information",
        required=True,
        min_len=10,
        max_len=MAX_TEXT,
        what="how the order can be challenged: body or court, deadlines, procedure",
        multiline=True,
    )

    if errors:
        return None, errors.items
    # No error means every required field was read.
    assert authority is not None and issuing_state is not None and reference is not None
    assert issued_at is not None and urls is not None and reasons is not None
    assert host_state is not None and redress is not None and cross_border is not None
    draft = OrderDraft(
        issuing_authority=authority,
        issuing_member_state=issuing_state,
        reference=reference,
        issued_at=issued_at,
        content_urls=urls,
        reasons=reasons,
        host_member_state=host_state,
        cross_border=cross_border,
        redress_information=redress,
        contact_name=contact_name,
        contact_email=email,
        contact_phone=phone,
        locating_details=locating,
        additional_reasons=additional,
        withhold_information=bool(withhold),
        confidentiality_period=period,
    )
    return draft, []


def _member_state(r: RawReader, key: str, what: str) -> str | None:
    if not r.present(key):
        r.errors.add(key, f"required: {what}, e.g. BE")
        return None
    try:
        return member_state(r.raw[key], field=key)
    except InvalidInput as exc:
        r.errors.add(key, exc.detail)
        return None


def _content_urls(r: RawReader, domains: Collection[str] | None) -> tuple[str, ...] | None:
    items = r.items_of(
        "content_urls", what="the exact URL of the content to remove", max_items=MAX_ORDER_URLS
    )
    if items is None:
        return None
    urls: list[str] = []
    ok = True
    for i, item in enumerate(items):
        path = f"content_urls[{i}]"
        if not isinstance(item, str):
            r.errors.add(path, "must be a URL as text")
            ok = False
            continue
        try:
            url = canonical_url(item)
        except InvalidInput as exc:
            r.errors.add(path, exc.detail)
            ok = False
            continue
        if domains is not None and not hosted_by(url, domains):
            served = ", ".join(sorted(domains)) or "no registered domain"
            r.errors.add(
                path,
                f"{item.strip()} is not hosted by the addressee (its domains: {served}); "
                "an order can only concern content the addressee hosts",
            )
            ok = False
            continue
        urls.append(url)
    return tuple(dict.fromkeys(urls)) if ok else None


def _reasons(r: RawReader) -> frozenset[OrderReason] | None:
    items = r.items_of(
        "reasons",
        what=f"a reason under Art 2(7): {', '.join(o.value for o in OrderReason)}",
        max_items=len(OrderReason),
    )
    if items is None:
        return None
    reasons: set[OrderReason] = set()
    ok = True
    for i, item in enumerate(items):
        try:
            reasons.add(OrderReason(item if isinstance(item, str) else repr(item)))
        except ValueError:
            r.errors.add(
                f"reasons[{i}]",
                f"unknown reason '{item}'; the Art 2(7) boxes are: "
                + ", ".join(o.value for o in OrderReason),
            )
            ok = False
    return frozenset(reasons) if ok else None


def validate_order_all(
    raw: Mapping[str, Any], *, addressee_domains: Collection[str], now: datetime | None = None
) -> list[FieldError]:
    """Every problem of a raw Annex I order as (field path, message); empty when valid."""
    return parse_order(raw, addressee_domains=addressee_domains, now=now)[1]


def validate_order(
    raw: Mapping[str, Any], *, addressee_domains: Collection[str], now: datetime | None = None
) -> OrderDraft:
    """The validated Annex I order; InvalidInput naming the first wrong field otherwise.

    ``addressee_domains`` are the hosts of the provider the order is addressed to (a URL on a
    subdomain counts). ``now``, when given, refuses orders dated in the future.
    """
    draft, errors = parse_order(raw, addressee_domains=addressee_domains, now=now)
    if draft is None:
        field_, message = errors[0]
        raise InvalidInput(message, field=field_)
    return draft


class OrderInvalid(InvalidInput):
    """A received order with one or more wrong fields; ``errors`` lists every one of them, so
    the authority can correct the whole order at once."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("an invalid order has at least one error")
        first_field = errors[0][0]
        summary = "; ".join(f"{f}: {m}" for f, m in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(
            f"the removal order has {len(errors)} error(s), nothing was stored: {summary}{more}",
            field=first_field,
        )
        self.errors: list[FieldError] = list(errors)


# --- Transmission ------------------------------------------------------------------------------

# Sent with the Annex I fields but not part of the form: to whom the order goes, when the
# authority says it sent it, and for a provider's first order (Art 3(2)) when it gave the
# provider the information on procedures and deadlines, or that it could not (emergency).
TRANSMISSION_FIELDS = ("addressee", "sent_at", "prior_information_at", "first_order_emergency")


@dataclass(frozen=True, slots=True)
class Transmission:
    addressee: str  # the hosting provider's slug in this installation
    sent_at: datetime | None = None  # as stated by the authority (UTC)
    prior_information_at: datetime | None = None
    emergency: bool = False


def split_transmission(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Annex I fields, transmission fields) of one received body."""
    annex = {k: v for k, v in raw.items() if k not in TRANSMISSION_FIELDS}
    sent = {k: v for k, v in raw.items() if k in TRANSMISSION_FIELDS}
    return annex, sent


def parse_transmission(
    raw: Mapping[str, Any], *, issued_at: datetime | None, now: datetime
) -> tuple[Transmission | None, list[FieldError]]:
    """The transmission fields, checked against the order's issue time and our clock."""
    errors = FieldErrors()
    r = RawReader(raw, errors)
    addressee = r.text(
        "addressee",
        required=True,
        max_len=64,
        what="the hosting provider the order is addressed to (its identifier here)",
    )
    latest = to_utc(now) + CLOCK_SKEW
    sent_at = r.instant("sent_at", what="") if r.present("sent_at") else None
    if sent_at is not None and sent_at > latest:
        errors.add("sent_at", "the order cannot have been sent after it was received")
    if sent_at is not None and issued_at is not None and sent_at + CLOCK_SKEW < issued_at:
        errors.add("sent_at", "the order cannot have been sent before it was issued")
    prior = (
        r.instant("prior_information_at", what="") if r.present("prior_information_at") else None
    )
    if prior is not None and prior > latest:
        errors.add("prior_information_at", "the information cannot have been given in the future")
    emergency = r.boolean("first_order_emergency", default=False)
    if errors:
        return None, errors.items
    assert addressee is not None
    return Transmission(addressee, sent_at, prior, bool(emergency)), []


# --- Receipt -------------------------------------------------------------------------------------


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_order_json(raw: Mapping[str, Any]) -> str:
    """The order as received, as canonical JSON (sorted keys, no spaces): what is stored and
    hashed, so the same text comes back from storage and hashes the same."""
    return json.dumps(
        raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_value
    )


def receipt_hash(canonical_order: str, received_at: datetime) -> str:
    """SHA-256 over the canonical order and the instant of receipt (UTC): recorded in the
    audit chain at receipt, it lets anyone check later what arrived and when."""
    at = to_utc(received_at, field="received_at").isoformat()
    return hashlib.sha256(f"{canonical_order}\n{at}".encode()).hexdigest()


# Removal orders come before everything else in a provider's review queue (notices: 10-60).
ORDER_PRIORITY = 0

# How the answers show times to each issuing authority (always also in UTC): the capital's
# zone, as Annex II asks for the date and time "including the time zone".
MEMBER_STATE_TIMEZONES: dict[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "HR": "Europe/Zagreb",
    "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "GR": "Europe/Athens",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IT": "Europe/Rome",
    "LV": "Europe/Riga",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "RO": "Europe/Bucharest",
    "SK": "Europe/Bratislava",
    "SI": "Europe/Ljubljana",
    "ES": "Europe/Madrid",
    "SE": "Europe/Stockholm",
}


# --- Life cycle ------------------------------------------------------------------------------


class OrderState(StrEnum):
    RECEIVED = "received"  # the 1-hour clock runs
    UNABLE_TO_EXECUTE = "unable_to_execute"  # Annex III sent; the clock waits
    EXECUTED = "executed"  # the platform confirmed removal / disabling
    REINSTATED = "reinstated"  # Art 4(7) infringement found, or an Art 10 complaint upheld
    ANNULLED = "annulled"  # Art 4 infringement found before execution: the order lost effect
    WITHDRAWN = "withdrawn"  # the issuing authority withdrew it


class OrderEvent(StrEnum):
    CONFIRM_EXECUTION = "confirm_execution"
    REPORT_OBSTACLE = "report_obstacle"
    CLEAR_OBSTACLE = "clear_obstacle"  # obstacle gone or clarification arrived: clock restarts
    REINSTATE = "reinstate"
    ANNUL = "annul"
    WITHDRAW = "withdraw"


class InabilityReason(StrEnum):
    """Annex III section B. Art 3(7) names force majeure and de facto impossibility together
    (one box on the form); they are kept apart because the Art 7 report counts reasons."""

    FORCE_MAJEURE = "force_majeure"
    DE_FACTO_IMPOSSIBILITY = "de_facto_impossibility"
    MANIFEST_ERROR = "manifest_error"
    INSUFFICIENT_INFORMATION = "insufficient_information"


# Art 3(8): only these let the provider ask the authority for clarification.
CLARIFICATION_REASONS = frozenset(
    {InabilityReason.MANIFEST_ERROR, InabilityReason.INSUFFICIENT_INFORMATION}
)

# The single source of truth for the order life cycle. Any pair not listed is refused.
TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState] = {
    (OrderState.RECEIVED, OrderEvent.CONFIRM_EXECUTION): OrderState.EXECUTED,
    (OrderState.RECEIVED, OrderEvent.REPORT_OBSTACLE): OrderState.UNABLE_TO_EXECUTE,
    (OrderState.UNABLE_TO_EXECUTE, OrderEvent.CLEAR_OBSTACLE): OrderState.RECEIVED,
    (OrderState.EXECUTED, OrderEvent.REINSTATE): OrderState.REINSTATED,
    (OrderState.RECEIVED, OrderEvent.ANNUL): OrderState.ANNULLED,
    (OrderState.UNABLE_TO_EXECUTE, OrderEvent.ANNUL): OrderState.ANNULLED,
    (OrderState.RECEIVED, OrderEvent.WITHDRAW): OrderState.WITHDRAWN,
    (OrderState.UNABLE_TO_EXECUTE, OrderEvent.WITHDRAW): OrderState.WITHDRAWN,
    # Withdrawing an executed order ends its legal effect; whether the content comes back is
    # then the provider's own decision (it may still break its terms), taken separately.
    (OrderState.EXECUTED, OrderEvent.WITHDRAW): OrderState.WITHDRAWN,
}

# States in which the provider still owes something within the hour.
PENDING_STATES = frozenset({OrderState.RECEIVED, OrderState.UNABLE_TO_EXECUTE})


def next_order_state(state: OrderState, event: OrderEvent) -> OrderState:
    """Return the state after ``event``; raise IllegalTransition if the rules forbid it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == state)
        raise IllegalTransition(
            f"a removal order that is '{state.value}' cannot '{event.value}'; "
            f"possible now: {', '.join(allowed) or 'nothing'}",
            field="state",
        ) from None


# --- The clock -------------------------------------------------------------------------------

ORDER_DEADLINE = timedelta(hours=1)  # Art 3(3): within one hour of receipt


def deadline(received_at: datetime) -> datetime:
    """Art 3(3): one hour after receipt, in UTC."""
    return to_utc(received_at, field="received_at") + ORDER_DEADLINE


class ClockEventKind(StrEnum):
    RECEIVED = "received"
    OBSTACLE_REPORTED = "obstacle_reported"
    OBSTACLE_CLEARED = "obstacle_cleared"
    EXECUTED = "executed"  # when the platform confirmed, not when a reviewer clicked


@dataclass(frozen=True, slots=True)
class ClockEvent:
    kind: ClockEventKind
    at: datetime


@dataclass(frozen=True, slots=True)
class ClockPeriod:
    """One stretch of the hour: from receipt (or a cleared obstacle) to its end."""

    started_at: datetime
    deadline: datetime
    ended_at: datetime | None = None  # None while it runs
    ended_by: ClockEventKind | None = None

    def overran(self, now: datetime) -> bool:
        """The hour passed before the period ended (by execution or an Annex III answer)."""
        end = self.ended_at if self.ended_at is not None else to_utc(now, field="now")
        return end > self.deadline


# Which event may follow which: the clock refuses histories the life cycle cannot produce.
_CLOCK_NEXT: dict[ClockEventKind | None, frozenset[ClockEventKind]] = {
    None: frozenset({ClockEventKind.RECEIVED}),
    ClockEventKind.RECEIVED: frozenset({ClockEventKind.OBSTACLE_REPORTED, ClockEventKind.EXECUTED}),
    ClockEventKind.OBSTACLE_REPORTED: frozenset({ClockEventKind.OBSTACLE_CLEARED}),
    ClockEventKind.OBSTACLE_CLEARED: frozenset(
        {ClockEventKind.OBSTACLE_REPORTED, ClockEventKind.EXECUTED}
    ),
    ClockEventKind.EXECUTED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class OrderClock:
    """The 1-hour clock of one order, computed from its history.

    Receipt starts the hour. An Annex III answer (obstacle reported) stops it; when the
    obstacle is gone or the clarification arrives a full new hour starts (Art 3(7), 3(8)).
    The deadline is met when every stretch of the clock ended within its hour: execution
    within the last one, and every Annex III answer within the hour that was running then.
    """

    events: tuple[ClockEvent, ...]
    periods: tuple[ClockPeriod, ...] = field(init=False)

    def __post_init__(self) -> None:
        events = tuple(ClockEvent(e.kind, to_utc(e.at, field=e.kind.value)) for e in self.events)
        periods: list[ClockPeriod] = []
        last: ClockEventKind | None = None
        last_at: datetime | None = None
        for e in events:
            if e.kind not in _CLOCK_NEXT[last]:
                allowed = sorted(k.value for k in _CLOCK_NEXT[last])
                raise IllegalTransition(
                    f"'{e.kind.value}' cannot follow "
                    f"{'nothing' if last is None else repr(last.value)} on an order's clock; "
                    f"possible: {', '.join(allowed) or 'nothing'}",
                    field="clock",
                )
            if last_at is not None and e.at < last_at:
                raise InvalidInput(
                    f"'{e.kind.value}' at {e.at.isoformat()} is earlier than the event before it",
                    field="clock",
                )
            if e.kind in (ClockEventKind.RECEIVED, ClockEventKind.OBSTACLE_CLEARED):
                periods.append(ClockPeriod(e.at, e.at + ORDER_DEADLINE))
            else:
                p = periods[-1]
                periods[-1] = ClockPeriod(p.started_at, p.deadline, e.at, e.kind)
            last, last_at = e.kind, e.at
        if not events:
            raise InvalidInput("a clock starts with the order's receipt", field="clock")
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "periods", tuple(periods))

    @classmethod
    def start(cls, received_at: datetime) -> OrderClock:
        return cls((ClockEvent(ClockEventKind.RECEIVED, received_at),))

    def then(self, kind: ClockEventKind, at: datetime) -> OrderClock:
        """A new clock with one more event (validated like the rest)."""
        return OrderClock((*self.events, ClockEvent(kind, at)))

    @property
    def received_at(self) -> datetime:
        return self.events[0].at

    @property
    def executed_at(self) -> datetime | None:
        last = self.events[-1]
        return last.at if last.kind is ClockEventKind.EXECUTED else None

    @property
    def paused(self) -> bool:
        """An Annex III obstacle is open: no deadline runs."""
        return self.events[-1].kind is ClockEventKind.OBSTACLE_REPORTED

    @property
    def running(self) -> bool:
        return self.periods[-1].ended_at is None

    @property
    def deadline(self) -> datetime | None:
        """The deadline in force: that of the last stretch, None while an obstacle is open."""
        return None if self.paused else self.periods[-1].deadline

    def remaining(self, now: datetime) -> timedelta | None:
        """Time left at ``now`` (negative once overdue); None unless the clock runs."""
        if not self.running:
            return None
        return self.periods[-1].deadline - to_utc(now, field="now")

    @property
    def met(self) -> bool | None:
        """Whether the order was executed in time; None until executed."""
        if self.executed_at is None:
            return None
        return all(p.ended_at is not None and p.ended_at <= p.deadline for p in self.periods)

    def missed(self, now: datetime) -> bool:
        """Whether some stretch of the hour has run out without execution or an answer."""
        return any(p.overran(now) for p in self.periods)


def in_timezone(at: datetime, tz: str) -> datetime:
    """The instant on the wall clock of ``tz`` (an IANA name such as Europe/Brussels)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone '{tz}'; use an IANA name such as Europe/Brussels",
            field="timezone",
        ) from None
    return to_utc(at).astimezone(zone)


def format_in_timezone(at: datetime, tz: str) -> str:
    """E.g. '2026-03-29 03:30:00 CEST (UTC+02:00, Europe/Brussels)'."""
    local = in_timezone(at, tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (UTC{offset[:3]}:{offset[3:]}, {tz})"


# --- Escalations ---------------------------------------------------------------------------

DEFAULT_ESCALATION_POINTS: tuple[timedelta, ...] = (
    timedelta(minutes=30),
    timedelta(minutes=15),
    timedelta(minutes=5),
)


@dataclass(frozen=True, slots=True)
class Escalation:
    """One reminder to the on-call contact. ``key`` is what to store as sent: it names the
    deadline too, so a restarted clock gets its reminders again."""

    key: str
    label: str
    due_at: datetime
    deadline: datetime
    missed: bool = False


def _lead_tag(before: timedelta) -> str:
    seconds = int(before.total_seconds())
    return f"left-{seconds // 60}m" if seconds % 60 == 0 else f"left-{seconds}s"


def escalation_schedule(
    deadline: datetime, points: Sequence[timedelta] = DEFAULT_ESCALATION_POINTS
) -> list[Escalation]:
    """Every escalation of one deadline, earliest first, the 'missed' one last."""
    end = to_utc(deadline, field="deadline")
    stamp = f"{end:%Y%m%dT%H%M%SZ}"
    leads = sorted(set(points), reverse=True)
    for p in leads:
        if not timedelta(0) < p <= ORDER_DEADLINE:
            raise InvalidInput(
                "escalation points are times before the deadline, more than 0 and at most "
                f"{int(ORDER_DEADLINE.total_seconds() // 60)} minutes",
                field="points",
            )
    schedule = [
        Escalation(
            key=f"{stamp}/{_lead_tag(p)}",
            label=_label(p),
            due_at=end - p,
            deadline=end,
        )
        for p in leads
    ]
    schedule.append(
        Escalation(
            key=f"{stamp}/missed", label="deadline missed", due_at=end, deadline=end, missed=True
        )
    )
    return schedule


def _label(before: timedelta) -> str:
    seconds = int(before.total_seconds())
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''} left"
    return f"{seconds} seconds left"


def escalations_due(
    deadline: datetime,
    now: datetime,
    points: Sequence[timedelta] = DEFAULT_ESCALATION_POINTS,
    already_sent: Collection[str] = (),
) -> list[Escalation]:
    """The escalations to send now, in order: each point once (by ``key``), all overdue ones
    when the worker comes late, and 'deadline missed' once the deadline has passed."""
    current = to_utc(now, field="now")
    return [
        e
        for e in escalation_schedule(deadline, points)
        if e.key not in already_sent and (e.due_at < current if e.missed else e.due_at <= current)
    ]


# --- Art 3(2): the first order --------------------------------------------------------------

FIRST_ORDER_NOTICE = timedelta(hours=12)


def first_order_notice_ok(
    prior_info_at: datetime | None, issued_at: datetime, *, emergency: bool = False
) -> bool:
    """Art 3(2): before a provider's first order, the authority gives it information on the
    procedures and deadlines at least 12 hours ahead, except in duly justified emergencies."""
    if emergency:
        return True
    if prior_info_at is None:
        return False
    return (
        to_utc(issued_at, field="issued_at") - to_utc(prior_info_at, field="prior_info_at")
        >= FIRST_ORDER_NOTICE
    )


# --- Art 4: cross-border scrutiny -----------------------------------------------------------

# Art 4(4): the host Member State's authority may scrutinise the order "within 72 hours of
# receiving the copy". Art 4(5): the provider or content provider may ask for it within
# 48 hours of receiving the order (or the Art 11 information), and the authority decides
# within 72 hours of that request. (regulation.md's 48 h for the decision marked "to verify"
# is the request window; the decision period in the official text is 72 h.)
SCRUTINY_PERIOD = timedelta(hours=72)
SCRUTINY_REQUEST_WINDOW = timedelta(hours=48)


class ScrutinyOutcome(StrEnum):
    UPHELD = "upheld"  # no serious or manifest infringement: the order stands
    INFRINGEMENT_FOUND = "infringement_found"  # the order ceases to have legal effect


def scrutiny_due_at(copy_or_request_received_at: datetime) -> datetime:
    """When the host state's decision is due: 72 h after it received the copy or request."""
    return to_utc(copy_or_request_received_at, field="received_at") + SCRUTINY_PERIOD


def scrutiny_request_in_time(received_at: datetime, requested_at: datetime) -> bool:
    """Art 4(5): a request for scrutiny is made within 48 h of receiving the order."""
    return (
        to_utc(requested_at, field="requested_at") - to_utc(received_at, field="received_at")
        <= SCRUTINY_REQUEST_WINDOW
    )


def event_after_scrutiny(state: OrderState, outcome: ScrutinyOutcome) -> OrderEvent | None:
    """What a scrutiny decision does to the order: nothing when upheld; an executed order is
    reinstated (Art 4(7)), a pending one is annulled, a closed one stays as it is."""
    if outcome is ScrutinyOutcome.UPHELD:
        return None
    if state is OrderState.EXECUTED:
        return OrderEvent.REINSTATE
    if state in PENDING_STATES:
        return OrderEvent.ANNUL
    return None
