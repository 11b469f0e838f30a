"""What every use case needs: a way to open a transaction, the clock, and the adapters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from cleanit.adapters.fetch import ContentFetcher, HttpContentFetcher
from cleanit.adapters.mail import Mailer
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.adapters.passwords import Passwords
from cleanit.adapters.signals import DEFAULT_MAX_BYTES
from cleanit.adapters.vault import MemoryVault, Vault
from cleanit.adapters.webhooks import WebhookSender
from cleanit.domain.orders import DEFAULT_ESCALATION_POINTS
from cleanit.domain.roles import Principal


class TokenCache:
    """Recently seen API tokens → principals, for ``ttl`` seconds, in this process.

    Saves a database round trip on every API call. The price: revoking a token or changing
    its roles takes effect within ``ttl`` seconds on every replica (see docs/decisions.md).
    Keys are token digests, never tokens.
    """

    def __init__(self, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, principal: Principal) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded memory; entries are cheap to reload
        self._entries[key] = (time.monotonic() + self.ttl, principal)


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
    # How long the signals of matched content are kept for retroactive matching.
    seen_content_retention: timedelta = timedelta(days=30)
    passwords: Passwords = field(default_factory=Passwords)
    clock: Callable[[], datetime] = utcnow
    token_cache: TokenCache = field(default_factory=lambda: TokenCache())
    # The per-process PDQ index over bank entries (built lazily on first match).
    matching: MatchIndexes = field(default_factory=MatchIndexes)
    # Outgoing calls (exchange APIs) may reach private and loopback addresses: local fakes
    # and tests only (settings.allow_private_webhook_targets; webhooks keep their own flag).
    allow_private_targets: bool = False
    # Downloads content from a platform's own storage for matching (storage URLs, batches);
    # bounded by ``max_content_bytes`` (settings.max_content_bytes).
    fetcher: ContentFetcher = field(default_factory=HttpContentFetcher)
    max_content_bytes: int = DEFAULT_MAX_BYTES
    # Encrypted store of preserved content. The default keeps blobs in memory (tests); the
    # composition root wires a FileVault with the configured key.
    vault: Vault = field(default_factory=MemoryVault)
    # Art 14(5) referrals go here when no competent authority of the Member State is known.
    europol_email: str = "europol-referrals@example.invalid"
    # Removal orders: how long before the deadline the provider's on-call contact is reminded.
    order_escalation_points: tuple[timedelta, ...] = DEFAULT_ESCALATION_POINTS

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits if the block succeeds, rolls back otherwise."""
        with self.sessions() as session, session.begin():
            yield session

    def now(self) -> datetime:
        return self.clock()
