"""The read-only TAXII 2.1 server: over HTTP, and read by taxii2-client from a real uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import stix2  # type: ignore[import-untyped]
import uvicorn
from fastapi.testclient import TestClient
from taxii2client.v21 import Collection, Server, as_pages  # type: ignore[import-untyped]

from cleanit.api.app import create_app
from cleanit.domain import stix
from cleanit.services import banks, exports
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.world import World, build_world

TAXII = "application/taxii+json;version=2.1"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COUNT = 7


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def fill(world: World) -> tuple[int, list[banks.EntryView]]:
    """A host-a bank with COUNT md5 entries, added a minute apart (one more, removed)."""
    ctx = world.ctx
    ticks = iter(START + timedelta(minutes=i) for i in range(100))
    ctx.clock = lambda: next(ticks)
    bank = banks.create_bank(ctx, world.p("legal"), name="Invented", labels=["entity:x"])
    entries = [
        banks.add_entry(ctx, world.p("legal"), bank.id, signal_type="md5", value=f"{i:032x}")
        for i in range(COUNT)
    ]
    gone = banks.add_entry(ctx, world.p("legal"), bank.id, signal_type="md5", value="f" * 32)
    banks.remove_entry(ctx, world.p("legal"), bank.id, gone.id)
    return bank.id, entries


def collection_url(bank_id: int) -> str:
    return f"/taxii2/api/collections/{stix.collection_uuid(bank_id)}/"


def test_taxii_endpoints_over_http(world: World, client: TestClient) -> None:
    bank_id, entries = fill(world)
    auth = world.auth("reviewer")
    r = client.get("/taxii2/", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == TAXII
    assert r.json()["api_roots"] == ["http://testserver/taxii2/api/"]
    assert client.get("/taxii2/api/", headers=auth).json()["versions"] == [TAXII]
    found = client.get("/taxii2/api/collections/", headers=auth).json()["collections"]
    assert [(c["id"], c["title"], c["can_read"], c["can_write"]) for c in found] == [
        (stix.collection_uuid(bank_id), "Invented", True, False)
    ]
    objects = collection_url(bank_id) + "objects/"
    r = client.get(objects, params={"limit": 3}, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == TAXII
    page = r.json()
    assert page["more"] is True and len(page["objects"]) == 3
    assert r.headers["X-TAXII-Date-Added-First"] == "2026-03-01T12:01:00.000000Z"
    assert r.headers["X-TAXII-Date-Added-Last"] == "2026-03-01T12:03:00.000000Z"
    r = client.get(objects, params={"limit": 3, "next": page["next"]}, headers=auth)
    assert [o["pattern"] for o in r.json()["objects"]] == [
        stix.pattern("md5", e.value) for e in entries[3:6]
    ]
    last = client.get(objects, params={"added_after": "2026-03-01T12:05:00.000000Z"}, headers=auth)
    assert last.json()["more"] is False and "next" not in last.json()
    assert [o["id"] for o in last.json()["objects"]] == [
        stix.indicator_id(bank_id, "md5", e.value) for e in entries[5:]
    ]
    one_id = stix.indicator_id(bank_id, "md5", entries[2].value)
    one = client.get(f"{objects}{one_id}/", headers=auth).json()
    assert [o["id"] for o in one["objects"]] == [one_id]
    nothing = client.get(objects, params={"added_after": "2027-01-01T00:00:00Z"}, headers=auth)
    assert nothing.json() == {"more": False}
    assert "X-TAXII-Date-Added-First" not in nothing.headers


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        (None, "/taxii2/", 401),
        (None, "/taxii2/api/collections/", 401),
        ("reporter", "/taxii2/api/collections/", 403),  # no banks:read
        ("other_admin", "COLLECTION/", 404),  # another organisation's bank
        ("other_admin", "COLLECTION/objects/", 404),
        ("reviewer", "/taxii2/api/collections/00000000-0000-0000-0000-000000000000/", 404),
        ("reviewer", "COLLECTION/objects/indicator--00000000-0000-0000-0000-000000000000/", 404),
        ("reviewer", "COLLECTION/objects/?added_after=yesterday", 400),
        ("reviewer", "COLLECTION/objects/?next=garbage", 400),
        ("reviewer", "COLLECTION/objects/?limit=0", 400),
        ("reviewer", "/taxii2/api/nothing-here/", 404),
    ],
)
def test_taxii_errors_are_taxii_error_messages(
    world: World, client: TestClient, who: str | None, path: str, status: int
) -> None:
    bank_id, _ = fill(world)
    url = path.replace("COLLECTION/", collection_url(bank_id))
    r = client.get(url, headers=world.auth(who) if who else {})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == TAXII
    body = r.json()
    assert body["http_status"] == str(status) and body["title"] and body["description"]
    # The rest of the API still answers with problem details.
    assert (
        client.get("/api/v1/banks/999999", headers=world.auth("reviewer"))
        .headers["content-type"]
        .startswith("application/problem+json")
    )


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_api(ctx: Context, settings: Settings) -> Iterator[str]:
    """The API served by a real uvicorn on a loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx, settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_taxii2_client_reads_a_bank(world: World, live_api: str) -> None:
    bank_id, entries = fill(world)
    token = world.tokens["reviewer"]
    server = Server(f"{live_api}/taxii2/", auth=Bearer(token))
    assert server.title == "cleanit TAXII server"
    (root,) = server.api_roots
    assert root.url == f"{live_api}/taxii2/api/"
    assert server.default.versions == [TAXII]
    (collection,) = root.collections
    assert collection.id == stix.collection_uuid(bank_id) and collection.title == "Invented"
    assert collection.can_read and not collection.can_write

    # Everything added after the second entry, three per request.
    after = exports.timestamp(entries[1].added_at)
    pages = list(as_pages(collection.get_objects, per_request=3, added_after=after))
    assert [len(p["objects"]) for p in pages] == [3, 2]
    fetched = [stix2.parse(o) for p in pages for o in p["objects"]]
    assert [o.pattern for o in fetched] == [stix.pattern("md5", e.value) for e in entries[2:]]
    assert [o.valid_from for o in fetched] == [e.added_at for e in entries[2:]]
    assert all(o.labels == ["entity:x"] for o in fetched)
    assert {o.created_by_ref for o in fetched} == {stix.identity_id(world.org_ids["host-a"])}

    # Everything, read again: the same ids (stable), and one object by its id.
    everything = collection.get_objects()
    assert [o["id"] for o in everything["objects"]] == [
        stix.indicator_id(bank_id, "md5", e.value) for e in entries
    ]
    one = collection.get_object(fetched[0].id)
    assert one["objects"][0]["pattern"] == fetched[0].pattern

    # Another organisation's client sees no collection and cannot read this one.
    other = Server(f"{live_api}/taxii2/", auth=Bearer(world.tokens["other_admin"]))
    assert other.api_roots[0].collections == []
    with pytest.raises(requests.HTTPError) as refused:
        Collection(
            f"{live_api}{collection_url(bank_id)}", auth=Bearer(world.tokens["other_admin"])
        ).get_objects()
    assert refused.value.response is not None
    assert refused.value.response.status_code == 404
