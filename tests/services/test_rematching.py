"""Retroactive matching: content seen recently is matched against entries added later
(real PostgreSQL, invented images, the job run through the service the worker calls)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from cleanit.adapters import jobs
from cleanit.adapters.db.models import Case, Decision, Notice, SeenContent
from cleanit.adapters.db.models import Match as MatchRow
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.services import banks, maintenance, matching
from cleanit.services.context import Context
from tests.services.test_matching import COPY, ORIGINAL, OTHER, encode, md5_of, pdq_of, picture
from tests.world import World, build_world


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    return build_world(ctx)


def seen_at(w: World, ago: timedelta, data: bytes, url: str) -> matching.ContentMatchResult:
    """The provider's upload scan saw ``data`` at ``url`` ``ago``."""
    clock = w.ctx.clock
    w.ctx.clock = lambda: clock() - ago
    try:
        return matching.match_content(w.ctx, w.p("reviewer"), data=data, url=url)
    finally:
        w.ctx.clock = clock


def rematch_jobs(ctx: Context) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        return [
            dict(a)
            for (a,) in s.execute(
                text("SELECT args FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"),
                {"t": jobs.REMATCH},
            )
        ]


def run_jobs(ctx: Context) -> list[matching.RematchReport]:
    """Run every deferred rematch job as the worker does (the same service call)."""
    return [matching.rematch(ctx, **args) for args in rematch_jobs(ctx)]


def counts(ctx: Context) -> tuple[int, int, int]:
    with ctx.sessions() as s:
        return (
            int(s.scalar(select(func.count()).select_from(MatchRow)) or 0),
            int(s.scalar(select(func.count()).select_from(Case)) or 0),
            int(s.scalar(select(func.count()).select_from(Notice)) or 0),
        )


def test_content_seen_yesterday_matches_a_hash_added_today(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="listed later")
    url = "https://host-a.example.org/v/seen-yesterday"
    seen_at(world, timedelta(days=1), COPY, url)
    seen_at(world, timedelta(days=1), OTHER, "https://host-a.example.org/v/unrelated")
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SeenContent)) > 0
    assert counts(ctx) == (0, 0, 0)

    e = banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    assert rematch_jobs(ctx) == [{"bank_id": b.id, "first_entry_id": e.id, "last_entry_id": e.id}]
    (report,) = run_jobs(ctx)
    assert (report.contents, report.cases) == (1, 1)
    with ctx.sessions() as s:
        (m,) = s.scalars(select(MatchRow)).all()
        assert m.entry_id == e.id and m.case_id is not None and m.distance > 0
        case = s.get(Case, m.case_id)
        assert case is not None and case.state == "open"
        n = s.scalar(select(Notice))
        assert n is not None and n.source_type == "automated_detection"
        assert f"entry {e.id}" in n.explanation
        assert s.scalar(select(Decision.id)) is None  # a review bank: people decide
    # A retry (or a second run) adds nothing.
    before = counts(ctx)
    again = run_jobs(ctx)
    assert [(r.contents, r.cases) for r in again] == [(0, 0)]
    assert counts(ctx) == before == (1, 1, 1)


def test_content_matched_live_is_not_matched_again(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="listed")
    e = banks.add_entry(ctx, admin, b.id, signal_type="md5", value=md5_of(ORIGINAL))
    live = matching.match_content(
        ctx, world.p("reviewer"), data=ORIGINAL, url="https://host-a.example.org/v/live"
    )
    assert [m.entry_id for m in live.matches] == [e.id] and live.case_id is not None
    before = counts(ctx)
    assert [(r.contents, r.cases) for r in run_jobs(ctx)] == [(0, 0)]
    assert counts(ctx) == before


def test_rematch_acts_for_an_auto_action_bank_and_respects_negative_banks(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    auto = banks.create_bank(
        ctx,
        admin,
        name="auto",
        mode="auto_action",
        auto_action="remove",
        auto_terms_clause_version_id=world.clause_version_id,
    )
    fp = banks.create_bank(ctx, admin, name="false positives", negative=True)
    third = encode(picture(3))
    banks.add_entry(ctx, admin, fp.id, signal_type="md5", value=md5_of(third))
    seen_at(world, timedelta(hours=3), ORIGINAL, "https://host-a.example.org/v/a")
    fp_seen = seen_at(world, timedelta(hours=2), third, "https://host-a.example.org/v/fp")
    assert [m.negative for m in fp_seen.matches] == [True]
    before = counts(ctx)
    text_ = f"signal_type,value,labels\npdq,{pdq_of(ORIGINAL)},\npdq,{pdq_of(third)},\n"
    report = banks.import_entries(ctx, admin, auto.id, filename="later.csv", text=text_)
    assert report.added == 2
    (job,) = rematch_jobs(ctx)[-1:]
    assert job["bank_id"] == auto.id and job["last_entry_id"] - job["first_entry_id"] == 1
    (r,) = [matching.rematch(ctx, **job)]
    assert (r.contents, r.cases) == (2, 1)  # the false positive is suppressed, no case
    with ctx.sessions() as s:
        (d,) = s.scalars(select(Decision)).all()
        assert (d.action, d.status, d.automated_decision) == ("remove", "in_force", "fully")
        suppressed = s.scalars(
            select(MatchRow.suppressed).where(MatchRow.bank_id == auto.id).order_by(MatchRow.id)
        ).all()
        assert sorted(suppressed) == [False, True]
    assert counts(ctx)[1] == before[1] + 1
    # Retry: nothing new.
    after = counts(ctx)
    assert matching.rematch(ctx, **job) == matching.RematchReport(0, 0)
    assert counts(ctx) == after


def test_old_content_is_neither_rematched_nor_kept(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    ctx.seen_content_retention = timedelta(days=30)
    b = banks.create_bank(ctx, admin, name="listed later")
    seen_at(world, timedelta(days=31), ORIGINAL, "https://host-a.example.org/v/old")
    seen_at(world, timedelta(days=29), OTHER, "https://host-a.example.org/v/recent")
    banks.add_entry(ctx, admin, b.id, signal_type="md5", value=md5_of(ORIGINAL))
    assert [(r.contents, r.cases) for r in run_jobs(ctx)] == [(0, 0)]
    assert counts(ctx) == (0, 0, 0)
    report = maintenance.sweep(ctx)
    assert report.seen_content_purged > 0
    with ctx.sessions() as s:
        urls = set(s.scalars(select(SeenContent.url)).all())
    assert urls == {"https://host-a.example.org/v/recent"}
    # A shorter retention is honoured too.
    ctx.seen_content_retention = timedelta(days=7)
    maintenance.sweep(ctx)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SeenContent)) == 0
