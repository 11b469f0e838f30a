"""Exchanges: feeds that fill banks, synced incrementally, on real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cleanit.adapters.db.models import BankEntry, ExchangeEntry
from cleanit.adapters.exchanges import Checkpoint, FileFeedClient
from cleanit.adapters.jobs import JOBS_TABLE, SYNC_EXCHANGE
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound
from cleanit.domain.exchanges import FeedError, FeedRecord, FileFormat
from cleanit.services import banks, exchanges
from cleanit.services.context import Context
from tests.world import World, build_world


def md5(n: int) -> str:
    return hashlib.md5(f"invented-{n}".encode(), usedforsecurity=False).hexdigest()


def jsonl(numbers: range) -> str:
    return "".join(
        json.dumps({"signal_type": "md5", "value": md5(n), "labels": ["entity:x"], "id": f"r{n}"})
        + "\n"
        for n in numbers
    )


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def entries(ctx: Context, bank_id: int) -> list[tuple[str, str]]:
    with ctx.sessions() as s:
        return [
            (v, src)
            for v, src in s.execute(
                select(BankEntry.value, BankEntry.source).where(BankEntry.bank_id == bank_id)
            ).all()
        ]


def setup(world: World, path: Path, fmt: str | None = None, name: str = "feed") -> tuple[int, int]:
    bank = banks.create_bank(world.ctx, world.p("legal"), name=f"bank-{name}")
    config = {"path": str(path)} | ({"format": fmt} if fmt else {})
    x = exchanges.create_exchange(
        world.ctx, world.p("legal"), name=name, bank_id=bank.id, config=config
    )
    return x.id, bank.id


def test_jsonl_feed_imports_valid_records_reports_garbage_and_resumes(
    world: World, tmp_path: Path
) -> None:
    ctx = world.ctx
    feed = tmp_path / "feed.jsonl"
    lines = jsonl(range(1200)).splitlines(keepends=True)
    lines.insert(10, "{not json\n")
    lines.insert(600, json.dumps({"signal_type": "md5", "value": "zz"}) + "\n")
    lines.insert(900, json.dumps({"signal_type": "raw_text", "value": md5(0)}) + "\n")
    feed.write_text("".join(lines))
    xid, bank_id = setup(world, feed)

    report = exchanges.sync_exchange(ctx, world.p("legal"), xid)
    assert (report.imported, report.duplicates, len(report.errors)) == (1200, 0, 3)
    assert report.batches == 3  # 1,203 records in batches of 500
    assert [e.position for e in report.errors] == ["line 11", "line 601", "line 901"]
    stored = entries(ctx, bank_id)
    assert len(stored) == 1200 and {src for _, src in stored} == {"exchange:feed"}
    assert [e.position for e in exchanges.list_errors(ctx, world.p("legal"), xid)] == [
        "line 11",
        "line 601",
        "line 901",
    ]
    with ctx.sessions() as s:
        ids = set(s.scalars(select(ExchangeEntry.record_id)).all())
    assert ids == {f"r{n}" for n in range(1200)}
    view = exchanges.get_exchange(ctx, world.p("legal"), xid)
    assert (view.records_imported, view.records_failed, view.last_status) == (1200, 3, "ok")
    assert view.checkpoint is not None and view.checkpoint["line"] == 1203

    # Nothing new: nothing imported.
    again = exchanges.sync_exchange(ctx, world.p("legal"), xid)
    assert (again.imported, len(again.errors)) == (0, 0)

    # Ten lines appended (and a half-written one): exactly ten imported.
    with feed.open("a") as f:
        f.write(jsonl(range(1200, 1210)))
        f.write('{"signal_type": "md5", "val')
    more = exchanges.sync_exchange(ctx, world.p("legal"), xid)
    assert (more.imported, more.duplicates, len(more.errors)) == (10, 0, 0)
    assert len(entries(ctx, bank_id)) == 1210
    # The half-written line completes: it is read whole on the next sync.
    with feed.open("a") as f:
        f.write(f'ue": "{md5(5000)}"}}\n')
    assert exchanges.sync_exchange(ctx, world.p("legal"), xid).imported == 1


class Flaky:
    """A file feed that breaks after ``fail_after`` records (a crash between batches)."""

    def __init__(self, inner: FileFeedClient, fail_after: int) -> None:
        self.inner, self.fail_after = inner, fail_after

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return self.inner.next_checkpoint

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedRecord | FeedError]:
        for n, item in enumerate(self.inner.fetch(checkpoint)):
            if n == self.fail_after:
                raise ConnectionError("feed went away")
            yield item


def test_a_crash_between_batches_resumes_without_duplicates_or_gaps(
    world: World, tmp_path: Path
) -> None:
    ctx = world.ctx
    feed = tmp_path / "feed.jsonl"
    feed.write_text(jsonl(range(1200)))
    xid, bank_id = setup(world, feed)
    flaky = Flaky(FileFeedClient(feed, FileFormat.JSONL), fail_after=700)
    with pytest.raises(ConnectionError):
        exchanges.sync_exchange(ctx, world.p("legal"), xid, client=flaky)
    # The first batch (500) was committed with its checkpoint; the second was not.
    assert len(entries(ctx, bank_id)) == 500
    view = exchanges.get_exchange(ctx, world.p("legal"), xid)
    assert view.last_status == "failed" and "feed went away" in (view.last_message or "")
    assert view.checkpoint is not None and view.checkpoint["line"] == 500

    report = exchanges.sync_exchange(ctx, world.p("legal"), xid)
    assert (report.imported, report.duplicates) == (700, 0)
    values = [v for v, _ in entries(ctx, bank_id)]
    assert sorted(values) == sorted(md5(n) for n in range(1200))  # no gap, no duplicate


def test_csv_and_threatexchange_files(world: World, tmp_path: Path) -> None:
    ctx = world.ctx
    csv_feed = tmp_path / "feed.csv"
    csv_feed.write_text(
        f"signal_type,value,labels\nmd5,{md5(1)},entity:x;content_type:image\n"
        f"url,https://example.org/invented\nmd5,nothex\n"
    )
    xid, bank_id = setup(world, csv_feed, name="csvfeed")
    report = exchanges.sync_exchange(ctx, world.p("legal"), xid)
    assert (report.imported, len(report.errors)) == (2, 1)
    assert report.errors[0].position == "line 4"

    tx_feed = tmp_path / "signals.txt"
    pdq = "f" * 16 + "0" * 48
    # An md5 the bank already holds from elsewhere counts as a duplicate.
    tx_feed.write_text(f"pdq {pdq}\nmd5 {md5(1)}\nraw_text something\n\n")
    tid = exchanges.create_exchange(
        ctx,
        world.p("legal"),
        name="txfeed",
        bank_id=bank_id,
        config={"path": str(tx_feed), "format": "threatexchange"},
    ).id
    tx = exchanges.sync_exchange(ctx, world.p("legal"), tid)
    assert (tx.imported, tx.duplicates, len(tx.errors)) == (1, 1, 1)
    assert ("f" * 16 + "0" * 48, "exchange:txfeed") in entries(ctx, bank_id)

    # A threatexchange file of bare hashes, with the type configured.
    bare = tmp_path / "bare.txt"
    bare.write_text(f"{md5(7)}\n{md5(8)}\n")
    bid = exchanges.create_exchange(
        ctx,
        world.p("legal"),
        name="bare",
        bank_id=bank_id,
        config={"path": str(bare), "format": "threatexchange", "signal_type": "md5"},
    ).id
    assert exchanges.sync_exchange(ctx, world.p("legal"), bid).imported == 2
    # A replaced file (different first bytes) is read again from the start.
    bare.write_text(f"{md5(9)}\n")
    assert exchanges.sync_exchange(ctx, world.p("legal"), bid).imported == 1


def test_authorisation_and_validation(world: World, tmp_path: Path) -> None:
    ctx = world.ctx
    feed = tmp_path / "feed.jsonl"
    feed.write_text(jsonl(range(3)))
    xid, bank_id = setup(world, feed)
    with pytest.raises(NotFound):
        exchanges.sync_exchange(ctx, world.p("other_admin"), xid)
    with pytest.raises(NotFound):
        exchanges.get_exchange(ctx, world.p("other_reviewer"), xid)
    assert exchanges.list_exchanges(ctx, world.p("other_reviewer")) == []
    with pytest.raises(Forbidden):
        exchanges.sync_exchange(ctx, world.p("reviewer"), xid)
    with pytest.raises(Forbidden):
        exchanges.create_exchange(
            ctx, world.p("reviewer"), name="x", bank_id=bank_id, config={"path": "/x.csv"}
        )
    # Another organisation's bank cannot be the target.
    with pytest.raises(InvalidInput):
        exchanges.create_exchange(
            ctx, world.p("other_admin"), name="x", bank_id=bank_id, config={"path": "/x.csv"}
        )
    with pytest.raises(InvalidInput):
        exchanges.create_exchange(
            ctx, world.p("legal"), name="y", bank_id=bank_id, config={"path": "/x", "format": "xml"}
        )
    assert [x.name for x in exchanges.list_exchanges(ctx, world.p("auditor"))] == ["feed"]
    # The job is deferred through the service, and runs as the system.
    exchanges.defer_sync(ctx, world.p("legal"), xid)
    with ctx.sessions() as s:
        queued = s.scalar(
            select(func.count())
            .select_from(JOBS_TABLE)
            .where(JOBS_TABLE.c.task_name == SYNC_EXCHANGE)
        )
    assert queued == 1
    assert exchanges.sync_exchange(ctx, None, xid).imported == 3
