"""Removal orders (TCO Arts 3, 4; Annex I): strict Annex I validation with exact field paths,
the order life cycle, the restartable 1-hour clock across time zones and DST changes, the
escalation schedule, the first-order rule and cross-border scrutiny."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import IllegalTransition, InvalidInput
from cleanit.domain.orders import (
    DEFAULT_ESCALATION_POINTS,
    EU_MEMBER_STATES,
    MAX_CONFIDENTIALITY,
    MEMBER_STATE_TIMEZONES,
    ORDER_FIELDS,
    TRANSITIONS,
    ClockEvent,
    ClockEventKind,
    OrderClock,
    OrderEvent,
    OrderInvalid,
    OrderReason,
    OrderState,
    ScrutinyOutcome,
    canonical_order_json,
    deadline,
    escalation_schedule,
    escalations_due,
    event_after_scrutiny,
    first_order_notice_ok,
    format_in_timezone,
    hosted_by,
    in_timezone,
    member_state,
    next_order_state,
    parse_order,
    parse_transmission,
    receipt_hash,
    scrutiny_due_at,
    scrutiny_request_in_time,
    split_transmission,
    validate_order,
    validate_order_all,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
DOMAINS = ("host-a.example.org", "cdn.host-a.test")
HOUR = timedelta(hours=1)


def order(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "issuing_authority": "Example Internet Referral Office",
        "issuing_member_state": "BE",
        "reference": "RO-2026-0001",
        "issued_at": "2026-03-29T01:00:00+01:00",
        "content_urls": ["https://host-a.example.org/v/1", "https://videos.host-a.example.org/v/2"],
        "locating_details": "The second video, from 00:45 onwards.",
        "reasons": ["incitement", "threat"],
        "additional_reasons": "Invented example order for the tests.",
        "host_member_state": "BE",
        "contact_email": "orders@authority.example.org",
        "redress_information": "Challenge before the administrative court within 30 days.",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not _DROP}


_DROP = object()


def field_of(raw: dict[str, Any], **kwargs: Any) -> str | None:
    with pytest.raises(InvalidInput) as exc:
        validate_order(raw, addressee_domains=DOMAINS, **kwargs)
    return exc.value.field


# --- Annex I ----------------------------------------------------------------------------------


def test_a_complete_order_is_accepted_and_normalised() -> None:
    draft = validate_order(
        order(
            issuing_member_state="el",
            content_urls=[
                "HTTPS://Host-A.example.org/v/1/",
                "https://host-a.example.org/v/1",
                "https://cdn.host-a.test/img/9#frag",
            ],
            reasons=["threat", "incitement", "threat"],
        ),
        addressee_domains=DOMAINS,
    )
    assert draft.issuing_member_state == "GR"  # EL accepted, stored as the ISO code
    assert draft.host_member_state == "BE"
    assert draft.cross_border is True
    assert draft.issued_at == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert draft.issued_at.tzinfo is UTC
    assert draft.content_urls == ("https://host-a.example.org/v/1", "https://cdn.host-a.test/img/9")
    assert draft.reasons == {OrderReason.THREAT, OrderReason.INCITEMENT}
    assert draft.reasons_in_order == (OrderReason.INCITEMENT, OrderReason.THREAT)
    assert draft.withhold_information is False
    assert draft.confidentiality_period is None
    assert draft.contact_phone is None


def test_a_same_state_order_is_not_cross_border() -> None:
    draft = validate_order(order(cross_border=False), addressee_domains=DOMAINS)
    assert draft.cross_border is False


def test_withholding_without_a_period_means_the_six_week_maximum() -> None:
    draft = validate_order(order(withhold_information=True), addressee_domains=DOMAINS)
    assert draft.withhold_information is True
    assert draft.confidentiality_period == MAX_CONFIDENTIALITY == timedelta(weeks=6)
    shorter = validate_order(
        order(withhold_information=True, confidentiality_days=10), addressee_domains=DOMAINS
    )
    assert shorter.confidentiality_period == timedelta(days=10)


def test_a_phone_number_alone_is_enough_contact() -> None:
    draft = validate_order(
        order(contact_email=None, contact_phone="+32 2 555 01 23"), addressee_domains=DOMAINS
    )
    assert draft.contact_email is None
    assert draft.contact_phone == "+32 2 555 01 23"


LONG_URLS = [f"https://host-a.example.org/v/{i}" for i in range(101)]

# Every bad Annex I field, and the exact field the error names.
BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("no authority", {"issuing_authority": _DROP}, "issuing_authority"),
    ("blank authority", {"issuing_authority": "   "}, "issuing_authority"),
    ("authority not text", {"issuing_authority": 7}, "issuing_authority"),
    ("no issuing state", {"issuing_member_state": _DROP}, "issuing_member_state"),
    ("unknown state", {"issuing_member_state": "XX"}, "issuing_member_state"),
    ("EEA but not EU", {"issuing_member_state": "NO"}, "issuing_member_state"),
    ("not in the EU any more", {"issuing_member_state": "UK"}, "issuing_member_state"),
    ("no reference", {"reference": _DROP}, "reference"),
    ("empty reference", {"reference": ""}, "reference"),
    ("reference too long", {"reference": "R" * 101}, "reference"),
    ("reference with a line break", {"reference": "RO-1\nRO-2"}, "reference"),
    ("no issue time", {"issued_at": _DROP}, "issued_at"),
    ("naive issue time", {"issued_at": "2026-03-29T01:00:00"}, "issued_at"),
    ("unreadable issue time", {"issued_at": "yesterday"}, "issued_at"),
    ("issue time a number", {"issued_at": 1774742400}, "issued_at"),
    ("no URLs", {"content_urls": _DROP}, "content_urls"),
    ("empty URL list", {"content_urls": []}, "content_urls"),
    ("URLs as one string", {"content_urls": "https://host-a.example.org/v/1"}, "content_urls"),
    ("too many URLs", {"content_urls": LONG_URLS}, "content_urls"),
    (
        "third URL not http",
        {"content_urls": [*order()["content_urls"], "javascript:alert(1)"]},
        "content_urls[2]",
    ),
    ("URL not text", {"content_urls": [42]}, "content_urls[0]"),
    ("URL with spaces", {"content_urls": ["https://host-a.example.org/a b"]}, "content_urls[0]"),
    (
        "URL not hosted by the addressee",
        {"content_urls": ["https://host-a.example.org/v/1", "https://elsewhere.test/v/1"]},
        "content_urls[1]",
    ),
    (
        "look-alike host",
        {"content_urls": ["https://evilhost-a.example.org/v/1"]},
        "content_urls[0]",
    ),
    ("no reasons", {"reasons": _DROP}, "reasons"),
    ("empty reasons", {"reasons": []}, "reasons"),
    ("unknown reason", {"reasons": ["incitement", "glorification"]}, "reasons[1]"),
    ("reason not text", {"reasons": [1]}, "reasons[0]"),
    (
        "additional reasons with control characters",
        {"additional_reasons": "see \x1b[8mhidden"},
        "additional_reasons",
    ),
    ("locating details too long", {"locating_details": "x" * 10_001}, "locating_details"),
    ("withhold not a boolean", {"withhold_information": "yes"}, "withhold_information"),
    (
        "confidentiality beyond six weeks",
        {"withhold_information": True, "confidentiality_days": 43},
        "confidentiality_days",
    ),
    (
        "confidentiality days as text",
        {"withhold_information": True, "confidentiality_days": "10"},
        "confidentiality_days",
    ),
    (
        "confidentiality without withholding",
        {"confidentiality_days": 10},
        "confidentiality_days",
    ),
    ("no host state", {"host_member_state": _DROP}, "host_member_state"),
    ("unknown host state", {"host_member_state": "ZZ"}, "host_member_state"),
    ("cross-border contradicts the states", {"cross_border": True}, "cross_border"),
    ("cross-border not a boolean", {"cross_border": "no"}, "cross_border"),
    ("no contact at all", {"contact_email": _DROP}, "contact_email"),
    ("blank contacts", {"contact_email": "  ", "contact_phone": ""}, "contact_email"),
    ("bad e-mail", {"contact_email": "orders(at)authority"}, "contact_email"),
    ("bad phone", {"contact_phone": "call us"}, "contact_phone"),
    ("no redress information", {"redress_information": _DROP}, "redress_information"),
    ("redress information too short", {"redress_information": "court"}, "redress_information"),
    ("unknown field", {"priority": "high"}, "priority"),
]


@pytest.mark.parametrize(
    ("changes", "field"), [(c, f) for _, c, f in BAD_FIELDS], ids=[n for n, _, _ in BAD_FIELDS]
)
def test_every_bad_annex_i_field_is_named_exactly(changes: dict[str, Any], field: str) -> None:
    raw = order(**changes)
    assert field_of(raw) == field
    problems = validate_order_all(raw, addressee_domains=DOMAINS)
    assert [f for f, _ in problems] == [field]
    assert all(message for _, message in problems)


def test_an_unknown_member_state_gets_the_list_of_valid_ones() -> None:
    with pytest.raises(InvalidInput) as exc:
        validate_order(order(issuing_member_state="XX"), addressee_domains=DOMAINS)
    assert "'XX' is not an EU Member State" in exc.value.detail
    assert "AT, BE, BG" in exc.value.detail and "GR or EL" in exc.value.detail


def test_a_url_not_hosted_by_the_addressee_is_named() -> None:
    raw = order(content_urls=["https://host-a.example.org/v/1", "https://elsewhere.test/v/1"])
    with pytest.raises(InvalidInput) as exc:
        validate_order(raw, addressee_domains=DOMAINS)
    assert exc.value.field == "content_urls[1]"
    assert "https://elsewhere.test/v/1 is not hosted by the addressee" in exc.value.detail
    assert "host-a.example.org" in exc.value.detail


def test_an_order_dated_in_the_future_is_refused_when_the_receipt_time_is_known() -> None:
    received = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    raw = order(issued_at="2026-03-29T00:30:00+00:00")
    assert field_of(raw, now=received) == "issued_at"
    # A few minutes of clock drift between the authority and us are tolerated.
    drift = order(issued_at="2026-03-29T00:04:00+00:00")
    assert validate_order(drift, addressee_domains=DOMAINS, now=received).issued_at > received


def test_all_errors_are_reported_in_field_order_and_the_first_is_raised() -> None:
    raw = order(
        issuing_member_state="XX",
        content_urls=["https://host-a.example.org/ok", "ftp://host-a.example.org/x"],
        reasons=["rumour"],
        contact_email="nope",
    )
    problems = validate_order_all(raw, addressee_domains=DOMAINS)
    assert [f for f, _ in problems] == [
        "issuing_member_state",
        "content_urls[1]",
        "reasons[0]",
        "contact_email",
    ]
    with pytest.raises(InvalidInput) as exc:
        validate_order(raw, addressee_domains=DOMAINS)
    assert (exc.value.field, exc.value.detail) == problems[0]


def test_an_order_that_is_not_an_object_is_refused() -> None:
    assert validate_order_all([order()], addressee_domains=DOMAINS) == [  # type: ignore[arg-type]
        ("body", "must be a JSON object of named fields")
    ]


def test_a_valid_order_has_no_problems() -> None:
    assert validate_order_all(order(), addressee_domains=DOMAINS) == []


def test_an_addressee_without_domains_hosts_nothing() -> None:
    problems = validate_order_all(order(), addressee_domains=())
    assert [f for f, _ in problems] == ["content_urls[0]", "content_urls[1]"]
    assert "no registered domain" in problems[0][1]


REQUIRED = [
    "issuing_authority",
    "issuing_member_state",
    "reference",
    "issued_at",
    "content_urls",
    "reasons",
    "host_member_state",
    "redress_information",
]


@given(st.sets(st.sampled_from(REQUIRED)))
def test_each_missing_required_field_is_reported_once_and_nothing_else(
    missing: set[str],
) -> None:
    raw = order(**dict.fromkeys(missing, _DROP))
    problems = validate_order_all(raw, addressee_domains=DOMAINS)
    assert sorted(f for f, _ in problems) == sorted(missing)
    assert all(m.startswith("required") for _, m in problems)
    assert set(REQUIRED) <= set(ORDER_FIELDS)


def test_member_states_are_the_eu_27_with_greece_as_gr() -> None:
    assert len(EU_MEMBER_STATES) == 27
    assert "GR" in EU_MEMBER_STATES and "EL" not in EU_MEMBER_STATES
    assert member_state("el") == "GR" and member_state(" de ") == "DE"
    for code in ("UK", "NO", "CH", "EU", "", "GRC"):
        with pytest.raises(InvalidInput):
            member_state(code)


@pytest.mark.parametrize(
    ("url", "hosted"),
    [
        ("https://host-a.example.org/x", True),
        ("https://a.b.host-a.example.org/x", True),
        ("https://HOST-A.EXAMPLE.ORG./x", True),
        ("https://evilhost-a.example.org/x", False),
        ("https://host-a.example.org.evil.test/x", False),
        ("https://example.org/x", False),
    ],
)
def test_hosted_means_the_domain_or_a_subdomain(url: str, hosted: bool) -> None:
    assert hosted_by(url, ["host-a.example.org"]) is hosted


def test_hosted_compares_international_domain_names_in_ascii() -> None:
    assert hosted_by("https://xn--bcher-kva.example.org/x", ["bücher.example.org"])


# --- Life cycle -------------------------------------------------------------------------------

S, E = OrderState, OrderEvent

EXPECTED = {
    (S.RECEIVED, E.CONFIRM_EXECUTION): S.EXECUTED,
    (S.RECEIVED, E.REPORT_OBSTACLE): S.UNABLE_TO_EXECUTE,
    (S.UNABLE_TO_EXECUTE, E.CLEAR_OBSTACLE): S.RECEIVED,
    (S.EXECUTED, E.REINSTATE): S.REINSTATED,
    (S.RECEIVED, E.ANNUL): S.ANNULLED,
    (S.UNABLE_TO_EXECUTE, E.ANNUL): S.ANNULLED,
    (S.RECEIVED, E.WITHDRAW): S.WITHDRAWN,
    (S.UNABLE_TO_EXECUTE, E.WITHDRAW): S.WITHDRAWN,
    (S.EXECUTED, E.WITHDRAW): S.WITHDRAWN,
}


def test_the_table_is_exactly_the_expected_life_cycle() -> None:
    assert TRANSITIONS == EXPECTED


@given(st.sampled_from(OrderState), st.sampled_from(OrderEvent))
def test_every_pair_is_allowed_or_refused_listing_what_is_possible(
    state: OrderState, event: OrderEvent
) -> None:
    if (state, event) in EXPECTED:
        assert next_order_state(state, event) is EXPECTED[(state, event)]
        return
    with pytest.raises(IllegalTransition) as exc:
        next_order_state(state, event)
    allowed = sorted(e.value for (s, e) in EXPECTED if s == state)
    assert exc.value.field == "state"
    assert f"'{state.value}' cannot '{event.value}'" in exc.value.detail
    assert exc.value.detail.endswith(f"possible now: {', '.join(allowed) or 'nothing'}")


def test_closed_orders_allow_nothing() -> None:
    for state in (S.REINSTATED, S.ANNULLED, S.WITHDRAWN):
        with pytest.raises(IllegalTransition, match="possible now: nothing"):
            next_order_state(state, E.CONFIRM_EXECUTION)


def test_an_obstacle_can_be_reported_and_cleared_repeatedly_before_execution() -> None:
    state = S.RECEIVED
    for event in (E.REPORT_OBSTACLE, E.CLEAR_OBSTACLE) * 3 + (E.CONFIRM_EXECUTION, E.REINSTATE):
        state = next_order_state(state, event)
    assert state is S.REINSTATED


def test_execution_waits_for_the_obstacle_to_be_cleared() -> None:
    with pytest.raises(IllegalTransition, match="possible now: annul, clear_obstacle, withdraw"):
        next_order_state(S.UNABLE_TO_EXECUTE, E.CONFIRM_EXECUTION)


# --- The clock --------------------------------------------------------------------------------

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
ZONES = [
    "UTC",
    "Europe/Brussels",
    "Europe/Lisbon",
    "Europe/Helsinki",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kathmandu",  # a +05:45 offset
]


def test_the_deadline_is_one_hour_after_receipt_in_utc() -> None:
    received = datetime(2026, 5, 4, 12, 0, tzinfo=BRUSSELS)
    assert deadline(received) == datetime(2026, 5, 4, 11, 0, tzinfo=UTC)
    assert deadline(received).tzinfo is UTC


def test_a_naive_receipt_time_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        deadline(datetime(2026, 5, 4, 12, 0))  # naive on purpose
    assert exc.value.field == "received_at"


def test_the_night_clocks_go_forward_in_brussels_still_has_a_full_hour() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST. Wall-clock arithmetic would give 02:30,
    # a time that does not exist, 30 minutes after receipt.
    received = datetime(2026, 3, 29, 1, 30, tzinfo=BRUSSELS)
    due = deadline(received)
    assert (due - received).total_seconds() == 3600
    local = in_timezone(due, "Europe/Brussels")
    assert (local.hour, local.minute, local.tzname()) == (3, 30, "CEST")
    assert format_in_timezone(due, "Europe/Brussels") == (
        "2026-03-29 03:30:00 CEST (UTC+02:00, Europe/Brussels)"
    )


@pytest.mark.parametrize("fold", [0, 1])
def test_the_night_clocks_go_back_in_brussels_still_has_a_full_hour(fold: int) -> None:
    # 25 October 2026: 02:30 happens twice; fold picks the first (CEST) or second (CET).
    received = datetime(2026, 10, 25, 2, 30, tzinfo=BRUSSELS, fold=fold)
    due = deadline(received)
    assert (due - received).total_seconds() == 3600
    local = in_timezone(due, "Europe/Brussels")
    assert (local.hour, local.minute, local.tzname()) == (
        (2, 30, "CET") if fold == 0 else (3, 30, "CET")
    )


@given(
    # Naive wall-clock times made aware below, so nonexistent (spring) and repeated (autumn,
    # either fold) local times are all drawn.
    st.datetimes(min_value=datetime(2022, 6, 7), max_value=datetime(2040, 12, 31)),
    st.sampled_from(ZONES),
    st.booleans(),
)
def test_the_hour_is_exactly_3600_seconds_in_any_zone(
    wall: datetime, zone: str, fold: bool
) -> None:
    received = wall.replace(tzinfo=ZoneInfo(zone), fold=int(fold))
    due = deadline(received)
    assert due.tzinfo is UTC
    assert (due - received).total_seconds() == 3600
    assert due.timestamp() - received.timestamp() == pytest.approx(3600, abs=1e-6)
    clock = OrderClock.start(received)
    assert clock.deadline == due
    assert clock.remaining(received) == HOUR


def test_the_clock_counts_down_and_goes_negative_when_overdue() -> None:
    clock = OrderClock.start(T0)
    assert clock.running and not clock.paused
    assert clock.remaining(T0 + timedelta(minutes=45)) == timedelta(minutes=15)
    assert clock.remaining(T0 + timedelta(minutes=70)) == -timedelta(minutes=10)
    assert not clock.missed(T0 + HOUR)
    assert clock.missed(T0 + HOUR + timedelta(seconds=1))
    assert clock.met is None


def test_execution_at_the_deadline_meets_it_and_a_second_later_does_not() -> None:
    on_time = OrderClock.start(T0).then(ClockEventKind.EXECUTED, T0 + HOUR)
    late = OrderClock.start(T0).then(ClockEventKind.EXECUTED, T0 + HOUR + timedelta(seconds=1))
    assert on_time.met is True and late.met is False
    assert on_time.executed_at == T0 + HOUR
    assert on_time.remaining(T0) is None and not on_time.running


def test_an_obstacle_pauses_the_clock_and_clearing_it_restarts_a_full_hour() -> None:
    clock = OrderClock.start(T0).then(ClockEventKind.OBSTACLE_REPORTED, T0 + timedelta(minutes=20))
    assert clock.paused and clock.deadline is None
    assert clock.remaining(T0 + timedelta(hours=5)) is None
    assert not clock.missed(T0 + timedelta(hours=5))  # nobody can execute an unclear order
    cleared_at = T0 + timedelta(hours=2)
    clock = clock.then(ClockEventKind.OBSTACLE_CLEARED, cleared_at)
    assert clock.deadline == cleared_at + HOUR
    assert clock.remaining(cleared_at + timedelta(minutes=10)) == timedelta(minutes=50)
    done = clock.then(ClockEventKind.EXECUTED, cleared_at + timedelta(minutes=59))
    assert done.met is True
    assert len(done.periods) == 2


def test_an_annex_iii_answer_sent_after_the_hour_leaves_the_deadline_missed() -> None:
    clock = (
        OrderClock.start(T0)
        .then(ClockEventKind.OBSTACLE_REPORTED, T0 + timedelta(minutes=65))
        .then(ClockEventKind.OBSTACLE_CLEARED, T0 + timedelta(hours=3))
        .then(ClockEventKind.EXECUTED, T0 + timedelta(hours=3, minutes=5))
    )
    assert clock.met is False
    assert clock.missed(T0 + timedelta(hours=4))


def test_clock_times_in_any_zone_are_kept_in_utc() -> None:
    clock = OrderClock(
        (
            ClockEvent(ClockEventKind.RECEIVED, datetime(2026, 5, 4, 12, 0, tzinfo=BRUSSELS)),
            ClockEvent(
                ClockEventKind.EXECUTED,
                datetime(2026, 5, 4, 10, 30, tzinfo=timezone(timedelta(hours=-0, minutes=0))),
            ),
        )
    )
    assert clock.received_at == T0 and clock.received_at.tzinfo is UTC
    assert clock.met is True


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ((ClockEventKind.EXECUTED,), "'executed' cannot follow nothing"),
        ((ClockEventKind.RECEIVED, ClockEventKind.RECEIVED), "possible: executed, obstacle_rep"),
        (
            (ClockEventKind.RECEIVED, ClockEventKind.OBSTACLE_REPORTED, ClockEventKind.EXECUTED),
            "possible: obstacle_cleared",
        ),
        ((ClockEventKind.RECEIVED, ClockEventKind.OBSTACLE_CLEARED), "cannot follow 'received'"),
        ((ClockEventKind.RECEIVED, ClockEventKind.EXECUTED, ClockEventKind.EXECUTED), "nothing"),
    ],
)
def test_impossible_histories_are_refused(kinds: tuple[ClockEventKind, ...], message: str) -> None:
    events = tuple(ClockEvent(k, T0 + timedelta(minutes=i)) for i, k in enumerate(kinds))
    with pytest.raises(IllegalTransition, match=message):
        OrderClock(events)


def test_events_out_of_order_an_empty_history_and_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput, match="earlier than the event before it"):
        OrderClock.start(T0).then(ClockEventKind.EXECUTED, T0 - timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="starts with the order's receipt"):
        OrderClock(())
    with pytest.raises(InvalidInput):
        OrderClock.start(datetime(2026, 5, 4, 10, 0))  # naive on purpose


gaps = st.integers(min_value=0, max_value=4 * 3600).map(lambda s: timedelta(seconds=s))


@given(st.lists(st.tuples(gaps, gaps), max_size=4), gaps, st.booleans())
def test_the_deadline_runs_from_the_last_restart_and_met_checks_every_stretch(
    obstacles: list[tuple[timedelta, timedelta]], last_gap: timedelta, execute: bool
) -> None:
    clock = OrderClock.start(T0)
    start, at, in_time = T0, T0, True
    for before_report, paused_for in obstacles:
        at += before_report
        in_time &= at - start <= HOUR
        clock = clock.then(ClockEventKind.OBSTACLE_REPORTED, at)
        assert clock.deadline is None
        at += paused_for
        clock = clock.then(ClockEventKind.OBSTACLE_CLEARED, at)
        start = at
    assert clock.deadline == start + HOUR
    at += last_gap
    assert clock.remaining(at) == start + HOUR - at
    if execute:
        clock = clock.then(ClockEventKind.EXECUTED, at)
        assert clock.met is (in_time and at - start <= HOUR)
    else:
        assert clock.missed(at) is not (in_time and at - start <= HOUR)


def test_an_unknown_display_zone_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        in_timezone(T0, "Europe/Atlantis")
    assert exc.value.field == "timezone"


# --- Escalations ------------------------------------------------------------------------------

DUE = T0 + HOUR


def keys(escalations: list[Any]) -> list[str]:
    return [e.key.split("/")[1] for e in escalations]


def test_nothing_is_due_before_thirty_minutes_are_left() -> None:
    assert escalations_due(DUE, DUE - timedelta(minutes=31)) == []


def test_each_point_fires_when_reached() -> None:
    assert keys(escalations_due(DUE, DUE - timedelta(minutes=30))) == ["left-30m"]
    assert keys(
        escalations_due(
            DUE,
            DUE - timedelta(minutes=14),
            already_sent=[e.key for e in escalation_schedule(DUE)[:1]],
        )
    ) == ["left-15m"]


def test_a_late_worker_fires_every_due_point_in_order() -> None:
    due = escalations_due(DUE, DUE - timedelta(minutes=4))
    assert keys(due) == ["left-30m", "left-15m", "left-5m"]
    assert [e.label for e in due] == ["30 minutes left", "15 minutes left", "5 minutes left"]
    after = escalations_due(DUE, DUE + timedelta(minutes=20))
    assert keys(after) == ["left-30m", "left-15m", "left-5m", "missed"]
    assert after[-1].missed and after[-1].label == "deadline missed"


def test_missed_fires_only_once_the_deadline_has_passed() -> None:
    assert "missed" not in keys(escalations_due(DUE, DUE))
    assert keys(escalations_due(DUE, DUE + timedelta(microseconds=1)))[-1] == "missed"


def test_a_restarted_clock_gets_its_reminders_again() -> None:
    first = escalations_due(DUE, DUE + timedelta(minutes=1))
    sent = [e.key for e in first]
    restarted = DUE + timedelta(hours=2)
    again = escalations_due(restarted, restarted - timedelta(minutes=29), already_sent=sent)
    assert keys(again) == ["left-30m"]
    assert again[0].deadline == restarted


def test_custom_points_are_sorted_and_validated() -> None:
    points = [timedelta(seconds=90), timedelta(minutes=45)]
    assert keys(escalation_schedule(DUE, points)) == ["left-45m", "left-90s", "missed"]
    assert escalation_schedule(DUE, points)[1].label == "90 seconds left"
    for bad in (timedelta(0), timedelta(minutes=-5), timedelta(minutes=61)):
        with pytest.raises(InvalidInput) as exc:
            escalation_schedule(DUE, [bad])
        assert exc.value.field == "points"


@given(
    st.lists(st.integers(min_value=0, max_value=2 * 3600), min_size=1, max_size=30),
    st.lists(st.integers(min_value=1, max_value=3600), min_size=1, max_size=5, unique=True),
)
def test_escalations_are_idempotent_each_fires_once_in_schedule_order(
    offsets: list[int], point_seconds: list[int]
) -> None:
    points = [timedelta(seconds=s) for s in point_seconds]
    schedule = escalation_schedule(DUE, points)
    sent: list[str] = []
    for offset in sorted(offsets):
        now = T0 + timedelta(seconds=offset)
        due = escalations_due(DUE, now, points, already_sent=set(sent))
        assert all(e.due_at <= now for e in due)
        # Calling again at the same moment sends nothing new.
        sent += [e.key for e in due]
        assert escalations_due(DUE, now, points, already_sent=set(sent)) == []
    assert len(sent) == len(set(sent))
    order_of = {e.key: i for i, e in enumerate(schedule)}
    assert [order_of[k] for k in sent] == sorted(order_of[k] for k in sent)
    last = T0 + timedelta(seconds=max(offsets))
    assert set(sent) == {
        e.key for e in schedule if e.due_at < last or (not e.missed and e.due_at <= last)
    }


def test_default_points_are_thirty_fifteen_and_five_minutes() -> None:
    minutes = [p.total_seconds() / 60 for p in DEFAULT_ESCALATION_POINTS]
    assert minutes == [30, 15, 5]


# --- Art 3(2) and Art 4 -----------------------------------------------------------------------


def test_the_first_order_needs_twelve_hours_of_prior_information() -> None:
    issued = datetime(2026, 5, 4, 20, 0, tzinfo=UTC)
    assert first_order_notice_ok(issued - timedelta(hours=12), issued)
    assert not first_order_notice_ok(issued - timedelta(hours=11, minutes=59), issued)
    assert not first_order_notice_ok(None, issued)
    assert first_order_notice_ok(None, issued, emergency=True)
    # 08:00 in Brussels (CEST) is 06:00 UTC: 14 hours before the order.
    assert first_order_notice_ok(datetime(2026, 5, 4, 8, 0, tzinfo=BRUSSELS), issued)


def test_first_order_information_across_the_dst_night_counts_real_hours() -> None:
    # 12 wall-clock hours across the spring change are only 11 real hours.
    info = datetime(2026, 3, 28, 20, 0, tzinfo=BRUSSELS)
    assert not first_order_notice_ok(info, datetime(2026, 3, 29, 8, 0, tzinfo=BRUSSELS))
    assert first_order_notice_ok(info, datetime(2026, 3, 29, 9, 0, tzinfo=BRUSSELS))


def test_cross_border_scrutiny_periods() -> None:
    copy = datetime(2026, 3, 28, 12, 0, tzinfo=BRUSSELS)
    assert scrutiny_due_at(copy) - copy == timedelta(hours=72)
    assert scrutiny_request_in_time(T0, T0 + timedelta(hours=48))
    assert not scrutiny_request_in_time(T0, T0 + timedelta(hours=48, seconds=1))


@pytest.mark.parametrize(
    ("state", "outcome", "event"),
    [
        (S.EXECUTED, ScrutinyOutcome.INFRINGEMENT_FOUND, E.REINSTATE),
        (S.RECEIVED, ScrutinyOutcome.INFRINGEMENT_FOUND, E.ANNUL),
        (S.UNABLE_TO_EXECUTE, ScrutinyOutcome.INFRINGEMENT_FOUND, E.ANNUL),
        (S.WITHDRAWN, ScrutinyOutcome.INFRINGEMENT_FOUND, None),
        (S.EXECUTED, ScrutinyOutcome.UPHELD, None),
        (S.RECEIVED, ScrutinyOutcome.UPHELD, None),
    ],
)
def test_a_scrutiny_finding_reinstates_or_annuls(
    state: OrderState, outcome: ScrutinyOutcome, event: OrderEvent | None
) -> None:
    assert event_after_scrutiny(state, outcome) is event
    if event is not None:
        next_order_state(state, event)  # always a legal move


# --- transmission, receipt, every error at once ------------------------------------------------

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_transmission_fields_are_split_from_annex_i_and_checked() -> None:
    raw = order(addressee="host-a", sent_at="2026-03-29T02:29:00+01:00")
    annex, sent = split_transmission(raw)
    assert set(sent) == {"addressee", "sent_at"} and "addressee" not in annex
    t, errors = parse_transmission(sent, issued_at=NOW - HOUR, now=NOW)
    assert errors == [] and t is not None
    assert t.addressee == "host-a" and t.sent_at == datetime(2026, 3, 29, 1, 29, tzinfo=UTC)
    assert t.emergency is False and t.prior_information_at is None


def test_transmission_times_must_make_sense() -> None:
    _, errors = parse_transmission(
        {"sent_at": (NOW + HOUR).isoformat(), "prior_information_at": "yesterday"},
        issued_at=None,
        now=NOW,
    )
    assert [f for f, _ in errors] == ["addressee", "sent_at", "prior_information_at"]
    _, errors = parse_transmission(
        {"addressee": "host-a", "sent_at": (NOW - 2 * HOUR).isoformat()},
        issued_at=NOW - HOUR,
        now=NOW,
    )
    assert errors == [("sent_at", "the order cannot have been sent before it was issued")]


def test_without_a_known_addressee_urls_are_checked_for_form_only() -> None:
    draft, errors = parse_order(order(), addressee_domains=None, now=None)
    assert errors == [] and draft is not None
    _, errors = parse_order(
        order(content_urls=["ftp://x.example.org/a"]), addressee_domains=None, now=None
    )
    assert [f for f, _ in errors] == ["content_urls[0]"]


def test_an_invalid_order_carries_every_error() -> None:
    errors = validate_order_all(order(reference=None, reasons=["nope"]), addressee_domains=DOMAINS)
    exc = OrderInvalid(errors)
    assert exc.errors == errors and exc.field == "reference" and exc.status == 422
    assert exc.detail.startswith("the removal order has 2 error(s), nothing was stored")
    with pytest.raises(ValueError):
        OrderInvalid([])


def test_the_receipt_hash_covers_the_order_and_the_instant() -> None:
    raw = order(issued_at=datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    text = canonical_order_json(raw)
    assert canonical_order_json(dict(reversed(list(raw.items())))) == text  # key order
    assert '"issued_at":"2026-03-29T01:00:00+00:00"' in text
    h = receipt_hash(text, NOW)
    assert len(h) == 64
    # The same instant in another zone is the same receipt; another instant is not.
    assert receipt_hash(text, NOW.astimezone(BRUSSELS)) == h
    assert receipt_hash(text, NOW + timedelta(microseconds=1)) != h
    assert receipt_hash(text.replace("BE", "FR"), NOW) != h


def test_every_member_state_has_a_time_zone() -> None:
    assert set(MEMBER_STATE_TIMEZONES) == EU_MEMBER_STATES
    for tz in MEMBER_STATE_TIMEZONES.values():
        in_timezone(NOW, tz)
