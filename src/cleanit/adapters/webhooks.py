"""Signed webhooks to hosting platforms.

Signature: ``X-Cleanit-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the
timestamp in ``X-Cleanit-Timestamp`` (Unix seconds), so a receiver can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = "X-Cleanit-Signature"
TIMESTAMP_HEADER = "X-Cleanit-Timestamp"
MAX_SKEW_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> bool:
    """Constant-time check of a signature; refuses timestamps more than 5 minutes off."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


class UnsafeTarget(ValueError):
    pass


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse webhook targets on private, loopback or link-local addresses (SSRF).

    Every address the name resolves to is checked.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeTarget("the webhook URL must be an absolute http(s) URL")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeTarget(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global:
            raise UnsafeTarget(f"{parts.hostname} resolves to a non-public address ({addr})")


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status_code: int
    body: str


class WebhookSender(Protocol):
    def send(self, url: str, secret: str, body: bytes) -> WebhookResult: ...


class HttpWebhookSender:
    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        # One client for every send: a new one per call costs ~50 ms of TLS set-up
        # (bench/orders.py). httpx clients are safe to share between threads.
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, url: str, secret: str, body: bytes) -> WebhookResult:
        check_target(url, allow_private=self.allow_private)
        ts = int(time.time())
        response = self._client.post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(secret, ts, body),
                "User-Agent": "cleanit-webhooks/1",
            },
            follow_redirects=False,  # a redirect could lead to a private address
        )
        return WebhookResult(response.status_code, response.text[:2000])
