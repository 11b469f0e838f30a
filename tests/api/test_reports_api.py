"""Transparency reports over HTTP: staff reports in three formats, publishing, public page."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from cleanit.services.context import Context
from tests.services.report_fixture import build_year


def test_staff_report_formats_publishing_and_public_page(client: TestClient, ctx: Context) -> None:
    w = build_year(ctx).world
    q = {"period": "2026", "kind": "dsa"}
    r = client.get("/api/v1/reports", params=q, headers=w.auth("auditor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"]["label"] == "2026" and body["organisation"]["slug"] == "host-a"
    notices = next(s for s in body["sections"] if s["key"] == "notices")
    assert {"metric": "received", "dimension": "", "value": 3} in notices["rows"]

    r = client.get("/api/v1/reports", params={**q, "format": "csv"}, headers=w.auth("legal"))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"section": "decisions", "metric": "total", "dimension": "", "value": "3"} in rows

    r = client.get("/api/v1/reports", params={**q, "format": "html"}, headers=w.auth("admin"))
    assert r.headers["content-type"].startswith("text/html") and "<svg" in r.text

    tco = client.get(
        "/api/v1/reports", params={"period": "2026", "kind": "tco"}, headers=w.auth("auditor")
    )
    assert tco.status_code == 200 and tco.json()["kind"] == "tco"
    bad = client.get("/api/v1/reports", params={"period": "2026-Q9"}, headers=w.auth("auditor"))
    assert bad.status_code == 422

    assert client.get("/transparency/host-a").status_code == 404  # nothing published yet
    r = client.post(
        "/api/v1/reports/publications",
        json={"period": "2026", "kind": "dsa"},
        headers=w.auth("admin"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith("/transparency/host-a")
    page = client.get("/transparency/host-a")  # no authentication
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Org host-a" in page.text and "<svg" in page.text and "<script" not in page.text
    assert client.get("/transparency/host-b").status_code == 404
