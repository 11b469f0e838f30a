"""The audit log on a real PostgreSQL: every use case appends to one hash chain; tampering with
the table directly is found and named; concurrent appends still give a gap-free chain."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from cleanit.adapters.db.models import AuditEntry
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.errors import Forbidden
from cleanit.domain.notices import SourceType
from cleanit.services import assessments, audit, cases, decisions, notices
from cleanit.services.context import Context
from tests.world import World, build_world, notice


@pytest.fixture
def world(ctx: Context) -> World:
    w = build_world(ctx)
    receipt = notices.receive_notice(ctx, w.p("reporter"), notice())
    case_id = receipt.case_ids[0]
    cases.assign(ctx, w.p("reviewer"), case_id, None)
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
    decisions.decide_case(
        ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="The video shows the group's flag with a call to join.",
            assessment_id=a.id,
        ),
    )
    return w


def seqs(ctx: Context) -> list[int]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))


def sql(ctx: Context, statement: str, **params: object) -> None:
    with ctx.transaction() as s:
        s.execute(text(statement), params)


def problems(ctx: Context) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in audit.verify(ctx).problems]


def test_a_workflow_leaves_an_intact_gap_free_chain(world: World) -> None:
    ctx = world.ctx
    report = audit.verify(ctx)
    numbers = seqs(ctx)
    assert report.ok, report.problems
    assert report.entries == len(numbers) and numbers == list(range(1, len(numbers) + 1))
    with ctx.sessions() as s:
        actions = set(s.scalars(select(AuditEntry.action)))
        first = s.scalar(select(AuditEntry).where(AuditEntry.seq == 1))
    assert {
        "organisation.created",
        "user.created",
        "notice.received",
        "case.assigned",
        "decision.taken",
        "decision.in_force",
    } <= actions
    assert first is not None and first.prev_hash == "0" * 64
    # Through the API only auditors may run the check.
    assert audit.verify(ctx, world.p("auditor")).ok
    with pytest.raises(Forbidden):
        audit.verify(ctx, world.p("reviewer"))


TAMPERING = {
    "data": "'{\"tampered\": true}'::jsonb",
    "actor": "'user:999'",
    "organisation_id": "coalesce(organisation_id, 0) + 1000",
    "at": "at - interval '1 day'",
    "action": "'nothing.happened'",
    "entity_id": "entity_id || '0'",
    "hash": "md5(hash) || md5(hash)",
}


def test_a_changed_entry_is_named(world: World) -> None:
    ctx = world.ctx
    n = len(seqs(ctx))
    for k, (column, value) in enumerate(TAMPERING.items(), start=2):
        with ctx.sessions() as s:
            original = s.execute(
                text(f"SELECT {column} FROM audit_log WHERE seq = :k"), {"k": k}
            ).scalar_one()
        sql(ctx, f"UPDATE audit_log SET {column} = {value} WHERE seq = :k", k=k)
        expected = [(k, "changed")]
        if column == "hash":  # the next entry links to the old hash
            expected.append((k + 1, "broken-link"))
        assert problems(ctx) == expected, column
        # Putting the original value back makes the chain verify again.
        with ctx.transaction() as s:
            entry = s.get(AuditEntry, k)
            assert entry is not None
            setattr(entry, column, original)
        assert audit.verify(ctx).ok, column
    assert k < n - 1


def test_a_deleted_entry_is_named(world: World) -> None:
    ctx = world.ctx
    for k in (len(seqs(ctx)) // 2, 1):
        with ctx.sessions() as s:
            row = s.execute(text("SELECT * FROM audit_log WHERE seq = :k"), {"k": k}).one()
        sql(ctx, "DELETE FROM audit_log WHERE seq = :k", k=k)
        report = audit.verify(ctx)
        assert [(p.seq, p.kind) for p in report.problems] == [
            (k, "missing"),
            (k + 1, "broken-link"),
        ]
        assert f"{k}..{k}" in report.problems[0].detail
        # Put back exactly as it was, the chain verifies again.
        with ctx.transaction() as s:
            s.add(AuditEntry(**row._asdict()))
        assert audit.verify(ctx).ok


def test_swapped_entries_are_named(world: World) -> None:
    ctx = world.ctx
    i, j = 3, len(seqs(ctx)) - 2
    # Three steps: seq is the primary key.
    sql(ctx, "UPDATE audit_log SET seq = -1 WHERE seq = :i", i=i)
    sql(ctx, "UPDATE audit_log SET seq = :i WHERE seq = :j", i=i, j=j)
    sql(ctx, "UPDATE audit_log SET seq = :j WHERE seq = -1", j=j)
    found = problems(ctx)
    assert found[0] == (i, "changed")
    assert (j, "changed") in found
    assert all(seq >= i for seq, _ in found)


def test_a_forged_entry_with_a_recomputed_hash_breaks_the_next_link(world: World) -> None:
    """Even with the hash function at hand, a forger must rewrite every later entry."""
    from cleanit.domain.audit import entry_hash

    ctx = world.ctx
    k = 2
    with ctx.transaction() as s:
        e = s.get(AuditEntry, k)
        assert e is not None
        e.data = {**e.data, "forged": True}
        e.hash = entry_hash(
            seq=e.seq,
            at=e.at.isoformat(),
            actor=e.actor,
            organisation_id=e.organisation_id,
            action=e.action,
            entity=e.entity,
            entity_id=e.entity_id,
            data=e.data,
            prev_hash=e.prev_hash,
        )
    assert problems(ctx) == [(k + 1, "broken-link")]


def test_appends_after_tampering_do_not_hide_it(world: World) -> None:
    ctx = world.ctx
    sql(ctx, "UPDATE audit_log SET data = '{}'::jsonb WHERE seq = 4")
    notices.receive_notice(ctx, world.p("reporter"), notice("https://host-a.example.org/v/77"))
    assert problems(ctx) == [(4, "changed")]


def test_concurrent_appends_give_a_gap_free_valid_chain(ctx: Context) -> None:
    w = build_world(ctx)
    before = len(seqs(ctx))
    threads_n, per_thread = 8, 20
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def submit(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                # Every thread reports the same 20 items: appends and case locks contend.
                notices.receive_notice(
                    ctx,
                    w.p("reporter" if t % 2 else "flagger"),
                    notice(
                        f"https://host-a.example.org/v/{i}",
                        source=SourceType.END_USER if t % 2 else SourceType.TRUSTED_FLAGGER,
                    ),
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    numbers = seqs(ctx)
    assert numbers == list(range(1, before + threads_n * per_thread + 1))
    report = audit.verify(ctx)
    assert report.ok, report.problems
    with ctx.sessions() as s:
        received = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "notice.received")
        )
        cases_n = s.scalar(text("SELECT count(*) FROM cases"))
    assert received == threads_n * per_thread
    assert cases_n == per_thread  # one case per item, however many notices raced
