"""Operations endpoints, metrics, the OpenAPI document and security headers."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cleanit.adapters.db.engine import make_engine, make_session_factory
from cleanit.api.app import create_app
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.world import World, build_world

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_with_the_database_up(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


@pytest.fixture
def client_without_database(ctx: Context, settings: Settings) -> Iterator[TestClient]:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/cleanit")
    down = replace(ctx, sessions=make_session_factory(engine))
    try:
        with TestClient(create_app(down, settings)) as c:
            yield c
    finally:
        engine.dispose()


def test_readyz_and_health_with_the_database_down(client_without_database: TestClient) -> None:
    c = client_without_database
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert c.get("/healthz").status_code == 200  # alive, just not ready
    # Requests that need the database say so as a problem, not as a crash.
    r = c.get("/api/v1/legal-provisions")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"]


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(1))))
            out[labels] = float(m.group(2))
    return out


def test_metrics_count_requests_by_route_template(client: TestClient, world: World) -> None:
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    h = world.auth("reviewer")
    assert client.get("/api/v1/cases/424242", headers=h).status_code == 404
    assert client.get("/api/v1/cases/434343", headers=h).status_code == 404
    assert client.get("/api/v1/no/such/route/515151").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE cleanit_http_requests_total counter" in r.text
    assert "cleanit_http_request_seconds_bucket" in r.text
    counts = _samples(r.text, "cleanit_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 3
    # Labels are route templates, never raw ids or unknown paths (bounded cardinality).
    by_case = {k: v for k, v in counts.items() if dict(k)["route"].endswith("/cases/{case_id}")}
    assert list(by_case.values()) == [2] and dict(next(iter(by_case)))["status"] == "404"
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not re.search(r"424242|434343|515151", r.text)


def _api_routes(client: TestClient) -> set[tuple[str, str]]:
    try:
        from fastapi.routing import iter_route_contexts

        routes: Any = iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - older FastAPI
        routes = client.app.routes  # type: ignore[attr-defined]
    found = set()
    for r in routes:
        path = getattr(r, "path", "")
        if not path.startswith("/api/v1") or not getattr(r, "include_in_schema", True):
            continue
        for method in getattr(r, "methods", None) or ():
            if method != "HEAD":
                found.add((method.lower(), path))
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_documents_every_endpoint_and_its_errors(client: TestClient) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert re.fullmatch(r"3\.\d+\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    # Every reference resolves.
    for ref in set(_refs(spec)):
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]
    bearer = [
        s for s in spec["components"]["securitySchemes"].values() if s.get("scheme") == "bearer"
    ]
    assert bearer, "the bearer token scheme is documented"

    routes = _api_routes(client)
    assert len(routes) >= 30
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    missing = routes - documented
    assert not missing, f"undocumented endpoints: {sorted(missing)}"
    operation_ids = []
    for method, path in sorted(routes):
        op = spec["paths"][path][method]
        operation_ids.append(op["operationId"])
        assert op.get("tags"), (method, path)
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), (method, path)
        # Errors are documented as problem details, as they are sent.
        for code in ("422", "default"):
            content = op["responses"][code]["content"]
            assert list(content) == ["application/problem+json"], (method, path, code)
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)
    assert len(operation_ids) == len(set(operation_ids))
    # What the spec says about an error is what the API sends.
    r = client.get("/api/v1/cases")
    assert r.status_code == 401
    assert set(problem["required"]) <= set(r.json())


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/api/v1/openapi.json", 200),
        ("GET", "/api/v1/docs", 200),
        ("GET", "/api/v1/legal-provisions", 200),
        ("GET", "/api/v1/cases", 401),
        ("GET", "/api/v1/nowhere", 404),
        ("DELETE", "/api/v1/notices", 405),
        ("POST", "/api/v1/notices", 422),
    ],
)
def test_security_headers_on_every_kind_of_answer(
    client: TestClient, method: str, path: str, status: int
) -> None:
    r = client.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (path, name)


def test_security_headers_on_a_refused_oversized_body(client: TestClient) -> None:
    r = client.post(
        "/api/v1/notices",
        content=b"{" + b" " * (100 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)
