"""Settings, read from the environment (prefix ``CLEANIT_``) when the composition root asks.

Nothing here runs at import time: call ``Settings()`` where the application is wired.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEANIT_", extra="ignore")

    # External PostgreSQL (production). When empty, an embedded server runs under data_dir.
    database_url: str | None = None
    data_dir: Path = Path("var")
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr("dev-only-change-me")

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    complaint_window_days: int = Field(default=183, ge=183)
    # Personal data of notifiers (name, e-mail) is deleted this long after the case closes.
    personal_data_retention_days: int = Field(default=365, ge=1)

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    mail_from: str = "cleanit@example.org"

    # Webhooks to loopback/private addresses are refused unless this is set (the local demo).
    allow_private_webhook_targets: bool = False
    webhook_timeout_seconds: float = 5.0

    db_pool_size: int = 10
    db_max_overflow: int = 20

    # Matching: each matcher process holds the PDQ and text indexes in memory (about 160
    # bytes per PDQ entry); it refuses to load more than this and says so.
    matcher_memory_budget_mb: int = Field(default=4096, ge=16)
    # Full rebuilds of the indexes (a backstop to incremental updates), staggered across
    # processes by an advisory lock.
    matcher_rebuild_interval_seconds: float = Field(default=600.0, ge=10.0)
    # Signals of matched content are kept this long for retroactive matching.
    seen_content_days: int = Field(default=30, ge=1)
    # Content fetched from a platform's own storage for matching is bounded by this.
    max_content_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)

    # Preserved content (TCO Art 6) is encrypted at rest with this key: base64 of 32 random
    # bytes, optionally "id:base64". Unset, a development key is generated under data_dir
    # (with a loud warning): production must set it from its secret store.
    preservation_key: SecretStr | None = None
    # Retired keys that still open older blobs ("id:base64", separated by commas).
    preservation_old_keys: SecretStr | None = None
    # Art 14(5): where threats to life go when no authority of the Member State is known.
    europol_referral_email: str = "europol-referrals@example.invalid"
    # Removal orders: the provider's on-call contact is reminded this many minutes before the
    # 1-hour deadline (and once when it is missed). Env: CLEANIT_ORDER_ESCALATION_MINUTES=[30,15,5]
    order_escalation_minutes: list[Annotated[int, Field(ge=1, le=60)]] = Field(
        default=[30, 15, 5], min_length=1, max_length=12
    )

    # DSA Transparency Database (Art 24(5)): where statements of reasons go, and the name of
    # the environment variable holding a provider's bearer token ("{SLUG}" is replaced by the
    # provider's slug in upper case, "-" as "_": each provider has its own TDB account).
    tdb_url: str = "https://transparency.dsa.ec.europa.eu"
    tdb_token_env: str = "CLEANIT_TDB_TOKEN_{SLUG}"  # noqa: S105 - a variable name
    tdb_timeout_seconds: float = Field(default=30.0, gt=0)
    # Research exports: identifiers are pseudonymised with HMAC-SHA256 under this key (never
    # exported). Unset, a development key is generated under data_dir. Cells and
    # quasi-identifier groups smaller than research_k are suppressed (docs/research.md).
    research_key: SecretStr | None = None
    research_k: int = Field(default=10, ge=2)

    @property
    def mailbox_dir(self) -> Path:
        return self.data_dir / "mailbox"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def preserved_dir(self) -> Path:
        return self.data_dir / "preserved"

    @property
    def dev_preservation_key_file(self) -> Path:
        return self.data_dir / "preservation-dev.key"

    @property
    def dev_research_key_file(self) -> Path:
        return self.data_dir / "research-dev.key"
