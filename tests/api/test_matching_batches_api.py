"""/api/v1/matching/content with a storage URL, and /api/v1/matching/batches, over HTTP
(real PostgreSQL, a local fake storage, invented images)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cleanit.adapters.fetch import HttpContentFetcher
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.services import banks, matching_batches
from cleanit.services.context import Context
from tests.fakes.storage_server import StorageServer
from tests.services.test_matching import COPY, ORIGINAL, OTHER, pdq_of
from tests.services.test_matching_batches import run_jobs, set_domains
from tests.world import World, build_world


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    with StorageServer() as server:
        yield server


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    ctx.fetcher = HttpContentFetcher(timeout=2.0, allow_private=True)
    w = build_world(ctx)
    set_domains(ctx, "host-a", ["127.0.0.1"])
    b = banks.create_bank(ctx, w.p("admin"), name="known images")
    banks.add_entry(ctx, w.p("admin"), b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    return w


def problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert [e["field"] for e in body.get("errors", [])] == [field], body
    return body


def test_match_content_by_storage_url(
    client: TestClient, world: World, storage: StorageServer
) -> None:
    r = client.post(
        "/api/v1/matching/content",
        json={
            "storage_url": storage.put("copy.jpg", COPY, "image/jpeg"),
            "url": "https://host-a.example.org/v/reupload",
        },
        headers=world.auth("reviewer"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pdq"] == pdq_of(COPY) and body["case_id"] is not None
    assert [m["bank_name"] for m in body["matches"]] == ["known images"]


def test_match_content_problems(client: TestClient, world: World, storage: StorageServer) -> None:
    auth = world.auth("reviewer")
    url = storage.put("a.png", ORIGINAL)
    neither = client.post("/api/v1/matching/content", json={"url": "https://x.test/"}, headers=auth)
    assert "exactly one of content_base64" in problem(neither, 422, "content_base64")["detail"]
    both = client.post(
        "/api/v1/matching/content",
        json={"storage_url": url, "content_base64": "aGVsbG8="},
        headers=auth,
    )
    problem(both, 422, "storage_url")
    missing = client.post(
        "/api/v1/matching/content",
        json={"storage_url": storage.url + "/o/gone?sig=SECRET"},
        headers=auth,
    )
    body = problem(missing, 502, "storage_url")
    assert body["type"].endswith("/fetch-failed") and "SECRET" not in missing.text
    assert "404 Not Found" in body["detail"]
    moved = client.post(
        "/api/v1/matching/content", json={"storage_url": storage.url + "/moved"}, headers=auth
    )
    assert "redirects are not followed" in problem(moved, 422, "storage_url")["detail"]
    foreign = client.post(
        "/api/v1/matching/content",
        json={"storage_url": url},
        headers=world.auth("other_reviewer"),
    )
    assert "no registered domains" in problem(foreign, 422, "storage_url")["detail"]
    corrupt = client.post(
        "/api/v1/matching/content",
        json={"storage_url": storage.put("broken.png", ORIGINAL[:100])},
        headers=auth,
    )
    problem(corrupt, 422, "storage_url")


def test_a_batch_over_http(client: TestClient, world: World, storage: StorageServer) -> None:
    auth = world.auth("reviewer")
    items = [
        {"storage_url": storage.put("0.png", ORIGINAL), "url": "https://host-a.example.org/v/0"},
        {"storage_url": storage.put("1.png", OTHER), "url": "https://host-a.example.org/v/1"},
        {"storage_url": storage.url + "/o/gone"},
    ]
    r = client.post("/api/v1/matching/batches", json={"items": items}, headers=auth)
    assert r.status_code == 202, r.text
    batch = r.json()
    assert r.headers["location"] == f"/api/v1/matching/batches/{batch['id']}"
    assert (batch["status"], batch["total"], batch["queued"]) == ("queued", 3, 3)
    assert run_jobs(world.ctx) == ["done", "done", "failed"]

    progress = client.get(r.headers["location"], headers=world.auth("legal")).json()
    assert (progress["status"], progress["done"], progress["failed"]) == ("done", 2, 1)
    page = client.get(r.headers["location"] + "/items", params={"limit": 2}, headers=auth).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    first, second = page["items"]
    assert first["matches"][0]["bank_name"] == "known images" and first["case_id"]
    assert second["matches"] == [] and second["status"] == "done"
    rest = client.get(r.headers["location"] + "/items", params={"offset": 2}, headers=auth).json()
    (failed,) = rest["items"]
    assert failed["position"] == 2 and failed["error_code"] == "fetch-failed"
    failed_only = client.get(
        r.headers["location"] + "/items", params={"status": "failed"}, headers=auth
    ).json()
    assert [i["position"] for i in failed_only["items"]] == [2]
    assert client.get(r.headers["location"], headers=world.auth("other_admin")).status_code == 404
    bad_status = client.get(
        r.headers["location"] + "/items", params={"status": "lost"}, headers=auth
    )
    problem(bad_status, 422, "status")


def test_a_bad_batch_names_its_items(client: TestClient, world: World) -> None:
    auth = world.auth("reviewer")
    items = [
        {"storage_url": "http://127.0.0.1/o/ok.png"},
        {"storage_url": "https://elsewhere.example.net/o/1.png"},
        {"storage_url": "http://127.0.0.1/o/ok.png", "url": "nope"},
    ]
    r = client.post("/api/v1/matching/batches", json={"items": items}, headers=auth)
    body = problem(r, 422)
    # Every bad item is named in `errors`, each with its own message.
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert list(errors) == ["items[1].storage_url", "items[2].url"]
    assert errors["items[1].storage_url"].startswith("elsewhere.example.net is not one of")
    assert "items[1].storage_url: elsewhere.example.net is not one of" in body["detail"]
    too_many = client.post(
        "/api/v1/matching/batches",
        json={"items": [items[0]] * (matching_batches.MAX_BATCH_ITEMS + 1)},
        headers=auth,
    )
    assert too_many.status_code in (413, 422)  # the body limit or the list limit
    unknown = client.post(
        "/api/v1/matching/batches",
        json={"items": [{"storage_url": "http://127.0.0.1/o", "colour": "red"}]},
        headers=auth,
    )
    problem(unknown, 422, "items.0.colour")
