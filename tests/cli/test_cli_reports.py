"""``cleanit reports build``: the same report as the service, in a file or on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cleanit.cli.main import app
from cleanit.services.context import Context
from tests.services.report_fixture import build_year


def test_build_json_and_html(ctx: Context, database_url: str, tmp_path: Path) -> None:
    build_year(ctx)
    env = {"CLEANIT_DATABASE_URL": database_url, "CLEANIT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    out = tmp_path / "r.json"
    args = ["reports", "build", "--org", "host-a", "--period", "2026", "--kind", "dsa"]
    r = runner.invoke(app, [*args, "--format", "json", "--output", str(out)], env=env)
    assert r.exit_code == 0, r.output
    body = json.loads(out.read_text())
    decisions = next(s for s in body["sections"] if s["key"] == "decisions")
    assert {"metric": "total", "dimension": "", "value": 3} in decisions["rows"]
    r = runner.invoke(app, [*args, "--format", "html"], env=env)
    assert r.exit_code == 0 and "<svg" in r.stdout
    r = runner.invoke(app, [*args[:-1], "eu", "--format", "csv"], env=env)
    assert r.exit_code == 1 and "not a report kind" in r.output
