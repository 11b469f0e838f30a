"""A fake of Tech Against Terrorism's hash list API: the parts python-threatexchange uses.

- ``POST /token-auth/tcap/`` (form ``username``, ``password``, ``resend``): ``{"token",
  "user"}``; wrong credentials answer HTTP 400 ``{"non_field_errors": [...]}`` (Django REST
  framework, on which the API's ``count/next/previous/results`` pages are built);
- ``GET /api/hash-list/v2/all?order=asc&after=<updated_on>,<id>&limit=&offset=`` with
  ``Authorization: Bearer <token>``: records strictly after the ``after`` cursor, oldest
  first, ``{"count", "next", "previous", "checkpoint", "results"}``; ``next`` is a full URL
  with ``limit`` and ``offset``; ``checkpoint`` is the cursor of the page's last record; a
  bad token answers HTTP 401 ``{"detail": ...}``.

A repeated query parameter keeps its last value (as Django's ``QueryDict.get``), so the
library's own way of appending ``next`` to the base URL works too. Everything is invented.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.fakes import DROP, FakeServer, Request, Response

USERNAME = "analyst@platform.example.org"
PASSWORD = "invented-password"
HASH_LIST = "/api/hash-list/v2/all"


@dataclass
class Record:
    updated_on: float
    id: int
    body: dict[str, Any]


class FakeTAT(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[int, Record] = {}
        self.tokens: set[str] = set()
        self.default_limit = 100
        #: Serve this many hash list pages, then drop every later connection.
        self.drop_after_pages: int | None = None
        self.pages_served = 0
        #: Ids of the records served, in order.
        self.served: list[int] = []
        self._ids = itertools.count(2801)

    @property
    def credentials(self) -> str:
        return f"{USERNAME}:{PASSWORD}"

    @property
    def api_base(self) -> str:
        return self.url

    # -- test data

    def add(
        self,
        hash_digest: str,
        *,
        at: float,
        algorithm: str = "PDQ",
        file_type: str = "jpg",
        ideology: str = "islamist",
    ) -> int:
        record_id = next(self._ids)
        self.records[record_id] = Record(
            at,
            record_id,
            {
                "hash_digest": hash_digest,
                "algorithm": algorithm,
                "ideology": ideology,
                "file_type": file_type,
                "deleted": False,
                "updated_on": at,
                "created_on": "2026-01-02 03:04:05,678",
                "id": record_id,
            },
        )
        return record_id

    def delete(self, record_id: int, *, at: float) -> None:
        body = dict(self.records[record_id].body) | {"deleted": True, "updated_on": at}
        self.records[record_id] = Record(at, record_id, body)

    def add_raw(self, body: dict[str, Any], *, at: float) -> int:
        """A record exactly as given (garbage...); ordered by ``at`` and its own id if any."""
        given = body.get("id")
        record_id = given if isinstance(given, int) else next(self._ids)
        self.records[record_id] = Record(at, record_id, body)
        return record_id

    # -- the API

    def handle(self, request: Request) -> Response:
        if request.path == "/token-auth/tcap/" and request.method == "POST":
            form = request.form
            if form.get("username") != USERNAME or form.get("password") != PASSWORD:
                return Response(
                    400, {"non_field_errors": ["Unable to log in with provided credentials."]}
                )
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return Response(200, {"token": token, "user": {"username": USERNAME}})
        if request.path == HASH_LIST and request.method == "GET":
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
                return Response(401, {"detail": "Invalid token."})
            return self._hash_list(request)
        return Response(404, {"detail": "Not found."})

    def _hash_list(self, request: Request) -> Response:
        if self.drop_after_pages is not None and self.pages_served >= self.drop_after_pages:
            return DROP
        q = request.query
        after_text = q.get("after", "")
        try:
            limit = int(q.get("limit") or self.default_limit)
            offset = int(q.get("offset") or 0)
            after = None
            if after_text and after_text != "None":
                stamp, _, record = after_text.partition(",")
                after = (float(stamp), int(record))
        except ValueError:
            return Response(400, {"after": ["Enter a valid checkpoint: <timestamp>,<id>."]})
        rows = sorted(self.records.values(), key=lambda r: (r.updated_on, r.id))
        if q.get("order") == "desc":
            rows.reverse()
        rows = [r for r in rows if after is None or (r.updated_on, r.id) > after]
        page = rows[offset : offset + limit]
        self.pages_served += 1
        self.served.extend(r.id for r in page)

        def link(at: int) -> str:
            params = {"after": after_text, "limit": limit, "offset": at, "order": "asc"}
            return f"{self.url}{HASH_LIST}?{urlencode(params)}"

        last = page[-1] if page else None
        return Response(
            200,
            {
                "count": len(rows),
                "next": link(offset + limit) if offset + limit < len(rows) else None,
                "previous": link(max(0, offset - limit)) if offset > 0 else None,
                "checkpoint": f"{last.updated_on},{last.id}" if last else after_text,
                "results": [r.body for r in page],
            },
        )
