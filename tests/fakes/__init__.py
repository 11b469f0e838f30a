"""Local fake servers that speak the exchanges' APIs, for tests (never the real internet).

Each fake runs in-process: a ``ThreadingHTTPServer`` on 127.0.0.1 and a random port, in a
daemon thread, started and stopped as a context manager. A fake keeps what it was sent
(``requests``) and can be told to drop the connection, so tests can break a sync half-way.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    #: Query parameters; a repeated key keeps its last value (as Django and the Graph API do).
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


#: A handler returns DROP to close the connection without answering (a server that died).
DROP = Response(0, None)


class LocalServer:
    """The lifecycle of an in-process fake: subclasses give the request handler class."""

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the fake first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"


class FakeServer(LocalServer):
    """An exchange's JSON API: subclasses implement ``handle``."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(request)
                    response = fake.handle(request)
                if response is DROP:
                    self.close_connection = True
                    return
                payload = json.dumps(response.body).encode()
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        return Handler

    def handle(self, request: Request) -> Response:
        raise NotImplementedError
