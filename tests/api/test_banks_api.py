"""/api/v1/banks and /api/v1/matching over HTTP: shapes, problems, the flow to a case."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from cleanit.adapters.db.models import SeenContent
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.services.context import Context
from tests.world import World, build_world

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    return build_world(ctx)


def png(seed: int) -> bytes:
    img = Image.new("RGB", (200, 160), (30 * seed % 255, 90, 160))
    draw = ImageDraw.Draw(img)
    for i in range(8):
        y = (i * seed * 17) % 120
        draw.ellipse((i * 20, y, i * 20 + 40, y + 40), fill=(255, 255 - 30 * i, 20 * i))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def problem(r: Any, status: int, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert [e["field"] for e in body.get("errors", [])][:1] == [field], body
    return body


def test_bank_crud_over_http(client: TestClient, world: World) -> None:
    admin = world.auth("admin")
    r = client.post(
        "/api/v1/banks",
        json={"name": "logos", "labels": ["entity:invented-group"], "thresholds": {"pdq": 24}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    bank = r.json()
    assert bank["thresholds"]["pdq"] == 24 and bank["mode"] == "review" and bank["enabled"]
    assert [
        b["id"] for b in client.get("/api/v1/banks", headers=world.auth("reviewer")).json()
    ] == [bank["id"]]
    assert client.get("/api/v1/banks", headers=world.auth("other_admin")).json() == []
    r = client.get(f"/api/v1/banks/{bank['id']}", headers=world.auth("other_admin"))
    assert r.status_code == 404
    r = client.patch(f"/api/v1/banks/{bank['id']}", json={"enabled": False}, headers=admin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = client.patch(f"/api/v1/banks/{bank['id']}", json={"mode": "auto_action"}, headers=admin)
    assert "needs the action to take" in problem(r, 422, "mode")["detail"]
    auto = {
        "mode": "auto_action",
        "auto_action": "disable_access",
        "auto_terms_clause_version_id": world.clause_version_id,
    }
    r = client.patch(
        f"/api/v1/banks/{bank['id']}",
        json={**auto, "auto_action": "suspend_account"},
        headers=admin,
    )
    assert "item-level action" in problem(r, 422, "auto_action")["detail"]
    r = client.patch(f"/api/v1/banks/{bank['id']}", json=auto, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["mode"], r.json()["auto_action"]) == ("auto_action", "disable_access")
    assert r.json()["auto_terms_clause_version_id"] == world.clause_version_id
    r = client.post("/api/v1/banks", json={"name": "auto2", **auto}, headers=admin)
    assert r.status_code == 201 and r.json()["auto_action"] == "disable_access", r.text
    r = client.patch(f"/api/v1/banks/{bank['id']}", json={"mode": "review"}, headers=admin)
    assert (r.json()["mode"], r.json()["auto_action"]) == ("review", None)
    problem(
        client.patch(f"/api/v1/banks/{bank['id']}", json={"thresholds": {"md5": 3}}, headers=admin),
        422,
        "thresholds",
    )
    problem(
        client.post("/api/v1/banks", json={"name": "x", "labels": ["red"]}, headers=admin),
        422,
        "labels",
    )


def test_entries_and_import_over_http(client: TestClient, world: World) -> None:
    admin = world.auth("admin")
    bank_id = client.post("/api/v1/banks", json={"name": "b"}, headers=admin).json()["id"]
    entries = f"/api/v1/banks/{bank_id}/entries"
    body = problem(
        client.post(entries, json={"signal_type": "md5", "value": MD5[:30]}, headers=admin),
        422,
        "value",
    )
    assert "exactly 32" in body["detail"]
    problem(
        client.post(entries, json={"signal_type": "tlsh", "value": MD5}, headers=admin),
        422,
        "signal_type",
    )
    r = client.post(entries, json={"signal_type": "md5", "value": MD5.upper()}, headers=admin)
    assert r.status_code == 201 and r.json()["value"] == MD5
    entry_id = r.json()["id"]
    r = client.post(
        f"/api/v1/banks/{bank_id}/imports",
        json={"filename": "x.csv", "csv": f"md5,{MD5[:5]}\nurl,https://example.org/a\n"},
        headers=admin,
    )
    assert "line 1 (value)" in problem(r, 422, "csv")["detail"]
    assert client.get(entries, headers=admin).json()["total"] == 1  # nothing imported
    r = client.post(
        f"/api/v1/banks/{bank_id}/imports",
        json={"filename": "x.csv", "csv": "url,https://example.org/a,behaviour:recruitment\n"},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["added"] == 1
    assert client.delete(f"{entries}/{entry_id}", headers=admin).json()["removed_at"]
    page = client.get(entries, headers=world.auth("auditor")).json()
    assert page["total"] == 1 and page["items"][0]["source"] == "import:x.csv"


def test_lookup_and_content_matching_over_http(client: TestClient, world: World) -> None:
    admin, reviewer = world.auth("admin"), world.auth("reviewer")
    bank_id = client.post("/api/v1/banks", json={"name": "b"}, headers=admin).json()["id"]
    image = png(3)
    content = {"content_base64": base64.b64encode(image).decode()}
    hashed = client.post("/api/v1/matching/content", json=content, headers=reviewer).json()
    assert hashed["matches"] == [] and hashed["case_id"] is None and hashed["pdq"]
    for signal_type in ("pdq", "md5"):
        r = client.post(
            f"/api/v1/banks/{bank_id}/entries",
            json={"signal_type": signal_type, "value": hashed[signal_type]},
            headers=admin,
        )
        assert r.status_code == 201
    r = client.post(
        "/api/v1/matching/lookup",
        json={"signal_type": "md5", "hashes": [hashed["md5"], MD5]},
        headers=reviewer,
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [len(x["matches"]) for x in results] == [1, 0]
    assert results[0]["matches"][0]["bank_id"] == bank_id
    problem(
        client.post(
            "/api/v1/matching/lookup",
            json={"signal_type": "md5", "hashes": [MD5, "zz"]},
            headers=reviewer,
        ),
        422,
        "hashes[1]",
    )
    problem(
        client.post(
            "/api/v1/matching/lookup",
            json={"signal_type": "crc", "hashes": [MD5]},
            headers=reviewer,
        ),
        422,
        "signal_type",
    )
    r = client.post(
        "/api/v1/matching/content",
        json=content | {"url": "https://host-a.example.org/v/upload-9"},
        headers=reviewer,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert {m["signal_type"] for m in result["matches"]} == {"pdq", "md5"}
    case = client.get(f"/api/v1/cases/{result['case_id']}", headers=reviewer)
    assert case.status_code == 200
    problem(
        client.post("/api/v1/matching/content", json={"content_base64": "@@@"}, headers=reviewer),
        422,
        "content_base64",
    )
    problem(
        client.post("/api/v1/matching/content", json={"content_base64": ""}, headers=reviewer),
        422,
        "content_base64",
    )
    problem(
        client.post(
            "/api/v1/matching/content", json=content | {"url": "ftp://x"}, headers=reviewer
        ),
        422,
        "url",
    )
    too_big = {"content_base64": base64.b64encode(b"\x00" * 70_000).decode()}
    assert (
        client.post("/api/v1/matching/content", json=too_big, headers=reviewer).status_code == 413
    )


def test_large_import_and_nul_characters(client: TestClient, world: World) -> None:
    admin = world.auth("admin")
    bank_id = client.post("/api/v1/banks", json={"name": "big"}, headers=admin).json()["id"]
    lines = "".join(f"md5,{i:032x}\n" for i in range(1000))  # ~38 kB: above 20k per string
    r = client.post(
        f"/api/v1/banks/{bank_id}/imports",
        json={"filename": "big.csv", "csv": lines},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["added"] == 1000, r.text
    r = client.post(
        "/api/v1/matching/content",
        json={"content_base64": "AAAA", "url": "https://host-a.example.org/\x00"},
        headers=world.auth("reviewer"),
    )
    problem(r, 422, "url")


def test_hashing_content_over_http_stores_and_matches_nothing(
    client: TestClient, world: World
) -> None:
    from cleanit.demo.images import KNOWN_TEXT, jpeg, known

    reviewer = world.auth("reviewer")
    image = base64.b64encode(jpeg(known("blue-squares"))).decode()
    r = client.post("/api/v1/matching/hashes", json={"content_base64": image}, headers=reviewer)
    assert r.status_code == 200, r.text
    signals = {s["signal_type"]: s for s in r.json()["signals"]}
    assert set(signals) == {"md5", "sha256", "pdq"}
    assert len(signals["pdq"]["hash"]) == 64 and len(signals["pdq"]["dihedral"]) == 7
    text = base64.b64encode(KNOWN_TEXT.encode()).decode()
    r = client.post(
        "/api/v1/matching/hashes",
        json={"content_base64": text, "content_type": "text/plain"},
        headers=reviewer,
    )
    kinds = [s["signal_type"] for s in r.json()["signals"]]
    assert kinds == ["md5", "sha256", "text_minhash"]
    with world.ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SeenContent)) == 0
    bad = client.post("/api/v1/matching/hashes", json={"content_base64": "%%%"}, headers=reviewer)
    assert problem(bad, 422, "content_base64")["detail"] == "content_base64 is not valid base64"
    both = client.post(
        "/api/v1/matching/hashes",
        json={"content_base64": image, "storage_url": "https://x.example.org/a"},
        headers=reviewer,
    )
    assert "exactly one" in problem(both, 422, "storage_url")["detail"]
