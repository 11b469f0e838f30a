"""Periods that follow a removal order (TCO Regulation (EU) 2021/784).

- Art 11(3) **confidentiality hold**: the authority may forbid telling the uploader for at most
  6 weeks from its decision, renewable once by at most 6 more weeks. When it ends the
  information is due (``info_due_at``).
- Art 10(2) **complaint answer**: the complainant learns the outcome within 2 weeks of receipt.
- Art 6(2) **preservation**: removed content and related data are kept 6 months from the
  removal, longer when the authority or a court asks, for the period it asks, with reasons.

Weeks are exact (7 × 24 hours of UTC), so a daylight-saving change moves the local wall-clock
time of a due date by an hour but never the instant. Months are calendar months (see
``add_months``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cleanit.domain.decisions import Action
from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.raw_input import to_utc


def add_months(at: datetime, months: int) -> datetime:
    """``at`` plus whole calendar months, in UTC, same time of day.

    The day of the month is kept when the target month has it, otherwise clamped to that
    month's last day: 31 Aug + 6 months = 28 Feb (29 Feb in a leap year), never 2 or 3 March,
    so the period never spills into a seventh month. Six months are thus 181 to 184 days.
    """
    if months < 0:
        raise InvalidInput("months must be 0 or more", field="months")
    utc = to_utc(at)
    year, month0 = divmod(utc.year * 12 + utc.month - 1 + months, 12)
    day = min(utc.day, calendar.monthrange(year, month0 + 1)[1])
    return utc.replace(year=year, month=month0 + 1, day=day)


# --- Art 11(3): confidentiality hold ---------------------------------------------------------

CONFIDENTIALITY_PERIOD = timedelta(weeks=6)
MAX_HOLD_RENEWALS = 1


@dataclass(frozen=True, slots=True)
class ConfidentialityHold:
    """A hold from the authority's decision — the ticked Annex I box, so the order's issue
    time — for ``period``, plus at most one ``extension``."""

    decided_at: datetime
    period: timedelta = CONFIDENTIALITY_PERIOD
    extension: timedelta | None = None
    renewed_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "decided_at", to_utc(self.decided_at, field="decided_at"))
        if self.renewed_at is not None:
            object.__setattr__(self, "renewed_at", to_utc(self.renewed_at, field="renewed_at"))
        _check_hold_length(self.period, "period")
        if self.extension is not None:
            _check_hold_length(self.extension, "extension")

    @property
    def renewals(self) -> int:
        return 0 if self.extension is None else 1

    @property
    def info_due_at(self) -> datetime:
        """When the hold ends and the uploader must be informed."""
        return self.decided_at + self.period + (self.extension or timedelta(0))

    def active(self, now: datetime) -> bool:
        return to_utc(now, field="now") < self.info_due_at


def _check_hold_length(length: timedelta, field: str) -> None:
    if not timedelta(0) < length <= CONFIDENTIALITY_PERIOD:
        raise InvalidInput(
            "a confidentiality hold lasts more than 0 and at most 6 weeks (Art 11(3))",
            field=field,
        )


def renew_hold(
    hold: ConfidentialityHold, *, at: datetime, extension: timedelta = CONFIDENTIALITY_PERIOD
) -> ConfidentialityHold:
    """The hold renewed by the authority at ``at``; refused a second time or once it ended."""
    now = to_utc(at, field="at")
    if hold.renewals >= MAX_HOLD_RENEWALS:
        raise PrincipleViolation(
            "the confidentiality hold was already renewed once; Art 11(3) allows a single "
            f"renewal of at most 6 weeks, so the uploader is informed on "
            f"{hold.info_due_at.isoformat()}",
            field="extension",
        )
    if now >= hold.info_due_at:
        raise PrincipleViolation(
            f"the confidentiality hold ended on {hold.info_due_at.isoformat()}; an ended hold "
            "cannot be renewed",
            field="at",
        )
    _check_hold_length(extension, "extension")
    return ConfidentialityHold(hold.decided_at, hold.period, extension, now)


# --- Art 10: complaints on removals ---------------------------------------------------------

COMPLAINT_ANSWER_PERIOD = timedelta(weeks=2)


def complaint_due_at(received_at: datetime) -> datetime:
    """Art 10(2): the outcome is due two weeks after the complaint was received."""
    return to_utc(received_at, field="received_at") + COMPLAINT_ANSWER_PERIOD


def complaint_overdue(
    received_at: datetime, now: datetime, answered_at: datetime | None = None
) -> bool:
    """Whether the answer came (or, unanswered, is at ``now``) later than due."""
    moment = answered_at if answered_at is not None else now
    return to_utc(moment, field="now") > complaint_due_at(received_at)


# --- Art 6: preservation -------------------------------------------------------------------

PRESERVATION_MONTHS = 6
MAX_EXTENSION_MONTHS = 24
MAX_EXTENSION_DAYS = 730


@dataclass(frozen=True, slots=True)
class PreservationExtension:
    """A reasoned request of the authority or a court to keep the data longer."""

    requested_by: str
    reasons: str
    requested_at: datetime
    months: int = 0
    days: int = 0


def check_extension(ext: PreservationExtension) -> PreservationExtension:
    """The request, validated and with its text trimmed; InvalidInput naming the field."""
    requested_by = ext.requested_by.strip()
    reasons = ext.reasons.strip()
    if len(requested_by) < 2:
        raise InvalidInput(
            "name the authority or court asking for the extension", field="requested_by"
        )
    if len(reasons) < 20:
        raise InvalidInput(
            "an extension needs reasons: the ongoing proceedings or complaint that need the "
            "data (at least 20 characters)",
            field="reasons",
        )
    if not 0 <= ext.months <= MAX_EXTENSION_MONTHS:
        raise InvalidInput(f"months must be 0 to {MAX_EXTENSION_MONTHS}", field="months")
    if not 0 <= ext.days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(f"days must be 0 to {MAX_EXTENSION_DAYS}", field="days")
    if ext.months == 0 and ext.days == 0:
        raise InvalidInput("say how long to extend: months, days or both", field="months")
    return PreservationExtension(
        requested_by,
        reasons,
        to_utc(ext.requested_at, field="requested_at"),
        ext.months,
        ext.days,
    )


def extend_preservation(expires_at: datetime, ext: PreservationExtension) -> datetime:
    """The new expiry: the current one plus the requested months, then days. A request that
    arrives after the expiry is refused — the data is deleted by then."""
    current = to_utc(expires_at, field="expires_at")
    ext = check_extension(ext)
    if ext.requested_at > current:
        raise PrincipleViolation(
            f"preservation ended on {current.isoformat()} and the data was deleted; an "
            "extension must be asked for before the end",
            field="requested_at",
        )
    return add_months(current, ext.months) + timedelta(days=ext.days)


def preservation_expires_at(
    removed_at: datetime, extensions: Iterable[PreservationExtension] = ()
) -> datetime:
    """Six calendar months after removal, then each extension in the order it was asked."""
    expires = add_months(to_utc(removed_at, field="removed_at"), PRESERVATION_MONTHS)
    for ext in sorted(extensions, key=lambda e: to_utc(e.requested_at, field="requested_at")):
        expires = extend_preservation(expires, ext)
    return expires


# Decisions whose content is gone from the platform: their content and data are preserved.
PRESERVING_ACTIONS = frozenset({Action.REMOVE, Action.DISABLE_ACCESS, Action.SUSPEND_ACCOUNT})


class AccessPurpose(StrEnum):
    """Art 6(1): the only purposes preserved data may be opened for."""

    REVIEW = "review"  # administrative or judicial review (of the order or decision)
    COMPLAINT = "complaint"  # handling the uploader's complaint
    INVESTIGATION = "investigation"  # preventing, detecting, investigating, prosecuting


MAX_PURPOSE_TEXT = 2_000


def check_access_purpose(purpose: str | None, reason: str | None) -> tuple[AccessPurpose, str]:
    """The purpose of an access and the concrete reason for it (the proceedings, the
    complaint), both required: an access log that says only "review" explains nothing."""
    allowed = ", ".join(p.value for p in AccessPurpose)
    if purpose is None or not purpose.strip():
        raise InvalidInput(f"say why the preserved data is opened: {allowed}", field="purpose")
    try:
        chosen = AccessPurpose(purpose.strip())
    except ValueError:
        raise InvalidInput(
            f"'{purpose}' is not a purpose preserved data may be opened for; use {allowed} "
            "(TCO Art 6(1))",
            field="purpose",
        ) from None
    text = (reason or "").strip()
    if len(text) < 10:
        raise InvalidInput(
            "name the proceedings, complaint or investigation the access is for "
            "(at least 10 characters)",
            field="reason",
        )
    if len(text) > MAX_PURPOSE_TEXT:
        raise InvalidInput(f"reason is longer than {MAX_PURPOSE_TEXT} characters", field="reason")
    return chosen, text
