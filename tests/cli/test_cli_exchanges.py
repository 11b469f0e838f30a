"""`cleanit exchanges add|list|sync` on a file feed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cleanit.cli.main import app
from cleanit.services import banks
from cleanit.services.context import Context
from tests.world import build_world

Run = Callable[..., Result]


def md5(n: int) -> str:
    return hashlib.md5(f"invented-{n}".encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def run(ctx: Context, database_url: str, tmp_path: Path) -> Run:
    runner = CliRunner()
    env = {"CLEANIT_DATABASE_URL": database_url, "CLEANIT_DATA_DIR": str(tmp_path / "d")}
    return lambda *args: runner.invoke(app, list(args), env=env)


def test_exchanges_add_list_sync(run: Run, ctx: Context, tmp_path: Path) -> None:
    world = build_world(ctx)
    bank = banks.create_bank(ctx, world.p("legal"), name="known")
    feed = tmp_path / "feed.jsonl"
    rows = [json.dumps({"signal_type": "md5", "value": md5(n), "id": n}) for n in range(5)]
    feed.write_text("\n".join([*rows[:2], "garbage", *rows[2:]]) + "\n")
    added = run(
        "exchanges", "add", "--name", "partner", "--bank", "known", "--org", "host-a",
        "--path", str(feed),
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "Added exchange 'partner' (jsonl)" in added.output
    synced = run("exchanges", "sync", "--org", "host-a", "--name", "partner")
    assert synced.exit_code == 0, synced.output
    assert "partner: 5 new, 0 already held, 1 error(s)" in synced.stdout
    assert "line 3: not JSON" in synced.stdout
    assert banks.get_bank(ctx, world.p("legal"), bank.id).entry_count == 5
    again = run("exchanges", "sync", "--org", "host-a")
    assert "partner: 0 new, 0 already held, 0 error(s)" in again.stdout
    listed = run("exchanges", "list", "--org", "host-a")
    assert listed.exit_code == 0 and "partner" in listed.stdout and "ok" in listed.stdout
    # Another organisation sees no exchange and cannot sync this one.
    other = run("exchanges", "sync", "--org", "host-b", "--name", "partner")
    assert other.exit_code == 1 and "no exchange 'partner' in host-b" in other.output
    missing = run(
        "exchanges", "add", "--name", "x", "--bank", "nope", "--org", "host-a",
        "--path", str(feed),
    )  # fmt: skip
    assert missing.exit_code == 1 and "no bank 'nope'" in missing.output
