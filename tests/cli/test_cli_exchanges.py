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


def test_exchanges_add_and_sync_a_threatexchange_privacy_group(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    from tests.fakes.threatexchange_server import FakeThreatExchange

    world = build_world(ctx)
    bank = banks.create_bank(ctx, world.p("legal"), name="te-bank")
    runner = CliRunner()
    with FakeThreatExchange() as te:
        for n in range(3):
            te.add(hashlib.sha256(f"invented-{n}".encode()).hexdigest(), at=100 + n)
        env = {
            "CLEANIT_DATABASE_URL": database_url,
            "CLEANIT_DATA_DIR": str(tmp_path / "d"),
            "CLEANIT_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # the fake is on 127.0.0.1
            "PARTNER_TE_TOKEN": te.token,
        }

        def run(*args: str) -> Result:
            return runner.invoke(app, list(args), env=env)

        added = run(
            "exchanges", "add", "--name", "meta", "--bank", "te-bank", "--org", "host-a",
            "--kind", "threatexchange", "--api-base", te.api_base,
            "--privacy-group", te.privacy_group, "--credentials-env", "PARTNER_TE_TOKEN",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert "Added exchange 'meta' (threatexchange, privacy group" in added.output
        synced = run("exchanges", "sync", "--org", "host-a", "--name", "meta")
        assert synced.exit_code == 0, synced.output
        assert "meta: 3 new, 0 already held, 0 error(s)" in synced.stdout
        assert banks.get_bank(ctx, world.p("legal"), bank.id).entry_count == 3
        listed = run("exchanges", "list", "--org", "host-a")
        assert listed.exit_code == 0 and "meta" in listed.stdout and "threat" in listed.stdout
        assert te.token.partition("|")[2] not in listed.stdout
        # Without the variable the sync fails and says why.
        env.pop("PARTNER_TE_TOKEN")
        failed = run("exchanges", "sync", "--org", "host-a", "--name", "meta")
        assert failed.exit_code == 1
        said = " ".join(failed.output.split())  # the console wraps long lines
        assert "PARTNER_TE_TOKEN named by credentials_env is not set" in said
        missing = run(
            "exchanges", "add", "--name", "nogroup", "--bank", "te-bank", "--org", "host-a",
            "--kind", "threatexchange", "--credentials-env", "PARTNER_TE_TOKEN",
        )  # fmt: skip
        assert missing.exit_code == 1 and "privacy group" in " ".join(missing.output.split())
