"""ASGI middleware: bounded bodies, metrics, security headers."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM = "application/problem+json"


class BodyLimit:
    """Refuse bodies above ``limit`` bytes with 413, counting what is actually streamed
    (a missing or lying Content-Length does not get past it)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        *,
        uploads: re.Pattern[str] | None = None,
        upload_limit: int | None = None,
    ) -> None:
        # ``uploads``: paths that take a raw file (streamed to disk by their route, never
        # held whole) and so may be as large as ``upload_limit``.
        self.app, self.default_limit = app, limit
        self.uploads, self.upload_limit = uploads, upload_limit

    def _limit(self, scope: Scope) -> int:
        if (
            self.uploads is not None
            and self.upload_limit is not None
            and scope.get("method") == "POST"
            and self.uploads.fullmatch(scope.get("path", ""))
        ):
            return self.upload_limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(send, limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(send, limit)

    async def _too_large(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "type": "https://cleanit.example.org/problems/payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"the body is larger than the limit of {limit} bytes; nothing was stored",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException so that FastAPI, reading the body, passes it on as a 413 instead of
    turning it into "400 error parsing the body" (a chunked body has no Content-Length)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the body is larger than the limit of {limit} bytes; nothing was stored"
        )


class Metrics:
    """Request counts and latencies for Prometheus, labelled by route template (bounded)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "cleanit_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "cleanit_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.requests.labels(scope["method"], template, str(status["code"])).inc()
            self.latency.labels(scope["method"], template).observe(time.perf_counter() - start)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
