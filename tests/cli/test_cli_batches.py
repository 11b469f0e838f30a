"""`cleanit match --batch FILE`, `cleanit batches show` and `cleanit orgs domains`, against a
local fake storage (invented images)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import procrastinate
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from cleanit.adapters.db.models import Organisation
from cleanit.adapters.fetch import HttpContentFetcher
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.cli.main import app
from cleanit.services import banks, matching_batches
from cleanit.services.context import Context
from cleanit.workers.runner import WorkerThread
from cleanit.workers.tasks import register
from tests.fakes.storage_server import StorageServer
from tests.services.test_matching import COPY, ORIGINAL, OTHER, pdq_of
from tests.services.test_matching_batches import run_jobs, set_domains
from tests.world import World, build_world


@pytest.fixture
def run(ctx: Context, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {
        "CLEANIT_DATABASE_URL": database_url,
        "CLEANIT_DATA_DIR": str(tmp_path / "d"),
        "CLEANIT_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",  # the fake storage is on 127.0.0.1
        "COLUMNS": "250",
    }
    return lambda *args: runner.invoke(app, list(args), env=env)


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    with StorageServer() as server:
        yield server


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    ctx.fetcher = HttpContentFetcher(timeout=2.0, allow_private=True)  # for run_jobs
    w = build_world(ctx)
    set_domains(ctx, "host-a", ["127.0.0.1"])
    b = banks.create_bank(ctx, w.p("admin"), name="demo-known")
    banks.add_entry(ctx, w.p("admin"), b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    return w


def test_a_batch_file_matched_here(
    run, world: World, storage: StorageServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "uploads.csv"
    listing.write_text(
        "# today's uploads\n"
        f"https://host-a.example.org/v/1,{storage.put('1.jpg', COPY, 'image/jpeg')}\n"
        f",{storage.put('2.png', OTHER)}\n"
        f"https://host-a.example.org/v/3,{storage.url}/o/gone,image/png\n"
    )
    result: Result = run("match", "--batch", str(listing), "--org", "host-a", "--here")
    assert result.exit_code == 1, result.output  # one object could not be fetched
    out = result.output
    assert "Submitted batch" in out and "demo-known" in out
    assert "404 Not Found" in out
    assert "3 object(s): 2 matched (1 without a match), 1 failed, 0 waiting." in out

    batch_id = int(out.split("Submitted batch ", 1)[1].split(":", 1)[0])
    shown: Result = run("batches", "show", str(batch_id), "--org", "host-a")
    assert shown.exit_code == 1 and "1 failed" in shown.output
    other: Result = run("batches", "show", str(batch_id), "--org", "host-b")
    assert other.exit_code == 1 and "no such batch" in other.output


def test_a_jsonl_batch_without_waiting_then_shown(
    run, world: World, storage: StorageServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "uploads.jsonl"
    listing.write_text(
        json.dumps({"storage_url": storage.put("a.png", ORIGINAL), "url": None}) + "\n"
    )
    submitted: Result = run("match", "--batch", str(listing), "--org", "host-a", "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    assert "cleanit batches show" in submitted.output and storage.paths == []
    assert run_jobs(world.ctx) == ["done"]  # what a worker does
    batch_id = int(submitted.output.split("Submitted batch ", 1)[1].split(":", 1)[0])
    shown: Result = run("batches", "show", str(batch_id), "--org", "host-a")
    assert shown.exit_code == 0, shown.output
    assert "1 object(s): 1 matched (0 without a match), 0 failed, 0 waiting." in shown.output


def test_bad_lines_are_named_with_their_line_numbers(run, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "uploads.csv"
    listing.write_text(
        "url,storage_url\n"
        "https://host-a.example.org/v/1,http://127.0.0.1/o/1.png\n"
        "https://host-a.example.org/v/2,https://elsewhere.example.net/o/2.png\n"
    )
    result: Result = run("match", "--batch", str(listing), "--org", "host-a", "--no-wait")
    assert result.exit_code == 1
    assert "uploads.csv:3: items[1].storage_url: elsewhere.example.net is not one of" in (
        result.output
    )
    assert "nothing was submitted" in result.output
    with world.ctx.sessions() as s:
        assert s.scalars(select(Organisation.id)).all()  # the database is still there
    neither: Result = run("match", "--org", "host-a")
    assert neither.exit_code == 1 and "give files or folders" in neither.output


def test_parse_batch_file_formats() -> None:
    parsed = matching_batches.parse_batch_file(
        "content_type,storage_url\nimage/png,https://s.example.org/1\n\n,https://s.example.org/2\n"
    )
    assert parsed.items == [
        {"content_type": "image/png", "storage_url": "https://s.example.org/1"},
        {"storage_url": "https://s.example.org/2"},
    ]
    assert parsed.lines == [2, 4]
    with pytest.raises(Exception, match=r"line 2: not JSON"):
        matching_batches.parse_batch_file('{"storage_url": "https://s.example.org/1"}\n{oops\n')


def test_orgs_domains_sets_the_hosts(run, world: World) -> None:  # type: ignore[no-untyped-def]
    result: Result = run("orgs", "domains", "host-b", "Media.Host-B.example.org", "host-b.example")
    assert result.exit_code == 0, result.output
    assert "host-b serves content from: host-b.example, media.host-b.example.org." in (
        result.output
    )
    refused: Result = run("orgs", "domains", "host-b", "not a host")
    assert refused.exit_code == 1 and "not a domain name" in refused.output


@pytest.fixture
def worker(ctx: Context, database_url: str) -> Iterator[WorkerThread]:
    """A real procrastinate worker on the test database, with the test's context."""
    job_app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    register(job_app, ctx)
    w = WorkerThread(job_app, concurrency=2)
    w.start()
    yield w
    w.stop()


def test_the_cli_follows_a_batch_the_workers_match(  # type: ignore[no-untyped-def]
    run, world: World, storage: StorageServer, worker: WorkerThread, tmp_path: Path
) -> None:
    listing = tmp_path / "uploads.csv"
    listing.write_text(
        f"https://host-a.example.org/v/1,{storage.put('1.png', ORIGINAL)}\n"
        f"https://host-a.example.org/v/2,{storage.put('2.png', OTHER)}\n"
    )
    result: Result = run("match", "--batch", str(listing), "--org", "host-a")
    assert result.exit_code == 0, result.output
    assert "2 object(s): 2 matched (1 without a match), 0 failed, 0 waiting." in result.output
    assert sorted(storage.paths) == ["/o/1.png", "/o/2.png"]
