"""`cleanit banks export` writes a bank as a STIX 2.1 bundle or CSV."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import stix2  # type: ignore[import-untyped]
from typer.testing import CliRunner, Result

from cleanit.cli.main import app
from cleanit.domain import stix
from cleanit.services import banks
from cleanit.services.context import Context
from tests.world import build_world

MD5 = "d41d8cd98f00b204e9800998ecf8427e"

Run = Callable[..., Result]


@pytest.fixture
def run(ctx: Context, database_url: str, tmp_path: Path) -> Run:
    runner = CliRunner()
    env = {"CLEANIT_DATABASE_URL": database_url, "CLEANIT_DATA_DIR": str(tmp_path / "d")}
    return lambda *args: runner.invoke(app, list(args), env=env)


def test_banks_export_stix_and_csv(run: Run, ctx: Context, tmp_path: Path) -> None:
    world = build_world(ctx)
    bank = banks.create_bank(ctx, world.p("legal"), name="known", labels=["entity:x"])
    banks.add_entry(ctx, world.p("legal"), bank.id, signal_type="md5", value=MD5)
    out = tmp_path / "known.json"
    written = run("banks", "export", "--bank", "known", "--org", "host-a", "--output", str(out))
    assert written.exit_code == 0, written.output
    bundle = stix2.parse(out.read_text("utf-8"))
    assert [o.id for o in bundle.objects] == [
        stix.identity_id(world.org_ids["host-a"]),
        stix.indicator_id(bank.id, "md5", MD5),
    ]
    printed = run("banks", "export", "--bank", "known", "--org", "host-a", "--format", "csv")
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines[0] == "signal_type,value,labels,added_at,source"
    assert lines[1].startswith(f"md5,{MD5},,") and lines[1].endswith(",local")
    missing = run("banks", "export", "--bank", "nope", "--org", "host-a")
    assert missing.exit_code == 1 and "no bank 'nope'" in missing.output
    wrong = run("banks", "export", "--bank", "known", "--org", "host-a", "--format", "xml")
    assert wrong.exit_code == 1 and "stix or csv" in wrong.output
    # stdout carries the bundle itself (nothing else), so it can be piped.
    piped = run("banks", "export", "--bank", "known", "--org", "host-a")
    assert json.loads(piped.stdout)["type"] == "bundle"
