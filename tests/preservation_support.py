"""Shared by the preservation, investigation and threat-to-life tests: a clock that stands
still, a real encrypted vault on disk, a removal decision in force, the outbox delivered."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cleanit.adapters.db.models import Decision, Message, PreservationHold
from cleanit.adapters.vault import FileVault, Keyring
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.notices import SourceType
from cleanit.services import assessments, content, decisions, notices, outbox
from cleanit.services.context import Context
from tests.world import World, notice

START = datetime(2026, 8, 31, 9, 30, tzinfo=UTC)  # 31 Aug + 6 months: clamped to 28 Feb


class Clock:
    """ctx.clock that stands still until the test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, delta: timedelta) -> None:
        self.now += delta


def file_vault(directory: Path) -> FileVault:
    return FileVault(directory, Keyring.single(os.urandom(32), "test"), chunk_size=1024)


def removed(
    w: World,
    url: str,
    *,
    notifier: str = "reporter",
    source: SourceType = SourceType.END_USER,
    action: Action = Action.REMOVE,
    uploader_email: str | None = "uploader@users.example.net",
) -> tuple[int, Decision]:
    """A case on host-a notified by ``notifier`` and decided with ``action`` (in force)."""
    ctx = w.ctx
    content.register_content(
        ctx, w.p("admin"), url=url, uploader_ref="u-77", uploader_email=uploader_email
    )
    case_id = notices.receive_notice(ctx, w.p(notifier), notice(url, source=source)).case_ids[0]
    a = assessments.assess(
        ctx,
        w.p("reviewer"),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Praises an invented violent group.",
            terms_clause_version_id=w.clause_version_id,
        ),
    )
    d = decisions.decide_case(
        ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=action,
            facts="The video shows the invented group's flag with a call to join.",
            assessment_id=a.id,
        ),
    )
    return case_id, d


def hold_of(ctx: Context, case_id: int) -> PreservationHold:
    with ctx.sessions() as s:
        hold = s.scalar(select(PreservationHold).where(PreservationHold.case_id == case_id))
        assert hold is not None
        return hold


def deliver_all(ctx: Context) -> list[int]:
    """Send every pending message through the outbox service (as the worker would)."""
    with ctx.sessions() as s:
        ids = list(s.scalars(select(Message.id).where(Message.status == "pending")))
    for mid in ids:
        outbox.deliver_message(ctx, mid)
    return ids
