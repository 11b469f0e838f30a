"""The database goes away and comes back: the API answers 503 problem details meanwhile
(never a 500, never a hang) and serves again by itself, without a restart.

The outage is real: a database of its own is closed to connections
(``ALLOW_CONNECTIONS false``) and every open connection to it is terminated, from the
server's maintenance database. The shared test database is not touched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cleanit.adapters.db import migrate
from cleanit.adapters.db.engine import make_engine, make_session_factory
from cleanit.adapters.mail import MailboxMailer
from cleanit.adapters.passwords import Passwords
from cleanit.api.app import create_app
from cleanit.domain.roles import OrgKind, Role
from cleanit.services import organisations
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.conftest import RecordingWebhooks, _with_db

pytestmark = pytest.mark.slow

# Failing requests must answer well within the engine's connect/pool timeouts (5 s / 10 s):
# a hang would show as a much longer call. This bounds "no hang", it does not time anything.
NO_HANG = 10.0
TF = "trusted_flagger"


@pytest.fixture
def outage_db(server_url: str) -> Iterator[tuple[str, str]]:
    """(name, url) of a fresh migrated database that this test may switch off."""
    name = f"cleanit_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_db(server_url, name)
        migrate.upgrade(url)
        yield name, url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _switch(server_url: str, name: str, *, available: bool) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(available).lower()}')
        if not available:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            # Wait until the terminated backends are gone (termination is asynchronous).
            deadline = time.monotonic() + 10
            while conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone() != (0,):
                assert time.monotonic() < deadline, "backends were not terminated"
                time.sleep(0.05)


def _notice(i: int, source: str = "end_user") -> dict[str, Any]:
    return {
        "provider": "host-a",
        "source_type": source,
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "explanation": "It calls on people to join an invented violent group.",
        "locations": [f"https://host-a.example.org/outage/{i}"],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }


def _timed(fn: Any, *args: Any, **kw: Any) -> Any:
    t0 = time.monotonic()
    r = fn(*args, **kw)
    assert time.monotonic() - t0 < NO_HANG, "the request hung while the database was down"
    return r


def _assert_unavailable_problem(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 503
    assert body["type"].endswith("/database-unavailable")
    assert "database is unavailable" in body["detail"]
    assert "nothing was stored" in body["detail"]
    assert r.headers.get("retry-after")


def test_database_outage_gives_503_and_recovers_without_restart(
    server_url: str, outage_db: tuple[str, str], tmp_path: Path
) -> None:
    name, url = outage_db
    engine = make_engine(url, pool_size=2, max_overflow=2)
    try:
        ctx = Context(
            sessions=make_session_factory(engine),
            mailer=MailboxMailer(tmp_path / "mailbox"),
            webhooks=RecordingWebhooks(),
            base_url="http://testserver",
            passwords=Passwords(time_cost=1, memory_cost=1024),
        )
        organisations.create_organisation(
            ctx, slug="host-a", name="Host A", kind=OrgKind.HOSTING_PROVIDER
        )
        organisations.create_organisation(
            ctx, slug="flagger", name="Flagger", kind=OrgKind.TRUSTED_FLAGGER
        )
        token = organisations.issue_token(
            ctx, org_slug="flagger", name="outage", roles=[Role.TRUSTED_FLAGGER]
        ).token
        auth = {"Authorization": f"Bearer {token}"}
        settings = Settings(database_url=url, data_dir=tmp_path)

        with TestClient(create_app(ctx, settings)) as client:
            # Before: the pool holds live connections.
            assert client.get("/readyz").status_code == 200
            r = client.post("/api/v1/notices", json=_notice(0, TF), headers=auth)
            assert r.status_code == 201, r.text

            _switch(server_url, name, available=False)

            # Pooled connections are dead and new ones are refused: 503, twice in a row
            # (the second time the pool has nothing left to recycle).
            for i in (1, 2):
                _assert_unavailable_problem(_timed(client.post, "/api/v1/notices", json=_notice(i)))
                _assert_unavailable_problem(
                    _timed(
                        client.post,
                        "/api/v1/notices",
                        json=_notice(i, TF),
                        headers={**auth, "Idempotency-Key": f"outage-{i}"},
                    )
                )
            ready = _timed(client.get, "/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            # A request that needs no database still works: the process is alive.
            assert client.get("/healthz").status_code == 200

            _switch(server_url, name, available=True)

            # The same app instance serves again, with no restart and no manual reset.
            assert _timed(client.get, "/readyz").status_code == 200
            for i in (1, 2):
                r = client.post(
                    "/api/v1/notices",
                    json=_notice(i, TF),
                    headers={**auth, "Idempotency-Key": f"outage-{i}"},
                )
                assert r.status_code == 201, r.text

        # Nothing from the failed requests was half-stored: exactly the three accepted.
        with engine.connect() as conn:
            stored = sorted(conn.execute(text("SELECT locations[1] FROM notices")).scalars().all())
        assert stored == [f"https://host-a.example.org/outage/{i}" for i in (0, 1, 2)]
    finally:
        engine.dispose()
