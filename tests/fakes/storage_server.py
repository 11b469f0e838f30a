"""A fake of a hosting platform's object storage, for fetching content to match.

A ``ThreadingHTTPServer`` on 127.0.0.1 and a random port, in a daemon thread:

- ``GET /o/<name>``: the object put with ``put(name, data, content_type)``, else 404;
- ``GET /moved``: 302 to ``redirect_to``;
- ``GET /endless``: 200 without a length, then zero bytes for as long as the client reads
  (up to ``ENDLESS_LIMIT``); ``endless_sent`` counts what was written;
- ``GET /liar``: declares ``Content-Length: 10**12`` and sends a few bytes;
- ``GET /stall``: sends nothing until ``release`` is set (a storage that hangs).

Every request path (with its query) is kept in ``paths``. Everything is invented.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.fakes import LocalServer

ENDLESS_LIMIT = 1024**3  # 1 GiB: far more than any limit a test sets
_CHUNK = b"\0" * 65536


class StorageServer(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, tuple[bytes, str | None]] = {}
        self.paths: list[str] = []
        self.redirect_to = "http://10.0.0.7/private/object"
        self.endless_sent = 0
        self.release = threading.Event()

    def put(self, name: str, data: bytes, content_type: str | None = "image/png") -> str:
        self.objects[name] = (data, content_type)
        return f"{self.url}/o/{name}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake.paths.append(self.path)
                path = urlsplit(self.path).path
                if path.startswith("/o/") and path[3:] in fake.objects:
                    data, content_type = fake.objects[path[3:]]
                    self.send_response(200)
                    if content_type:
                        self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", fake.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/endless":
                    self._endless()
                elif path == "/liar":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                    self.wfile.write(b"\0" * 1024)
                    self.close_connection = True
                elif path == "/stall":
                    fake.release.wait(30)
                    self.close_connection = True
                else:
                    body = b"no such object"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    while fake.endless_sent < ENDLESS_LIMIT:
                        self.wfile.write(_CHUNK)
                        fake.endless_sent += len(_CHUNK)
                except OSError:
                    pass  # the client stopped reading and closed: what the test wants

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        return Handler

    def stop(self) -> None:
        self.release.set()  # a stalled request ends, so the server can shut down
        super().stop()
