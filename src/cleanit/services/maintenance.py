"""Periodic housekeeping: data minimisation and recovery of stalled work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, select, update

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    Case,
    IdempotencyKey,
    Message,
    Notice,
    NoticeCase,
    PlatformAction,
)
from cleanit.domain.cases import OPEN_STATES, CaseState
from cleanit.services import audit, matching, preservation, tdb
from cleanit.services.context import Context

IDEMPOTENCY_TTL = timedelta(hours=24)
STALLED_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class SweepReport:
    notifiers_erased: int
    idempotency_keys_dropped: int
    jobs_redeferred: int
    seen_content_purged: int = 0
    preservation_holds_expired: int = 0
    tdb_jobs_deferred: int = 0


def sweep(ctx: Context) -> SweepReport:
    now = ctx.now()
    with ctx.transaction() as s:
        # Notifier name and e-mail go once every case of the notice has been closed for the
        # retention period (the notice itself stays, without personal data, for reports).
        open_or_recent = exists().where(
            NoticeCase.notice_id == Notice.id,
            NoticeCase.case_id == Case.id,
            (Case.state.in_([st.value for st in OPEN_STATES | {CaseState.UNDER_COMPLAINT}]))
            | (Case.updated_at > now - ctx.personal_data_retention),
        )
        erased = cast(
            CursorResult[Any],
            s.execute(
                update(Notice)
                .where(
                    Notice.notifier_email.is_not(None) | Notice.notifier_name.is_not(None),
                    Notice.received_at < now - ctx.personal_data_retention,
                    ~open_or_recent,
                )
                .values(notifier_email=None, notifier_name=None)
            ),
        ).rowcount
        dropped = cast(
            CursorResult[Any],
            s.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_TTL)
            ),
        ).rowcount
        # A job whose retries were all used up leaves its message pending: try again later.
        stalled_msgs = s.scalars(
            select(Message.id).where(
                Message.status == "pending",
                Message.created_at < now - STALLED_AFTER,
                ~jobs.pending_job_exists(jobs.DELIVER_MESSAGE, "message_id", Message.id),
            )
        ).all()
        for mid in stalled_msgs:
            jobs.defer(s, jobs.DELIVER_MESSAGE, {"message_id": mid})
        stalled_actions = s.scalars(
            select(PlatformAction.id).where(
                PlatformAction.status == "pending",
                PlatformAction.created_at < now - STALLED_AFTER,
                ~jobs.pending_job_exists(
                    jobs.SEND_PLATFORM_ACTION, "platform_action_id", PlatformAction.id
                ),
            )
        ).all()
        for pid in stalled_actions:
            jobs.defer(s, jobs.SEND_PLATFORM_ACTION, {"platform_action_id": pid})
        # Signals of content seen for retroactive matching are kept only so long.
        purged = matching.purge_seen_content(s, ctx)
        # Preserved content past its expiry (TCO Art 6) is deleted and the deletion audited.
        holds_expired = preservation.expire_due(s, ctx)
        # Statements for the Transparency Database go in batches, one job per provider.
        tdb_jobs = tdb.defer_batches(s)
        report = SweepReport(
            erased or 0,
            dropped or 0,
            len(stalled_msgs) + len(stalled_actions),
            purged,
            holds_expired,
            tdb_jobs_deferred=tdb_jobs,
        )
        if erased:
            audit.record(
                s, "system", "personal_data.erased", "notice", "*", {"count": erased}, at=now
            )
        return report
