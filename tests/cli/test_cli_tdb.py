"""`cleanit tdb enable|submit|list` against the local fake Transparency Database."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cleanit.cli.main import app
from cleanit.services.context import Context
from tests.fakes.tdb_server import TOKEN, FakeTdb
from tests.preservation_support import removed
from tests.world import build_world


def test_tdb_enable_submit_list(ctx: Context, database_url: str, tmp_path: Path) -> None:
    world = build_world(ctx)
    runner = CliRunner()
    with FakeTdb() as fake:
        env = {
            "CLEANIT_DATABASE_URL": database_url,
            "CLEANIT_DATA_DIR": str(tmp_path / "d"),
            "CLEANIT_TDB_URL": fake.url,
            "CLEANIT_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # the fake is on 127.0.0.1
            "CLEANIT_TDB_TOKEN_HOST_A": TOKEN,
        }

        def run(*args: str) -> tuple[int, str]:
            r = runner.invoke(app, list(args), env=env)
            return r.exit_code, r.output

        code, out = run("tdb", "enable", "--org", "host-a")
        assert code == 0 and "on (token in $CLEANIT_TDB_TOKEN_HOST_A)" in out, out
        for n in range(3):
            removed(world, f"https://host-a.example.org/v/cli-{n}")
        code, out = run("tdb", "submit", "--org", "host-a")
        assert code == 0, out
        assert "submitted 3, rejected 0" in out
        assert "queued 0, submitted 3, rejected 0, skipped 0 in all" in out
        assert len(fake.stored) == 3
        code, out = run("tdb", "list", "--org", "host-a")
        assert code == 0 and "3 of 3 statement(s)" in out and "submitted" in out
        code, out = run("tdb", "list", "--org", "host-b", "--status", "nonsense")
        assert code == 1 and "status must be one of" in out
