"""Complaints against decisions (DSA Art 20, TCO Art 10)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from cleanit.domain.errors import InvalidInput, PrincipleViolation


class ComplainantKind(StrEnum):
    CONTENT_PROVIDER = "content_provider"
    NOTIFIER = "notifier"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class ComplaintOutcome(StrEnum):
    UPHELD = "upheld"  # the original decision stands
    REVERSED = "reversed"  # the decision is undone; content reinstated
    MODIFIED = "modified"  # replaced by another action on the ladder


DEFAULT_WINDOW = timedelta(days=183)  # DSA Art 20(1): at least six months


def check_window(decided_at: datetime, now: datetime, window: timedelta) -> None:
    if now > decided_at + window:
        raise PrincipleViolation(
            f"the complaint window ended on {(decided_at + window).date().isoformat()}",
            field="decision",
        )


def check_grounds(text: str) -> str:
    text = text.strip()
    if len(text) < 10:
        raise InvalidInput(
            "explain why the decision is wrong (at least 10 characters)", field="grounds"
        )
    if len(text) > 10_000:
        raise InvalidInput("the explanation is longer than 10000 characters", field="grounds")
    return text


def check_handler(handler_user_id: int | None, decided_by: set[int | None]) -> None:
    """Due process: a human who took no part in the original decision decides the complaint."""
    if handler_user_id is None:
        raise PrincipleViolation(
            "complaints are decided by a person, not by a machine token", field="handler"
        )
    if handler_user_id in decided_by:
        raise PrincipleViolation(
            "you took part in the original decision; another complaints officer must decide",
            field="handler",
        )
