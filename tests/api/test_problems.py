"""Bad input over HTTP: every refusal is an RFC 9457 problem naming the field, and nothing
is stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cleanit.adapters.db.models import Case, IdempotencyKey, Notice
from cleanit.domain.roles import OrgKind
from cleanit.services import organisations
from cleanit.services.context import Context
from tests.world import World, build_world

PROBLEM = "application/problem+json"
NOTICES = "/api/v1/notices"


def good_notice(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "host-a",
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "explanation": "It calls on people to join an invented violent group.",
        "locations": ["https://host-a.example.org/v/1"],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }
    body.update(changes)
    return body


def without(*keys: str) -> dict[str, Any]:
    body = good_notice()
    for k in keys:
        del body[k]
    return body


def assert_problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == PROBLEM
    body: dict[str, Any] = r.json()
    assert isinstance(body["type"], str) and body["type"].startswith("https://")
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, body
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    return body


def stored(ctx: Context) -> tuple[int, int]:
    with ctx.sessions() as s:
        notices = s.scalar(select(func.count()).select_from(Notice)) or 0
        cases = s.scalar(select(func.count()).select_from(Case)) or 0
        return notices, cases


@pytest.fixture
def provider(ctx: Context) -> None:
    """Just the hosting provider: the bad-input tests need no people (and stay fast)."""
    organisations.create_organisation(
        ctx, slug="host-a", name="Org host-a", kind=OrgKind.HOSTING_PROVIDER
    )


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def test_the_good_notice_is_accepted(ctx: Context, client: TestClient, provider: None) -> None:
    """The control: every refusal below comes from the one thing that was changed."""
    r = client.post(NOTICES, json=good_notice())
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["art16_complete"] is True
    assert stored(ctx) == (1, 1)


def _raw(content: bytes) -> Callable[[TestClient], Any]:
    return lambda c: c.post(NOTICES, content=content, headers={"Content-Type": "application/json"})


def _json(body: Any) -> Callable[[TestClient], Any]:
    return lambda c: c.post(NOTICES, json=body)


GOOD_BYTES = json.dumps(good_notice()).encode()

BAD_INPUT: list[tuple[str, Callable[[TestClient], Any], str]] = [
    ("malformed JSON", _raw(b'{"provider": "host-a", "locations": ['), "body"),
    ("truncated JSON", _raw(GOOD_BYTES[:-1]), "body"),
    ("invalid UTF-8", _raw(GOOD_BYTES.replace(b"invented", b"inv\xff\xfeented")), "body"),
    ("a JSON array, not an object", _json([good_notice()]), "body"),
    (
        "locations as a string",
        _json(good_notice(locations="https://host-a.example.org/v/1")),
        "locations",
    ),
    ("a location that is a number", _json(good_notice(locations=[42])), "locations.0"),
    ("good_faith 'maybe'", _json(good_notice(good_faith="maybe")), "good_faith"),
    ("explanation as a number", _json(good_notice(explanation=12345678901)), "explanation"),
    ("keywords as an object", _json(good_notice(keywords={"a": 1})), "keywords"),
    ("no explanation", _json(without("explanation")), "explanation"),
    ("no locations", _json(without("locations")), "locations"),
    ("no good_faith", _json(without("good_faith")), "good_faith"),
    ("no provider", _json(without("provider")), "provider"),
    ("no category", _json(without("category")), "category"),
    ("empty locations", _json(good_notice(locations=[])), "locations"),
    ("unknown category", _json(good_notice(category="STATEMENT_CATEGORY_MADE_UP")), "category"),
    ("unknown source_type", _json(good_notice(source_type="martian")), "source_type"),
    ("unknown extra field", _json(good_notice(urgent=True)), "urgent"),
    ("a typo of a field", _json(without("good_faith") | {"goodfaith": True}), "goodfaith"),
    ("ftp URL", _json(good_notice(locations=["ftp://host-a.example.org/v/1"])), "locations"),
    ("URL without host", _json(good_notice(locations=["https:///v/1"])), "locations"),
    (
        "URL with spaces",
        _json(good_notice(locations=["https://host-a.example.org/a b"])),
        "locations",
    ),
    (
        "URL over 2048 characters",
        _json(good_notice(locations=["https://host-a.example.org/" + "a" * 2100])),
        "locations",
    ),
    ("not a URL", _json(good_notice(locations=["host-a video one"])), "locations"),
    ("javascript: URL", _json(good_notice(locations=["javascript:alert(1)"])), "locations"),
    ("bad port", _json(good_notice(locations=["https://host-a.example.org:99999/v"])), "locations"),
    ("jurisdiction XX", _json(good_notice(jurisdiction="XX")), "jurisdiction"),
    ("jurisdiction outside the EU", _json(good_notice(jurisdiction="US")), "jurisdiction"),
    ("jurisdiction in lower case", _json(good_notice(jurisdiction="de")), "jurisdiction"),
    ("jurisdiction of three letters", _json(good_notice(jurisdiction="DEU")), "jurisdiction"),
    ("good faith not confirmed", _json(good_notice(good_faith=False)), "good_faith"),
    ("explanation too short", _json(good_notice(explanation="bad")), "explanation"),
    ("explanation too long", _json(good_notice(explanation="x" * 10_001)), "explanation"),
    (
        "NUL in the explanation",
        _json(good_notice(explanation="Invented\x00 group calling to violence.")),
        "explanation",
    ),
    (
        "NUL in a location",
        _json(good_notice(locations=["https://host-a.example.org/\x00"])),
        "locations",
    ),
    ("unknown provider", _json(good_notice(provider="nobody")), "provider"),
    ("bad e-mail", _json(good_notice(notifier_email="pat-at-example")), "notifier_email"),
    ("unknown keyword", _json(good_notice(keywords=["terror"])), "keywords"),
    (
        "a source the public cannot claim",
        _json(good_notice(source_type="referral_unit")),
        "source_type",
    ),
]


@pytest.mark.parametrize(
    ("send", "field"), [pytest.param(send, f, id=name) for name, send, f in BAD_INPUT]
)
def test_bad_notice_is_a_problem_and_stores_nothing(
    ctx: Context, client: TestClient, provider: None, send: Callable[[TestClient], Any], field: str
) -> None:
    body = assert_problem(send(client), 422, field)
    assert body["type"].rsplit("/", 1)[1] in {"invalid-request", "invalid-input"}
    assert stored(ctx) == (0, 0)


def test_missing_elements_are_all_named_at_once(
    ctx: Context, client: TestClient, provider: None
) -> None:
    body = assert_problem(
        client.post(NOTICES, json=without("explanation", "locations", "good_faith")), 422
    )
    assert {e["field"] for e in body["errors"]} == {"explanation", "locations", "good_faith"}
    assert stored(ctx) == (0, 0)


def _big_notice() -> bytes:
    # Well-formed, and ~100 KiB: refused for its size before anything else is looked at.
    return json.dumps(good_notice(keywords=["KEYWORD_TERRORIST_CONTENT"] * 4000)).encode()


def test_oversized_body_is_413(ctx: Context, client: TestClient, provider: None) -> None:
    content = _big_notice()
    assert len(content) > 100 * 1024 > client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    r = client.post(NOTICES, content=content, headers={"Content-Type": "application/json"})
    body = assert_problem(r, 413)
    assert body["type"].endswith("/payload-too-large")
    assert stored(ctx) == (0, 0)


def test_oversized_chunked_body_without_length_is_413(
    ctx: Context, client: TestClient, provider: None
) -> None:
    content = _big_notice()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(content), 4096):
            yield content[i : i + 4096]

    r = client.post(NOTICES, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.request.headers["transfer-encoding"] == "chunked"
    body = assert_problem(r, 413)
    assert body["type"].endswith("/payload-too-large")
    assert stored(ctx) == (0, 0)


def test_a_body_just_under_the_limit_is_read(
    ctx: Context, client: TestClient, provider: None
) -> None:
    """The limit refuses what is above it, not everything: a big but allowed chunked body
    reaches validation (and is refused there for its content, not its size)."""
    content = json.dumps(good_notice(keywords=["KEYWORD_TERRORIST_CONTENT"] * 1000)).encode()
    assert 20 * 1024 < len(content) < 64 * 1024
    r = client.post(NOTICES, content=iter([content]), headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "keywords")  # at most 20 keywords
    assert stored(ctx) == (0, 0)


def test_anonymous_notice_needs_name_and_email_unless_anonymous(
    ctx: Context, client: TestClient, provider: None
) -> None:
    no_contact = without("notifier_name", "notifier_email")
    assert_problem(client.post(NOTICES, json=no_contact), 422, "notifier_name")
    assert_problem(client.post(NOTICES, json=without("notifier_email")), 422, "notifier_email")
    assert_problem(
        client.post(NOTICES, json=good_notice(anonymous=True)), 422, "anonymous"
    )  # an anonymous report with a name is a contradiction
    assert stored(ctx) == (0, 0)
    r = client.post(NOTICES, json=no_contact | {"anonymous": True})
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["art16_complete"] is False
    assert receipt["acknowledgement_sent"] is False  # nobody to acknowledge to
    assert receipt["tracking_code"]
    assert stored(ctx) == (1, 1)


def test_idempotency_key_replays_and_refuses_reuse(
    ctx: Context, client: TestClient, world: World
) -> None:
    headers = world.auth("flagger") | {"Idempotency-Key": "notice-2024-001"}
    body = good_notice(source_type="trusted_flagger")
    first = client.post(NOTICES, json=body, headers=headers)
    again = client.post(NOTICES, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert stored(ctx) == (1, 1)
    changed = body | {"locations": ["https://host-a.example.org/v/2"]}
    r = client.post(NOTICES, json=changed, headers=headers)
    assert_problem(r, 409, "Idempotency-Key")
    assert stored(ctx) == (1, 1)
    # Keys belong to their caller: another caller's same key is a new notice, not a replay
    # of someone else's receipt.
    other = client.post(
        NOTICES,
        json=body | {"source_type": "referral_unit"},
        headers=world.auth("analyst") | {"Idempotency-Key": "notice-2024-001"},
    )
    assert other.status_code == 201, other.text
    assert other.json()["notice_id"] != first.json()["notice_id"]
    assert other.json()["tracking_code"] != first.json()["tracking_code"]
    assert stored(ctx)[0] == 2


def test_bad_idempotency_keys(ctx: Context, client: TestClient, world: World) -> None:
    body = good_notice(source_type="trusted_flagger")
    for key in ("k" * 201, ""):
        r = client.post(
            NOTICES, json=body, headers=world.auth("flagger") | {"Idempotency-Key": key}
        )
        assert_problem(r, 422, "Idempotency-Key")
    assert stored(ctx) == (0, 0)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing-here"),
        ("GET", "/api/v1/notices/x/y/z"),
        ("POST", "/api/v2/notices"),
        ("GET", "/no-such-page"),
    ],
)
def test_unknown_routes_are_404_problems(client: TestClient, method: str, path: str) -> None:
    body = assert_problem(client.request(method, path), 404)
    assert body["type"].endswith("/not-found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v1/notices"),
        ("PUT", "/api/v1/cases"),
        ("GET", "/api/v1/tokens"),
        ("PATCH", "/api/v1/webhook"),
    ],
)
def test_wrong_methods_are_405_problems(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path)
    body = assert_problem(r, 405)
    assert body["type"].endswith("/method-not-allowed")
    assert r.headers.get("allow")


def test_bad_bearer_token_is_401_with_challenge(
    ctx: Context, client: TestClient, provider: None
) -> None:
    for headers in (
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {},
    ):
        r = client.get("/api/v1/cases", headers=headers)
        body = assert_problem(r, 401)
        assert body["type"].endswith("/unauthenticated")
        assert r.headers["www-authenticate"] == "Bearer"
    # A bad token on a public endpoint is refused too, never silently treated as anonymous.
    r = client.post(NOTICES, json=good_notice(), headers={"Authorization": "Bearer forged"})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert stored(ctx) == (0, 0)


def test_wrong_password_is_401(client: TestClient, world: World) -> None:
    for email, password in (
        ("reviewer@host-a.example.org", "not the password"),
        ("nobody@host-a.example.org", "correct horse battery"),
    ):
        r = client.post("/api/v1/tokens", json={"email": email, "password": password})
        body = assert_problem(r, 401)
        assert body["detail"] == "wrong e-mail or password"  # same answer: no account oracle


def test_values_the_database_cannot_hold_are_422(client: TestClient, world: World) -> None:
    """Out-of-range ids and NUL characters outside the body are the client's error, not 500."""
    h = world.auth("reviewer")
    assert_problem(client.get("/api/v1/cases/99999999999", headers=h), 422)
    assert_problem(client.get("/api/v1/cases", params={"category": "a\x00b"}, headers=h), 422)
    assert_problem(client.get("/api/v1/organisations/a%00b/terms-clauses"), 422)
    assert_problem(client.get("/api/v1/cases/not-a-number", headers=h), 422, "case_id")
    assert_problem(client.get("/api/v1/cases", params={"limit": 0}, headers=h), 422, "limit")
    assert_problem(
        client.get("/api/v1/cases", params={"state": "nirvana"}, headers=h), 422, "state"
    )


def test_other_bodies_refuse_bad_input_too(ctx: Context, client: TestClient, world: World) -> None:
    """The same rules hold beyond notices (unknown fields, bad enums, missing elements)."""
    case_id = client.post(NOTICES, json=good_notice()).json()["case_ids"][0]
    h = world.auth("reviewer")
    decide = f"/api/v1/cases/{case_id}/decisions"
    assert_problem(
        client.post(decide, json={"action": "erase", "facts": "x" * 20}, headers=h), 422, "action"
    )
    assert_problem(client.post(decide, json={"action": "no_action"}, headers=h), 422, "facts")
    assert_problem(
        client.post(decide, json={"action": "no_action", "facts": "x" * 20, "why": 1}, headers=h),
        422,
        "why",
    )
    assert_problem(
        client.post("/api/v1/complaints", json={"grounds": "It is satire of a film."}),
        422,
        "tracking_code",
    )
    assert_problem(
        client.post(
            "/api/v1/complaints",
            json={"grounds": "It is satire of a film.", "statement_id": "nope", "code": "x"},
        ),
        422,
        "statement_id",
    )
    assert_problem(
        client.post(
            "/api/v1/organisations/host-a/users",
            headers=world.auth("admin"),
            json={
                "email": "new@host-a.example.org",
                "name": "New",
                "password": "short",
                "roles": ["reviewer"],
            },
        ),
        422,
        "password",
    )
    assert_problem(
        client.post(
            "/api/v1/organisations/host-a/users",
            headers=world.auth("admin"),
            json={
                "email": "new@host-a.example.org",
                "name": "New",
                "password": "long enough password",
                "roles": ["referral_analyst"],
            },
        ),
        422,
        "roles",
    )
    with ctx.sessions() as s:
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "open"
