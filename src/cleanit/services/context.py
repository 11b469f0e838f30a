"""What every use case needs: a way to open a transaction, the clock, and the adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from cleanit.adapters.mail import Mailer
from cleanit.adapters.passwords import Passwords
from cleanit.adapters.webhooks import WebhookSender


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    sessions: sessionmaker[Session]
    mailer: Mailer
    webhooks: WebhookSender
    base_url: str = "http://127.0.0.1:8000"
    mail_from: str = "cleanit@example.org"
    complaint_window: timedelta = timedelta(days=183)
    personal_data_retention: timedelta = timedelta(days=365)
    passwords: Passwords = field(default_factory=Passwords)
    clock: Callable[[], datetime] = utcnow

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits if the block succeeds, rolls back otherwise."""
        with self.sessions() as session, session.begin():
            yield session

    def now(self) -> datetime:
        return self.clock()
