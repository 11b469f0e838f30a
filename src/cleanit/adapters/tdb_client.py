"""The DSA Transparency Database's bulk endpoint, over HTTP (httpx).

``POST {base}/api/v1/statements`` with ``{"statements": [...]}`` (1 to 100 statements) and a
Sanctum bearer token. Only ``201`` means the statements were stored; a ``422`` refuses the
whole batch (``{"errors": {"statement_<i>": {field: [messages]}}}`` for invalid statements,
``{"errors": {"puid": [...], "existing_puids": [...]}}`` for identifiers already used). This
module only carries the call; what the answers mean is decided in ``services.tdb``.

Every call goes through the SSRF guard (``adapters.webhooks.check_target``) and never follows
redirects. A network failure raises ``TdbUnavailable`` with a message free of the token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from cleanit.adapters.webhooks import UnsafeTarget, check_target

MAX_BATCH = 100
BULK_PATH = "/api/v1/statements"


class TdbUnavailable(Exception):
    """The TDB could not be reached or refused the address (SSRF guard): try again later."""


@dataclass(frozen=True, slots=True)
class TdbAnswer:
    status: int
    body: Any  # the parsed JSON answer, or None when it was not JSON
    text: str  # the start of the raw answer, for error messages


class TdbClient(Protocol):
    def submit(self, statements: list[dict[str, Any]], *, token: str) -> TdbAnswer: ...


class HttpTdbClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0, allow_private: bool = False):
        self.url = base_url.rstrip("/") + BULK_PATH
        self.allow_private = allow_private
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def submit(self, statements: list[dict[str, Any]], *, token: str) -> TdbAnswer:
        if not 1 <= len(statements) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} statements, not {len(statements)}")
        try:
            check_target(self.url, allow_private=self.allow_private)
        except UnsafeTarget as exc:
            raise TdbUnavailable(f"refused to call the Transparency Database: {exc}") from None
        try:
            response = self._client.post(
                self.url,
                json={"statements": statements},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                    "User-Agent": "cleanit-tdb/1",
                },
            )
        except httpx.HTTPError as exc:
            raise TdbUnavailable(
                f"the Transparency Database could not be reached ({type(exc).__name__})"
            ) from None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return TdbAnswer(response.status_code, body, response.text[:2000])

    def close(self) -> None:
        self._client.close()


def token_variable(template: str, provider_slug: str) -> str:
    """The environment variable that holds ``provider_slug``'s token."""
    slug = re.sub(r"[^A-Z0-9]", "_", provider_slug.upper())
    return template.replace("{SLUG}", slug)


def env_tokens(template: str) -> Callable[[str], str | None]:
    """Tokens from the environment, read when needed (a rotated token is picked up)."""

    def token_for(provider_slug: str) -> str | None:
        return os.environ.get(token_variable(template, provider_slug)) or None

    return token_for
