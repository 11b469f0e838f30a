"""A fake of the DSA Transparency Database's bulk endpoint (never the real service).

``POST /api/v1/statements`` with ``{"statements": [...]}`` and ``Authorization: Bearer``:

- a wrong or missing token: 401 ``{"message": "Unauthenticated."}``;
- not 1 to 100 statements: 422 ``{"message", "errors": {"statements": [...]}}``;
- any statement the domain validator refuses: 422, the whole batch refused, errors indexed
  by position ``{"errors": {"statement_<i>": {field: [message]}}}``;
- a ``puid`` repeated in the call or already stored: 422 ``{"message", "errors": {"puid":
  [...], "existing_puids": [...]}}``;
- otherwise 201 ``{"statements": [...]}``, each echoed with ``uuid``, ``created_at`` and
  ``permalink``; they are kept in ``stored`` (by puid).

``fail_next`` answers the next calls with that status (503 to test retries); ``refuse`` makes
the server refuse statements whose puid is listed, beyond what the validator catches.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from cleanit.domain.tdb import validate_statement
from tests.fakes import FakeServer, Request, Response

TOKEN = "invented-tdb-token-0001"
MAX_BATCH = 100


class FakeTdb(FakeServer):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        self.calls: list[int] = []  # the size of each batch received
        self.fail_next: list[int] = []
        self.refuse: dict[str, str] = {}  # puid -> the reason given

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/api/v1/statements":
            return Response(404, {"message": "Not found."})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, {"message": "Unauthenticated."})
        if self.fail_next:
            return Response(self.fail_next.pop(0), {"message": "Service unavailable."})
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return Response(400, {"message": "The body is not JSON."})
        statements = body.get("statements") if isinstance(body, dict) else None
        if not isinstance(statements, list) or not 1 <= len(statements) <= MAX_BATCH:
            message = f"The statements field must have between 1 and {MAX_BATCH} items."
            return Response(422, {"message": message, "errors": {"statements": [message]}})
        self.calls.append(len(statements))
        errors: dict[str, dict[str, list[str]]] = {}
        for i, statement in enumerate(statements):
            problems: dict[str, list[str]] = {}
            for p in validate_statement(statement):
                problems.setdefault(p.field, []).append(p.message)
            puid = statement.get("puid") if isinstance(statement, dict) else None
            if isinstance(puid, str) and puid in self.refuse:
                problems.setdefault("decision_facts", []).append(self.refuse[puid])
            if problems:
                errors[f"statement_{i}"] = problems
        if errors:
            return Response(422, {"message": "The given data was invalid.", "errors": errors})
        puids = [s["puid"] for s in statements]
        repeated = sorted({p for p in puids if puids.count(p) > 1 or p in self.stored})
        if repeated:
            message = "The platform identifier(s) are not all unique within this call."
            return Response(
                422, {"message": message, "errors": {"puid": [message], "existing_puids": repeated}}
            )
        out = []
        for statement in statements:
            sid = str(uuid.uuid4())
            echoed = {
                **statement,
                "uuid": sid,
                "created_at": "2026-12-06 07:00:00",
                "platform_name": "Invented platform",
                "permalink": f"{self.url}/statement/{sid}",
                "self": f"{self.url}/api/v1/statement/{sid}",
            }
            self.stored[statement["puid"]] = echoed
            out.append(echoed)
        return Response(201, {"statements": out})
