"""Housekeeping on a real PostgreSQL: notifiers' personal data goes after the retention period
(only once their cases are closed), old idempotency keys go, and stalled work is re-deferred
exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from cleanit.adapters.db.models import AuditEntry, IdempotencyKey, Message, Notice, PlatformAction
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.services import (
    assessments,
    audit,
    complaints,
    decisions,
    maintenance,
    notices,
    outbox,
)
from cleanit.services.context import Context, utcnow
from tests.world import World, build_world, notice

RETENTION = timedelta(days=365)


class Clock:
    """ctx.clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def move(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(ctx: Context) -> Clock:
    c = Clock()
    ctx.clock = c
    ctx.personal_data_retention = RETENTION
    return c


@pytest.fixture
def world(ctx: Context, clock: Clock) -> World:
    return build_world(ctx)


def url(n: int) -> str:
    return f"https://host-a.example.org/v/{n}"


def no_action(w: World, case_id: int) -> None:
    decisions.decide_case(
        w.ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.NO_ACTION, facts="Documentary footage, no praise of violence."
        ),
    )


def remove(w: World, case_id: int) -> None:
    a = assessments.assess(
        w.ctx,
        w.p("reviewer"),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Praises an invented violent group.",
            terms_clause_version_id=w.clause_version_id,
        ),
    )
    decisions.decide_case(
        w.ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="The video shows the group's flag with a call to join.",
            assessment_id=a.id,
        ),
    )


def contact(ctx: Context, notice_id: str) -> tuple[str | None, str | None]:
    with ctx.sessions() as s:
        n = s.scalar(select(Notice).where(Notice.public_id == notice_id))
        assert n is not None
        return n.notifier_name, n.notifier_email


def test_notifier_contact_is_erased_only_after_retention_and_once_every_case_is_closed(
    world: World, clock: Clock
) -> None:
    ctx, reporter = world.ctx, world.p("reporter")
    closed = notices.receive_notice(ctx, reporter, notice(url(1)))
    no_action(world, closed.case_ids[0])
    actioned = notices.receive_notice(ctx, reporter, notice(url(2)))
    remove(world, actioned.case_ids[0])
    still_open = notices.receive_notice(ctx, reporter, notice(url(3)))
    mixed = notices.receive_notice(ctx, reporter, notice(url(4), locations=(url(4), url(5))))
    mixed_cases = dict(zip([url(4), url(5)], mixed.case_ids, strict=True))
    no_action(world, mixed_cases[url(4)])  # the other location stays open
    contested = notices.receive_notice(ctx, reporter, notice(url(6)))
    no_action(world, contested.case_ids[0])
    recent = notices.receive_notice(ctx, reporter, notice(url(7)))
    everyone = [closed, actioned, still_open, mixed, contested, recent]

    clock.move(timedelta(days=1))
    complaints.lodge_complaint(
        ctx,
        grounds="You missed the call to violence at 2:10.",
        tracking_code=contested.tracking_code,
    )
    clock.move(timedelta(days=299))
    no_action(world, recent.case_ids[0])  # closed 300 days after it was received

    # Just before the retention period ends nothing is erased.
    clock.move(RETENTION - timedelta(days=301))
    assert maintenance.sweep(ctx).notifiers_erased == 0
    for r in everyone:
        assert contact(ctx, r.notice_id) == ("Pat Public", "pat@public.example.net")

    # Just after it: only notices whose every case has been closed for the whole period.
    clock.move(timedelta(days=2))
    report = maintenance.sweep(ctx)
    assert report.notifiers_erased == 2
    assert contact(ctx, closed.notice_id) == (None, None)
    assert contact(ctx, actioned.notice_id) == (None, None)
    for r in (still_open, mixed, contested, recent):
        assert contact(ctx, r.notice_id) == ("Pat Public", "pat@public.example.net")
    # The notice itself stays for reports, and the erasure is in the audit log.
    with ctx.sessions() as s:
        n = s.scalar(select(Notice).where(Notice.public_id == closed.notice_id))
        assert n is not None and n.locations == [url(1)] and n.explanation
        erased = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "personal_data.erased")
        ).all()
    assert [e.data for e in erased] == [{"count": 2}]
    assert audit.verify(ctx).ok
    assert maintenance.sweep(ctx).notifiers_erased == 0  # nothing left to do

    # A retention period after the late decision, that notice goes too.
    clock.move(timedelta(days=300))
    assert maintenance.sweep(ctx).notifiers_erased == 1
    assert contact(ctx, recent.notice_id) == (None, None)
    for r in (still_open, mixed, contested):
        assert contact(ctx, r.notice_id) == ("Pat Public", "pat@public.example.net")

    # Closing the last open location starts the clock for the notice with two locations.
    no_action(world, mixed_cases[url(5)])
    clock.move(RETENTION - timedelta(days=1))
    assert maintenance.sweep(ctx).notifiers_erased == 0
    clock.move(timedelta(days=2))
    assert maintenance.sweep(ctx).notifiers_erased == 1
    assert contact(ctx, mixed.notice_id) == (None, None)
    # Open and contested cases keep their notifier, however long they take.
    assert contact(ctx, still_open.notice_id) == ("Pat Public", "pat@public.example.net")
    assert contact(ctx, contested.notice_id) == ("Pat Public", "pat@public.example.net")


def test_new_information_on_a_closed_case_keeps_the_earlier_notifier(
    world: World, clock: Clock
) -> None:
    ctx = world.ctx
    first = notices.receive_notice(ctx, world.p("reporter"), notice(url(1)))
    no_action(world, first.case_ids[0])
    clock.move(RETENTION - timedelta(days=10))
    # A new notice reopens the review: the case is open again.
    notices.receive_notice(ctx, world.p("reporter"), notice(url(1)))
    clock.move(timedelta(days=20))
    assert maintenance.sweep(ctx).notifiers_erased == 0
    assert contact(ctx, first.notice_id) == ("Pat Public", "pat@public.example.net")


def test_old_idempotency_keys_are_dropped(world: World, clock: Clock) -> None:
    ctx = world.ctx
    first = notices.receive_notice(
        ctx, world.p("reporter"), notice(url(1)), idempotency_key="import-2026-11-29"
    )

    def keys() -> int:
        with ctx.sessions() as s:
            return s.scalar(select(func.count()).select_from(IdempotencyKey)) or 0

    clock.move(timedelta(hours=23))
    assert maintenance.sweep(ctx).idempotency_keys_dropped == 0
    assert keys() == 1
    # Within the period a retry still gets the first answer.
    again = notices.receive_notice(
        ctx, world.p("reporter"), notice(url(1)), idempotency_key="import-2026-11-29"
    )
    assert again == first
    clock.move(timedelta(hours=2))
    assert maintenance.sweep(ctx).idempotency_keys_dropped == 1
    assert keys() == 0
    # The key is free again.
    other = notices.receive_notice(
        ctx, world.p("reporter"), notice(url(2)), idempotency_key="import-2026-11-29"
    )
    assert other.notice_id != first.notice_id


def jobs_of(ctx: Context, task: str, arg: str, ident: int) -> list[str]:
    with ctx.sessions() as s:
        return list(
            s.execute(
                text(
                    "SELECT status::text FROM procrastinate_jobs WHERE task_name = :t "
                    "AND args->>:a = :id ORDER BY id"
                ),
                {"t": task, "a": arg, "id": str(ident)},
            ).scalars()
        )


def message_ids(ctx: Context) -> list[int]:
    with ctx.sessions() as s:
        return list(
            s.scalars(select(Message.id).where(Message.status == "pending").order_by(Message.id))
        )


def sql(ctx: Context, statement: str, **params: object) -> None:
    with ctx.transaction() as s:
        s.execute(text(statement), params)


def test_a_message_whose_job_is_gone_is_deferred_again_once(world: World, clock: Clock) -> None:
    ctx = world.ctx
    notices.receive_notice(ctx, world.p("reporter"), notice(url(1)))
    (mid,) = message_ids(ctx)
    assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == ["todo"]
    sql(ctx, "DELETE FROM procrastinate_jobs WHERE args->>'message_id' = :id", id=str(mid))

    # Recent messages are left alone: their job may simply not have run yet.
    assert maintenance.sweep(ctx).jobs_redeferred == 0
    assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == []

    clock.move(timedelta(minutes=31))
    assert maintenance.sweep(ctx).jobs_redeferred == 1
    assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == ["todo"]
    # The new job is pending now: another sweep does not add a second one.
    assert maintenance.sweep(ctx).jobs_redeferred == 0
    assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == ["todo"]
    # ...nor while a worker is running it.
    sql(
        ctx,
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'message_id' = :id",
        id=str(mid),
    )
    assert maintenance.sweep(ctx).jobs_redeferred == 0
    # A job that failed for good leaves the message pending: it is tried again.
    sql(
        ctx,
        "UPDATE procrastinate_jobs SET status = 'failed' WHERE args->>'message_id' = :id",
        id=str(mid),
    )
    assert maintenance.sweep(ctx).jobs_redeferred == 1
    assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == ["failed", "todo"]
    # The re-deferred job delivers it, through the same service as the worker.
    assert outbox.deliver_message(ctx, mid) == "sent"
    sql(ctx, "DELETE FROM procrastinate_jobs")
    assert maintenance.sweep(ctx).jobs_redeferred == 0  # sent messages need nothing


def test_a_message_with_a_pending_job_is_not_duplicated(world: World, clock: Clock) -> None:
    ctx = world.ctx
    notices.receive_notice(ctx, world.p("reporter"), notice(url(1)))
    notices.receive_notice(ctx, world.p("reporter"), notice(url(2)))
    first, second = message_ids(ctx)
    sql(ctx, "DELETE FROM procrastinate_jobs WHERE args->>'message_id' = :id", id=str(second))
    clock.move(timedelta(hours=2))
    assert maintenance.sweep(ctx).jobs_redeferred == 1
    assert jobs_of(ctx, "outbox.deliver", "message_id", first) == ["todo"]
    assert jobs_of(ctx, "outbox.deliver", "message_id", second) == ["todo"]


def test_a_stalled_platform_action_is_sent_again_once(world: World, clock: Clock) -> None:
    ctx = world.ctx
    r = notices.receive_notice(ctx, world.p("reporter"), notice(url(1)))
    remove(world, r.case_ids[0])
    with ctx.sessions() as s:
        (pa_id,) = s.scalars(select(PlatformAction.id)).all()
    pending_messages = message_ids(ctx)
    sql(ctx, "DELETE FROM procrastinate_jobs")
    clock.move(timedelta(minutes=31))
    assert maintenance.sweep(ctx).jobs_redeferred == 1 + len(pending_messages)
    assert jobs_of(ctx, "platform.send_action", "platform_action_id", pa_id) == ["todo"]
    for mid in pending_messages:
        assert jobs_of(ctx, "outbox.deliver", "message_id", mid) == ["todo"]
    assert maintenance.sweep(ctx).jobs_redeferred == 0
    # Once the platform has it, nothing is re-sent.
    sql(ctx, "UPDATE platform_actions SET status = 'acknowledged'")
    sql(ctx, "DELETE FROM procrastinate_jobs WHERE task_name = 'platform.send_action'")
    assert maintenance.sweep(ctx).jobs_redeferred == 0
