"""The matcher's in-memory indexes in operation (real PostgreSQL): background rebuilds that
never stop lookups, staggered across processes by an advisory lock, and a memory budget
that refuses to load more and says so."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import text

from cleanit.adapters.matching.live import REBUILD_LOCK_KEY, MatcherOverBudget, MatchIndexes
from cleanit.services import banks, matching
from cleanit.services.context import Context
from tests.world import World, build_world


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def random_pdqs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(n)]


@pytest.fixture
def world(ctx: Context) -> Iterator[World]:
    w = build_world(ctx)
    yield w
    ctx.matching.wait_for_rebuild()


def hits(w: World, value: str) -> list[int]:
    return [m.entry_id for m in matching.lookup(w.ctx, w.p("reviewer"), "pdq", [value])[value]]


def test_lookups_are_answered_during_a_background_rebuild_and_nothing_is_lost(
    world: World,
) -> None:
    ctx, admin = world.ctx, world.p("admin")
    loaded, proceed = threading.Event(), threading.Event()

    def pause() -> None:  # the rebuild has read every entry; hold it before the swap
        loaded.set()
        assert proceed.wait(30)

    clock = Clock()
    ctx.matching = MatchIndexes(
        refresh_interval=0, rebuild_interval=100, clock=clock, on_rebuild_loaded=pause
    )
    a, b = random_pdqs(2, seed=1)
    bank = banks.create_bank(ctx, admin, name="live")
    ea = banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=a)
    assert hits(world, a) == [ea.id] and ctx.matching.full_builds == 1

    clock.now += 200  # a rebuild is due: the next lookup starts it in the background
    assert hits(world, a) == [ea.id]
    assert loaded.wait(30)
    assert ctx.matching.status().rebuilding
    # While the new indexes wait to be swapped in, the current ones keep answering and
    # keep following changes.
    eb = banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=b)
    banks.remove_entry(ctx, admin, bank.id, ea.id)
    assert hits(world, b) == [eb.id] and hits(world, a) == []
    assert ctx.matching.full_builds == 1

    proceed.set()
    ctx.matching.wait_for_rebuild()
    status = ctx.matching.status()
    assert status.full_builds == 2 and not status.rebuilding
    # The swapped-in indexes caught up with what changed while they were being loaded.
    assert hits(world, b) == [eb.id] and hits(world, a) == []
    assert status.entries["pdq"] == 1


def test_two_matcher_processes_never_rebuild_at_the_same_moment(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    (a,) = random_pdqs(1, seed=2)
    bank = banks.create_bank(ctx, admin, name="shared")
    ea = banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=a)

    loaded, proceed = threading.Event(), threading.Event()

    def pause() -> None:
        loaded.set()
        assert proceed.wait(30)

    first_clock, second_clock = Clock(), Clock()
    first = MatchIndexes(
        refresh_interval=0, rebuild_interval=100, clock=first_clock, on_rebuild_loaded=pause
    )
    second = MatchIndexes(
        refresh_interval=0,
        rebuild_interval=100,
        retry_after=30,
        clock=second_clock,
        background_rebuilds=False,  # its attempt runs inline: deterministic
    )
    with ctx.sessions() as s:
        assert [m.entry_id for m in first.search(s, [a], 31)[0]] == [ea.id]
        assert [m.entry_id for m in second.search(s, [a], 31)[0]] == [ea.id]
        first_clock.now += 200
        second_clock.now += 200
        first.search(s, [a], 31)  # starts its rebuild, which now holds the lock
        assert loaded.wait(30)
        # The second process finds the lock taken: it postpones and keeps answering.
        assert [m.entry_id for m in second.search(s, [a], 31)[0]] == [ea.id]
        assert (second.full_builds, second.rebuilds_skipped) == (1, 1)
        proceed.set()
        first.wait_for_rebuild()
        assert first.full_builds == 2
        second_clock.now += 10  # before retry_after: no new attempt
        second.search(s, [a], 31)
        assert (second.full_builds, second.rebuilds_skipped) == (1, 1)
        second_clock.now += 30
        second.search(s, [a], 31)
        assert (second.full_builds, second.rebuilds_skipped) == (2, 1)


def test_a_lock_held_elsewhere_postpones_the_rebuild(world: World) -> None:
    ctx = world.ctx
    clock = Clock()
    ctx.matching = MatchIndexes(
        refresh_interval=0, rebuild_interval=100, clock=clock, background_rebuilds=False
    )
    (a,) = random_pdqs(1, seed=3)
    bank = banks.create_bank(ctx, world.p("admin"), name="held")
    entry = banks.add_entry(ctx, world.p("admin"), bank.id, signal_type="pdq", value=a)
    assert hits(world, a) == [entry.id] and ctx.matching.full_builds == 1
    with ctx.sessions() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": REBUILD_LOCK_KEY})
        try:
            clock.now += 200
            assert hits(world, a) == [entry.id]
            assert (ctx.matching.full_builds, ctx.matching.rebuilds_skipped) == (1, 1)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REBUILD_LOCK_KEY})
            holder.commit()
    clock.now += 31
    assert hits(world, a) == [entry.id]
    assert ctx.matching.full_builds == 2


def test_a_first_build_waits_for_its_turn_but_not_forever(world: World) -> None:
    ctx = world.ctx
    (a,) = random_pdqs(1, seed=7)
    bank = banks.create_bank(ctx, world.p("admin"), name="first")
    entry = banks.add_entry(ctx, world.p("admin"), bank.id, signal_type="pdq", value=a)
    ctx.matching = MatchIndexes(refresh_interval=0, first_build_wait=0.5)
    with ctx.sessions() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": REBUILD_LOCK_KEY})
        try:
            assert hits(world, a) == [entry.id]  # built anyway after half a second
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REBUILD_LOCK_KEY})
            holder.commit()
    assert ctx.matching.full_builds == 1


def test_the_memory_budget_refuses_to_load_more_and_says_so(world: World) -> None:
    ctx, admin, reviewer = world.ctx, world.p("admin"), world.p("reviewer")
    values = random_pdqs(30, seed=4)
    bank = banks.create_bank(ctx, admin, name="big")
    for v in values[:10]:
        banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=v)

    # A budget too small for the ten entries: the matcher refuses to build at all.
    ctx.matching = MatchIndexes(refresh_interval=0, memory_budget_bytes=5 * 160)
    with pytest.raises(MatcherOverBudget) as err:
        matching.lookup(ctx, reviewer, "pdq", values[:1])
    assert "10 pdq" in err.value.detail and "CLEANIT_MATCHER_MEMORY_BUDGET_MB" in err.value.detail
    assert err.value.status == 503

    # Room for the ten and five more: later additions load until the budget is reached.
    ctx.matching = MatchIndexes(refresh_interval=0)
    assert len(matching.lookup(ctx, reviewer, "pdq", values[:1])[values[0]]) == 1
    ctx.matching.memory_budget_bytes = ctx.matching.status().memory_bytes + 5 * 160
    for v in values[10:30]:
        banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=v)
    found = matching.lookup(ctx, reviewer, "pdq", values)
    assert sum(1 for v in values if found[v]) == 15
    (warning,) = matching.matcher_warnings(ctx)
    assert "15 new bank entries are not loaded" in warning and "memory budget" in warning
    assert ctx.matching.status().entries["pdq"] == 15


def test_the_api_answers_503_when_the_matcher_is_over_budget(world: World, client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    ctx, admin = world.ctx, world.p("admin")
    bank = banks.create_bank(ctx, admin, name="api")
    for v in random_pdqs(3, seed=5):
        banks.add_entry(ctx, admin, bank.id, signal_type="pdq", value=v)
    ctx.matching = MatchIndexes(refresh_interval=0, memory_budget_bytes=160)
    r = client.post(
        "/api/v1/matching/lookup",
        json={"signal_type": "pdq", "hashes": random_pdqs(1, seed=6)},
        headers=world.auth("reviewer"),
    )
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["type"].endswith("matcher-over-budget") and "memory budget" in body["detail"]
