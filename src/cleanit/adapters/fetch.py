"""Fetching content from a hosting platform's own storage, for matching.

The caller names an object by URL; we download it with a hard byte bound, never follow a
redirect (it could lead past the SSRF guard to a private address) and refuse hosts that
resolve to private, loopback or link-local addresses unless told otherwise (local fakes and
tests). Error messages name the host and path only: a storage URL often carries a signature
or a token in its query string, or credentials before the host, and those must not end up in
problem details, batch results or logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from cleanit.adapters.webhooks import UnsafeTarget, check_target
from cleanit.domain.errors import DomainError, InvalidInput

DEFAULT_TIMEOUT = 10.0  # seconds to connect, and between two chunks of the body
DEFAULT_TOTAL_TIMEOUT = 300.0  # seconds for the whole download (a slow drip stops here)
CHUNK = 64 * 1024
USER_AGENT = "cleanit-matching/1"


class StorageUrlRefused(InvalidInput):
    """The storage URL cannot be fetched as given (not http(s), not allowed, a redirect)."""

    code = "storage-url-refused"

    def __init__(self, detail: str, *, field: str | None = "storage_url") -> None:
        super().__init__(detail, field=field)


class FetchedContentTooLarge(InvalidInput):
    """The object is larger than the configured limit; it was not read whole."""

    code = "content-too-large"

    def __init__(self, detail: str, *, field: str | None = "storage_url") -> None:
        super().__init__(detail, field=field)


class FetchFailed(DomainError):
    """The storage did not deliver the object (timeout, refused connection, error status)."""

    code = "fetch-failed"
    status = 502

    def __init__(self, detail: str, *, field: str | None = "storage_url") -> None:
        super().__init__(detail, field=field)


@dataclass(frozen=True, slots=True)
class FetchedContent:
    data: bytes
    content_type: str | None  # the media type the storage declared, without parameters
    final_url: str


class ContentFetcher(Protocol):
    def fetch(self, url: str, *, max_bytes: int) -> FetchedContent: ...


def shown(url: str) -> str:
    """The URL as it may appear in messages: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    host = parts.hostname or "(no host)"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    path = parts.path if len(parts.path) <= 200 else parts.path[:200] + "…"
    return f"{parts.scheme}://{netloc}{path}"


def media_type(header: str | None) -> str | None:
    """``image/png`` from ``image/png; charset=binary``; None when absent or empty."""
    if not header:
        return None
    value = header.split(";", 1)[0].strip().lower()
    return value or None


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise StorageUrlRefused("the storage URL cannot be parsed") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise StorageUrlRefused(
            f"the storage URL must be an absolute http(s) URL, not {shown(url)!r}"
        )


class HttpContentFetcher:
    """Downloads over HTTP(S) with httpx, streaming, within ``max_bytes``.

    ``timeout`` bounds connecting and each wait for more of the body; ``total_timeout``
    bounds the whole download. ``allow_private`` lets loopback and private addresses
    through (local fakes and tests only).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        allow_private: bool = False,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.total_timeout = total_timeout

    def fetch(self, url: str, *, max_bytes: int) -> FetchedContent:
        _check_url(url)
        where = shown(url)
        try:
            check_target(url, allow_private=self.allow_private)
        except UnsafeTarget as exc:
            raise StorageUrlRefused(f"refused to fetch {where}: {exc}") from None
        try:
            return self._get(url, where, max_bytes)
        except httpx.ConnectTimeout:
            raise FetchFailed(
                f"{urlsplit(url).hostname} did not accept a connection within "
                f"{self.timeout:g} s ({where})"
            ) from None
        except httpx.TimeoutException:
            raise FetchFailed(
                f"the storage stopped answering for more than {self.timeout:g} s ({where})"
            ) from None
        except httpx.ConnectError as exc:
            # The exception's text is the OS reason ("Connection refused"), never the URL.
            raise FetchFailed(f"cannot connect to the storage at {where}: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(
                f"fetching {where} failed: {type(exc).__name__}"
                + (f" ({exc})" if isinstance(exc, httpx.ProtocolError) else "")
            ) from None

    def _get(self, url: str, where: str, max_bytes: int) -> FetchedContent:
        started = time.monotonic()
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        with (
            httpx.Client(timeout=self.timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status = response.status_code
            if 300 <= status < 400:
                target = urlsplit(urljoin(url, response.headers.get("location", ""))).hostname
                raise StorageUrlRefused(
                    f"the storage answered {status} for {where}, a redirect to "
                    f"{target or 'an unknown host'}; redirects are not followed: "
                    "give the final URL of the object"
                )
            if not 200 <= status < 300:
                reason = response.reason_phrase or "error"
                raise FetchFailed(f"the storage answered {status} {reason} for {where}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchedContentTooLarge(
                    f"the object at {where} is {int(declared):,} bytes, more than the limit "
                    f"of {max_bytes:,} bytes; it was not downloaded"
                )
            body = bytearray()
            for chunk in response.iter_bytes(CHUNK):
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise FetchedContentTooLarge(
                        f"the object at {where} is larger than the limit of {max_bytes:,} "
                        "bytes; the download was stopped there"
                    )
                if time.monotonic() - started > self.total_timeout:
                    raise FetchFailed(
                        f"downloading {where} took longer than {self.total_timeout:g} s"
                    )
            return FetchedContent(
                bytes(body), media_type(response.headers.get("content-type")), str(response.url)
            )
