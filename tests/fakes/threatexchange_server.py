"""A fake of Meta's ThreatExchange Graph API: the parts cleanit uses.

Speaks the paths, parameters, JSON shapes, paging and errors of the real API (as
python-threatexchange's ``ThreatExchangeAPI`` calls it):

- ``GET /<version>/<privacy group>/threat_updates/?access_token=&start_time=&stop_time=
  &limit=&fields=&types=&after=``: updates ordered by update time (``start_time``
  inclusive, ``stop_time`` exclusive), ``{"data": [...], "paging": {"cursors": {...},
  "next": url}}``; ``next`` carries every parameter and an ``after`` cursor, as Graph does;
- ``GET /<version>/<indicator id>?fields=descriptors``: the indicator's descriptors;
- ``POST /<version>/<descriptor id>/?access_token=`` with ``reactions`` or
  ``reactions_to_remove``: ``{"success": true}``; every reaction is kept in ``reactions``;
- a wrong token answers HTTP 400 ``{"error": {"message", "type": "OAuthException",
  "code": 190, "fbtrace_id"}}``; an unknown object HTTP 400 ``GraphMethodException`` code 100.

Updating an indicator moves it to the end of the update list (a new ``last_updated``);
deleting leaves a ``should_delete`` tombstone. Everything here is invented.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.fakes import DROP, FakeServer, Request, Response

VERSION = "v26.0"
APP_ID = "1000000000000001"
APP_SECRET = "inventedsecretinventedsecret01"
OTHER_APP_ID = "2000000000000002"
PRIVACY_GROUP = "3000000000000003"


@dataclass
class Descriptor:
    id: str
    owner: str
    status: str = "MALICIOUS"
    tags: list[str] = field(default_factory=list)
    reactions: dict[str, set[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": {"id": self.owner},
            "status": self.status,
            "tags": list(self.tags),
            "reactions": [
                {"key": key, "value": ",".join(sorted(apps))}
                for key, apps in sorted(self.reactions.items())
                if apps
            ],
        }


@dataclass
class Update:
    """One entry of the update list: an indicator's latest state, or raw JSON (garbage).
    Ordered by (time, seq): seq grows with every change."""

    time: int
    seq: int
    id: str
    body: dict[str, Any]


def _error(message: str, type_: str, code: int, **extra: Any) -> Response:
    return Response(
        400,
        {
            "error": {
                "message": message,
                "type": type_,
                "code": code,
                "fbtrace_id": "AInventedTrace",
                **extra,
            }
        },
    )


def _missing(object_id: str) -> Response:
    return _error(
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        "GraphMethodException",
        100,
        error_subcode=33,
    )


class FakeThreatExchange(FakeServer):
    def __init__(self, *, privacy_group: str = PRIVACY_GROUP) -> None:
        super().__init__()
        self.privacy_group = privacy_group
        self.updates: dict[str, Update] = {}
        self.descriptors: dict[str, Descriptor] = {}
        self.indicator_descriptors: dict[str, list[str]] = {}
        self.reactions: list[tuple[str, str, str]] = []  # (descriptor, reaction, added|removed)
        self.default_limit = 100
        #: Serve this many threat_updates pages, then drop every later connection.
        self.drop_after_pages: int | None = None
        self.pages_served = 0
        #: Ids of the updates served in threat_updates pages, in order.
        self.served: list[str] = []
        self._seq = itertools.count(1)
        #: Answer ``next`` links on this base instead (a hostile server).
        self.next_base: str | None = None
        #: Answer every request with a redirect here (a hostile server).
        self.redirect_to: str | None = None
        self._ids = itertools.count(4000000000000001)

    @property
    def token(self) -> str:
        return f"{APP_ID}|{APP_SECRET}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/{VERSION}"

    # -- test data

    def add(
        self,
        indicator: str,
        type_: str = "HASH_PDQ",
        *,
        at: int,
        tags: tuple[str, ...] = (),
        status: str = "MALICIOUS",
        owner: str = OTHER_APP_ID,
    ) -> str:
        """Share an indicator (or update the one with this type and value): its id."""
        found = next(
            (
                i
                for i, u in self.updates.items()
                if u.body.get("indicator") == indicator and u.body.get("type") == type_
            ),
            None,
        )
        indicator_id = found or str(next(self._ids))
        descriptor_id = str(next(self._ids))
        self.descriptors[descriptor_id] = Descriptor(descriptor_id, owner, status, list(tags))
        self.indicator_descriptors.setdefault(indicator_id, []).append(descriptor_id)
        self._put(indicator_id, at, {"indicator": indicator, "type": type_})
        return indicator_id

    def mark(self, indicator_id: str, status: str, *, at: int) -> None:
        """Every descriptor of the indicator now has this status."""
        for d in self.indicator_descriptors[indicator_id]:
            self.descriptors[d].status = status
        self._put(indicator_id, at, dict(self.updates[indicator_id].body))

    def delete(self, indicator_id: str, *, at: int) -> None:
        body = self.updates[indicator_id].body
        self.updates[indicator_id] = Update(
            at,
            next(self._seq),
            indicator_id,
            {
                "id": indicator_id,
                "indicator": body.get("indicator"),
                "type": body.get("type"),
                "last_updated": at,
                "should_delete": True,
            },
        )

    def add_raw(self, body: dict[str, Any], *, at: int) -> None:
        """An update exactly as given (garbage, unknown types...)."""
        key = str(body.get("id") or next(self._ids))
        self.updates[key] = Update(at, next(self._seq), key, body)

    def _put(self, indicator_id: str, at: int, body: dict[str, Any]) -> None:
        self.updates[indicator_id] = Update(
            at,
            next(self._seq),
            indicator_id,
            {
                **body,
                "id": indicator_id,
                "last_updated": at,
                "should_delete": False,
                "descriptors": {"data": []},  # filled when served
            },
        )

    # -- the API

    def handle(self, request: Request) -> Response:
        if self.redirect_to is not None:
            return Response(302, {}, {"Location": self.redirect_to})
        parts = [p for p in request.path.split("/") if p]
        if not parts or not re.fullmatch(r"v\d+\.\d+", parts[0]):
            return _error("Unknown path components", "OAuthException", 2500)
        token = request.query.get("access_token") or request.form.get("access_token")
        if token != self.token:
            return _error(
                "Invalid OAuth access token - Cannot parse access token", "OAuthException", 190
            )
        if len(parts) == 3 and parts[2] == "threat_updates" and request.method == "GET":
            return self._threat_updates(request, parts[1])
        if len(parts) == 2 and request.method == "GET":
            return self._object(parts[1], request.query.get("fields", ""))
        if len(parts) == 2 and request.method == "POST":
            return self._react(parts[1], request)
        return _error("Unsupported request", "GraphMethodException", 100)

    def _threat_updates(self, request: Request, group: str) -> Response:
        if group != self.privacy_group:
            return _missing(group)
        if self.drop_after_pages is not None and self.pages_served >= self.drop_after_pages:
            return DROP
        q = request.query
        try:
            start = int(q["start_time"]) if q.get("start_time") else None
            stop = int(q["stop_time"]) if q.get("stop_time") else None
            limit = int(q["limit"]) if q.get("limit") else self.default_limit
            after = _cursor(q["after"]) if q.get("after") else None
        except (ValueError, KeyError):
            return _error("Invalid parameter", "OAuthException", 100)
        types = {t for t in q.get("types", "").split(",") if t}
        rows = sorted(self.updates.values(), key=lambda u: (u.time, u.seq))
        rows = [
            u
            for u in rows
            if (start is None or u.time >= start)
            and (stop is None or u.time < stop)
            and (not types or u.body.get("type") in types)
            and (after is None or (u.time, u.seq) > after)
        ]
        page, more = rows[:limit], len(rows) > limit
        self.pages_served += 1
        data = [self._served(u) for u in page]
        self.served.extend(u.id for u in page)
        paging: dict[str, Any] = {}
        if page:
            first, last = page[0], page[-1]
            paging["cursors"] = {
                "before": _encode(first.time, first.seq),
                "after": _encode(last.time, last.seq),
            }
            if more:
                params = dict(q)
                params["after"] = paging["cursors"]["after"]
                base = self.next_base or self.url
                path = f"/{VERSION}/{group}/threat_updates/"
                paging["next"] = f"{base}{path}?{urlencode(params)}"
        return Response(200, {"data": data, "paging": paging})

    def _served(self, u: Update) -> dict[str, Any]:
        body = json.loads(json.dumps(u.body))
        if "descriptors" in body and u.id in self.indicator_descriptors:
            body["descriptors"] = {
                "data": [self.descriptors[d].as_json() for d in self.indicator_descriptors[u.id]]
            }
        return body

    def _object(self, object_id: str, fields: str) -> Response:
        if object_id in self.indicator_descriptors and "descriptors" in fields:
            # As Graph does by default, the edge lists ids only.
            data = [{"id": d} for d in self.indicator_descriptors[object_id]]
            return Response(200, {"descriptors": {"data": data}, "id": object_id})
        return _missing(object_id)

    def _react(self, descriptor_id: str, request: Request) -> Response:
        descriptor = self.descriptors.get(descriptor_id)
        if descriptor is None:
            return _missing(descriptor_id)
        given = {**request.query, **request.form}
        for key, action in (("reactions", "added"), ("reactions_to_remove", "removed")):
            for reaction in filter(None, given.get(key, "").split(",")):
                apps = descriptor.reactions.setdefault(reaction, set())
                (apps.add if action == "added" else apps.discard)(APP_ID)
                self.reactions.append((descriptor_id, reaction, action))
        return Response(200, {"success": True})


def _encode(time: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{time}:{seq}".encode()).decode()


def _cursor(value: str) -> tuple[int, int]:
    time, _, seq = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
    return int(time), int(seq)
