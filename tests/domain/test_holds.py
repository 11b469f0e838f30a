"""Calendar months, the Art 11(3) confidentiality hold, the Art 10 two-week complaint answer
and Art 6 preservation with reasoned extensions."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.holds import (
    ConfidentialityHold,
    PreservationExtension,
    add_months,
    check_extension,
    complaint_due_at,
    complaint_overdue,
    extend_preservation,
    preservation_expires_at,
    renew_hold,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
T0 = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
WEEK = timedelta(weeks=1)

instants = st.datetimes(
    min_value=datetime(2022, 6, 7), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)


# --- Months -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (datetime(2025, 8, 31, 14, 5, tzinfo=UTC), 6, datetime(2026, 2, 28, 14, 5, tzinfo=UTC)),
        (datetime(2023, 8, 31, 14, 5, tzinfo=UTC), 6, datetime(2024, 2, 29, 14, 5, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 6, datetime(2026, 9, 30, tzinfo=UTC)),
        (datetime(2026, 7, 15, tzinfo=UTC), 6, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 12, 31, tzinfo=UTC), 2, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 5, 4, tzinfo=UTC), 0, datetime(2026, 5, 4, tzinfo=UTC)),
        (datetime(2026, 5, 4, tzinfo=UTC), 24, datetime(2028, 5, 4, tzinfo=UTC)),
    ],
)
def test_calendar_months_clamp_to_the_end_of_the_month(
    start: datetime, months: int, end: datetime
) -> None:
    assert add_months(start, months) == end


def test_months_are_counted_in_utc() -> None:
    # 1 March 00:30 in Brussels is still 28 February in UTC.
    local = datetime(2026, 3, 1, 0, 30, tzinfo=BRUSSELS)
    assert add_months(local, 6) == datetime(2026, 8, 28, 23, 30, tzinfo=UTC)


def test_negative_months_and_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput):
        add_months(T0, -1)
    with pytest.raises(InvalidInput):
        add_months(datetime(2026, 1, 1), 6)  # naive on purpose


@given(instants, instants)
def test_adding_months_is_monotone(a: datetime, b: datetime) -> None:
    a, b = min(a, b), max(a, b)
    assert add_months(a, 6) <= add_months(b, 6)


@given(instants)
def test_six_months_are_181_to_184_days_and_end_in_the_sixth_month(at: datetime) -> None:
    end = add_months(at, 6)
    assert timedelta(days=181) <= end - at <= timedelta(days=184)
    assert (end.year * 12 + end.month) - (at.year * 12 + at.month) == 6
    assert end.day == min(at.day, calendar.monthrange(end.year, end.month)[1])
    assert end.time() == at.time() and end.tzinfo is UTC


@given(instants, st.integers(0, 60), st.integers(0, 60))
def test_months_grow_with_the_count_and_never_exceed_adding_them_in_steps(
    at: datetime, m: int, n: int
) -> None:
    assert add_months(at, m) <= add_months(at, m + n)
    # Clamping can lose days in a step, never gain them.
    assert add_months(add_months(at, m), n) <= add_months(at, m + n)


# --- Art 11(3) confidentiality hold ----------------------------------------------------------


def test_a_hold_lasts_six_weeks_and_is_renewable_once_by_six_weeks() -> None:
    hold = ConfidentialityHold(T0)
    assert hold.info_due_at == T0 + 6 * WEEK
    assert hold.active(T0 + 6 * WEEK - timedelta(seconds=1))
    assert not hold.active(T0 + 6 * WEEK)
    renewed = renew_hold(hold, at=T0 + 5 * WEEK)
    assert renewed.info_due_at == T0 + 12 * WEEK
    assert renewed.renewals == 1 and renewed.renewed_at == T0 + 5 * WEEK


def test_a_second_renewal_is_refused_with_the_date_the_information_is_due() -> None:
    renewed = renew_hold(ConfidentialityHold(T0), at=T0 + WEEK)
    with pytest.raises(PrincipleViolation) as exc:
        renew_hold(renewed, at=T0 + 2 * WEEK)
    assert exc.value.field == "extension"
    assert "already renewed once" in exc.value.detail
    assert (T0 + 12 * WEEK).isoformat() in exc.value.detail


def test_an_ended_hold_cannot_be_renewed() -> None:
    with pytest.raises(PrincipleViolation) as exc:
        renew_hold(ConfidentialityHold(T0), at=T0 + 6 * WEEK)
    assert exc.value.field == "at"


def test_a_shorter_hold_and_a_shorter_renewal() -> None:
    hold = ConfidentialityHold(T0, period=timedelta(days=10))
    renewed = renew_hold(hold, at=T0 + timedelta(days=9), extension=timedelta(days=3))
    assert renewed.info_due_at == T0 + timedelta(days=13)


@pytest.mark.parametrize("length", [timedelta(0), -WEEK, 6 * WEEK + timedelta(seconds=1)])
def test_hold_lengths_beyond_six_weeks_are_refused(length: timedelta) -> None:
    with pytest.raises(InvalidInput) as exc:
        ConfidentialityHold(T0, period=length)
    assert exc.value.field == "period"
    with pytest.raises(InvalidInput) as exc:
        renew_hold(ConfidentialityHold(T0), at=T0, extension=length)
    assert exc.value.field == "extension"


def test_weeks_are_exact_across_a_dst_change() -> None:
    # Decided on 20 March (CET); due six weeks later, in CEST: an hour later on the wall clock.
    decided = datetime(2026, 3, 20, 10, 0, tzinfo=BRUSSELS)
    due = ConfidentialityHold(decided).info_due_at
    assert due - decided == 6 * WEEK
    assert due.astimezone(BRUSSELS).hour == 11


@given(instants, st.integers(1, 42), st.integers(1, 42), st.floats(0, 0.999))
def test_a_hold_never_exceeds_twelve_weeks(
    at: datetime, days: int, extra: int, when: float
) -> None:
    hold = ConfidentialityHold(at, period=timedelta(days=days))
    renewed = renew_hold(hold, at=at + (hold.info_due_at - at) * when, extension=timedelta(extra))
    assert hold.info_due_at < renewed.info_due_at <= at + 12 * WEEK
    with pytest.raises(PrincipleViolation):
        renew_hold(renewed, at=at)


# --- Art 10 complaints -----------------------------------------------------------------------


def test_a_complaint_is_answered_within_two_weeks() -> None:
    received = datetime(2026, 3, 20, 10, 0, tzinfo=BRUSSELS)
    due = complaint_due_at(received)
    assert due - received == 2 * WEEK and due.tzinfo is UTC
    assert not complaint_overdue(received, now=due)
    assert complaint_overdue(received, now=due + timedelta(seconds=1))
    # An answer given in time stays in time, whenever we look.
    assert not complaint_overdue(received, now=due + WEEK, answered_at=due - timedelta(hours=1))
    assert complaint_overdue(received, now=due, answered_at=due + timedelta(minutes=1))


# --- Art 6 preservation ----------------------------------------------------------------------

REASONS = "Criminal proceedings 2026/123 at the Example court need the copy."


def extension(at: datetime, months: int = 0, days: int = 0) -> PreservationExtension:
    return PreservationExtension("Example Prosecutor's Office", REASONS, at, months, days)


def test_preservation_lasts_six_calendar_months_from_removal() -> None:
    removed = datetime(2025, 8, 31, 16, 0, tzinfo=UTC)
    assert preservation_expires_at(removed) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)


def test_extensions_add_the_requested_length_to_the_current_expiry() -> None:
    removed = datetime(2026, 1, 10, tzinfo=UTC)
    first = extension(datetime(2026, 6, 1, tzinfo=UTC), months=3)
    second = extension(datetime(2026, 9, 1, tzinfo=UTC), days=15)
    # Given out of order, applied in the order they were asked.
    assert preservation_expires_at(removed, [second, first]) == datetime(2026, 10, 25, tzinfo=UTC)


def test_an_extension_asked_after_expiry_is_refused() -> None:
    expires = datetime(2026, 7, 10, tzinfo=UTC)
    with pytest.raises(PrincipleViolation) as exc:
        extend_preservation(expires, extension(expires + timedelta(seconds=1), months=1))
    assert exc.value.field == "requested_at"
    assert extend_preservation(expires, extension(expires, months=1)) == datetime(
        2026, 8, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("ext", "field"),
    [
        (PreservationExtension("X", REASONS, T0, months=1), "requested_by"),
        (PreservationExtension("Court", "   needed   ", T0, months=1), "reasons"),
        (PreservationExtension("Court", REASONS, T0), "months"),
        (PreservationExtension("Court", REASONS, T0, months=25), "months"),
        (PreservationExtension("Court", REASONS, T0, months=-1), "months"),
        (PreservationExtension("Court", REASONS, T0, days=731), "days"),
        (PreservationExtension("Court", REASONS, datetime(2026, 1, 1), days=1), "requested_at"),
    ],
)
def test_an_extension_needs_an_asker_reasons_and_a_length(
    ext: PreservationExtension, field: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_extension(ext)
    assert exc.value.field == field


def test_extension_texts_are_trimmed() -> None:
    ext = check_extension(PreservationExtension("  Court  ", f"  {REASONS}  ", T0, days=1))
    assert (ext.requested_by, ext.reasons) == ("Court", REASONS)


@given(instants, st.lists(st.tuples(st.integers(0, 24), st.integers(0, 100)), max_size=4))
def test_extensions_only_ever_lengthen_preservation(
    removed: datetime, lengths: list[tuple[int, int]]
) -> None:
    expires = preservation_expires_at(removed)
    assert expires - removed >= timedelta(days=181)
    for months, days in lengths:
        if months == days == 0:
            continue
        longer = extend_preservation(expires, extension(expires, months, days))
        assert longer > expires
        expires = longer
