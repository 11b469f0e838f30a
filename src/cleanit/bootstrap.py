"""The composition root: builds every part from settings. Nothing is built at import time."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta

import procrastinate
from fastapi import FastAPI
from sqlalchemy import Engine

from cleanit.adapters.db import migrate
from cleanit.adapters.db.engine import libpq_url, make_engine, make_session_factory
from cleanit.adapters.embedded import EmbeddedPostgres, start_embedded
from cleanit.adapters.fetch import HttpContentFetcher
from cleanit.adapters.mail import MailboxMailer, Mailer, SmtpMailer
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.adapters.vault import FileVault, Keyring, new_key_text
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


def _dev_key(settings: Settings) -> str:
    """The development key under data_dir, generated once; never for production use."""
    path = settings.dev_preservation_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 in one step: the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key_text("dev") + "\n")
    log.warning(
        "CLEANIT_PRESERVATION_KEY is not set: preserved content is encrypted with a "
        "DEVELOPMENT key stored beside the data in %s. Anyone with the data directory can "
        "read it. Production MUST set CLEANIT_PRESERVATION_KEY from a secret store "
        "(see docs/preservation.md).",
        path,
    )
    return path.read_text().strip()


def vault(settings: Settings) -> FileVault:
    """The encrypted store of preserved content; a wrong key stops the start with a reason."""
    configured = settings.preservation_key
    current = configured.get_secret_value() if configured else _dev_key(settings)
    old = settings.preservation_old_keys
    keyring = Keyring.from_settings(current, old.get_secret_value() if old else None)
    return FileVault(settings.preserved_dir, keyring)


def build(settings: Settings | None = None, *, upgrade: bool = True) -> Runtime:
    settings = settings or Settings()
    store = vault(settings)  # before anything starts: a bad key stops here, with its reason
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
        fetcher=HttpContentFetcher(allow_private=settings.allow_private_webhook_targets),
        max_content_bytes=settings.max_content_bytes,
        seen_content_retention=timedelta(days=settings.seen_content_days),
        matching=MatchIndexes(
            memory_budget_bytes=settings.matcher_memory_budget_mb * 1_000_000,
            rebuild_interval=settings.matcher_rebuild_interval_seconds,
        ),
        vault=store,
        europol_email=settings.europol_referral_email,
        order_escalation_points=tuple(
            timedelta(minutes=m) for m in settings.order_escalation_minutes
        ),
    )
    return Runtime(settings, url, engine, ctx, embedded)


def job_app(runtime: Runtime) -> procrastinate.App:
    """The procrastinate app with every cleanit task registered."""
    from cleanit.workers.tasks import register

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=runtime.database_url))
    register(app, runtime.ctx, runtime.settings)
    return app


def asgi_app() -> FastAPI:
    """ASGI factory for ``cleanit serve --workers N``: each worker process builds its own
    runtime from the environment (the parent has already migrated the database)."""
    from cleanit.api.app import create_app

    runtime = build(Settings(), upgrade=False)
    return create_app(runtime.ctx, runtime.settings)
