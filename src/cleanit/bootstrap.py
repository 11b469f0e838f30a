"""The composition root: builds every part from settings. Nothing is built at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import procrastinate
from fastapi import FastAPI
from sqlalchemy import Engine

from cleanit.adapters.db import migrate
from cleanit.adapters.db.engine import libpq_url, make_engine, make_session_factory
from cleanit.adapters.embedded import EmbeddedPostgres, start_embedded
from cleanit.adapters.mail import MailboxMailer, Mailer, SmtpMailer
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.adapters.webhooks import HttpWebhookSender
from cleanit.services.context import Context
from cleanit.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database_url: str  # libpq form
    engine: Engine
    ctx: Context
    embedded: EmbeddedPostgres | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self, *, stop_embedded: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.dispose()
        if self.embedded is not None and stop_embedded:
            self.embedded.stop()


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured external server, or the embedded one (started if needed)."""
    if settings.database_url:
        return libpq_url(settings.database_url), None
    pg = start_embedded(settings.pgdata_dir)
    return pg.url(), pg


def mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            settings.smtp_starttls,
        )
    return MailboxMailer(settings.mailbox_dir)


def build(settings: Settings | None = None, *, upgrade: bool = True) -> Runtime:
    settings = settings or Settings()
    url, embedded = database_url(settings)
    if upgrade:
        migrate.upgrade(url)
    engine = make_engine(
        url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    ctx = Context(
        sessions=make_session_factory(engine),
        mailer=mailer(settings),
        webhooks=HttpWebhookSender(
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.allow_private_webhook_targets,
        ),
        base_url=settings.base_url.rstrip("/"),
        mail_from=settings.mail_from,
        complaint_window=timedelta(days=settings.complaint_window_days),
        personal_data_retention=timedelta(days=settings.personal_data_retention_days),
        allow_private_targets=settings.allow_private_webhook_targets,
        seen_content_retention=timedelta(days=settings.seen_content_days),
        matching=MatchIndexes(
            memory_budget_bytes=settings.matcher_memory_budget_mb * 1_000_000,
            rebuild_interval=settings.matcher_rebuild_interval_seconds,
        ),
    )
    return Runtime(settings, url, engine, ctx, embedded)


def job_app(runtime: Runtime) -> procrastinate.App:
    """The procrastinate app with every cleanit task registered."""
    from cleanit.workers.tasks import register

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=runtime.database_url))
    register(app, runtime.ctx)
    return app


def asgi_app() -> FastAPI:
    """ASGI factory for ``cleanit serve --workers N``: each worker process builds its own
    runtime from the environment (the parent has already migrated the database)."""
    from cleanit.api.app import create_app

    runtime = build(Settings(), upgrade=False)
    return create_app(runtime.ctx, runtime.settings)
