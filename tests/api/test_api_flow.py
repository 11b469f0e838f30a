"""The whole notice-and-action path over HTTP only: sign in, notices from every kind of
notifier, the queue, assignment, assessment, decision, statement of reasons, complaint through
the statement's link, reversal — and user-supplied text coming back as data."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from cleanit.services.context import Context
from tests.world import PASSWORD, PEOPLE, World, build_world


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def login(client: TestClient, who: str) -> dict[str, str]:
    org = PEOPLE[who][0]
    r = client.post(
        "/api/v1/tokens", json={"email": f"{who}@{org}.example.org", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["roles"] == [role.value for role in PEOPLE[who][1]]
    return {"Authorization": f"Bearer {body['token']}"}


def notice_body(url: str, source: str = "end_user", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "host-a",
        "source_type": source,
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "keywords": ["KEYWORD_TERRORIST_CONTENT"],
        "explanation": "It calls on people to join an invented violent group.",
        "locations": [url],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }
    body.update(changes)
    return body


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def test_full_path_over_http(client: TestClient, world: World) -> None:
    tokens = {
        who: login(client, who)
        for who in ("reporter", "flagger", "authority", "analyst", "reviewer", "complaints")
    }
    base = "https://host-a.example.org/v/"

    # Notices from five kinds of notifier; the public one without any token.
    sent = {
        "public": (None, notice_body(base + "public")),
        "reporter": (
            "reporter",
            notice_body(base + "reporter", category="STATEMENT_CATEGORY_VIOLENCE"),
        ),
        "flagger": ("flagger", notice_body(base + "flagger", "trusted_flagger")),
        "analyst": ("analyst", notice_body(base + "analyst", "referral_unit", jurisdiction="FR")),
        "authority": ("authority", notice_body(base + "authority", "authority_notice")),
    }
    receipts: dict[str, dict[str, Any]] = {}
    for key, (who, body) in sent.items():
        r = client.post("/api/v1/notices", json=body, headers=tokens[who] if who else {})
        receipts[key] = ok(r, 201)
        assert r.headers["location"] == f"/api/v1/notices/{receipts[key]['notice_id']}"
        assert receipts[key]["acknowledgement_sent"] is True
        assert len(receipts[key]["case_ids"]) == 1
    case_of = {k: v["case_ids"][0] for k, v in receipts.items()}
    status = client.get(f"/api/v1/notice-status/{receipts['public']['tracking_code']}")
    assert ok(status)["status"] == "received"

    # The queue: most urgent first (authority, then referral and flagger by age, then public).
    rh = tokens["reviewer"]
    queue = ok(client.get("/api/v1/cases", headers=rh))
    assert queue["total"] == 5 and queue["limit"] == 50 and queue["offset"] == 0
    assert [c["priority"] for c in queue["items"]] == [10, 20, 20, 50, 50]
    assert [c["id"] for c in queue["items"]] == [
        case_of["authority"],
        case_of["flagger"],
        case_of["analyst"],
        case_of["public"],
        case_of["reporter"],
    ]
    # Pagination walks the same order without gaps or repeats.
    pages = []
    for offset in (0, 2, 4):
        page = ok(client.get("/api/v1/cases", params={"limit": 2, "offset": offset}, headers=rh))
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        pages += [c["id"] for c in page["items"]]
    assert pages == [c["id"] for c in queue["items"]]
    beyond = ok(client.get("/api/v1/cases", params={"offset": 10}, headers=rh))
    assert beyond["items"] == [] and beyond["total"] == 5
    # Filters.
    fr = ok(client.get("/api/v1/cases", params={"jurisdiction": "FR"}, headers=rh))
    assert [c["id"] for c in fr["items"]] == [case_of["analyst"]] and fr["total"] == 1
    violence = ok(
        client.get("/api/v1/cases", params={"category": "STATEMENT_CATEGORY_VIOLENCE"}, headers=rh)
    )
    assert [c["id"] for c in violence["items"]] == [case_of["reporter"]]

    # The reviewer takes the public notice's case.
    case_id = case_of["public"]
    assigned = ok(client.post(f"/api/v1/cases/{case_id}/assignment", json={}, headers=rh))
    assert assigned["state"] == "in_review"
    assert assigned["assignee_id"] == world.user_ids["reviewer"]
    mine = ok(
        client.get(
            "/api/v1/cases",
            headers=rh,
            params={"assignee_id": world.user_ids["reviewer"], "state": "in_review"},
        )
    )
    assert [c["id"] for c in mine["items"]] == [case_id]
    status = client.get(f"/api/v1/notice-status/{receipts['public']['tracking_code']}")
    assert ok(status)["status"] == "in review"

    # Assessment against the terms clause in force, read from the public registry.
    clauses = ok(client.get("/api/v1/organisations/host-a/terms-clauses"))
    clause = next(c for c in clauses if c["key"] == "violent-extremism")
    assessment = ok(
        client.post(
            f"/api/v1/cases/{case_id}/assessments",
            headers=rh,
            json={
                "finding": "incompatible_with_terms",
                "explanation": "Praises an invented violent group and calls on people to join it.",
                "terms_clause_version_id": clause["version_id"],
            },
        ),
        201,
    )
    assert assessment["status"] == "confirmed"

    # Decision.
    decision = ok(
        client.post(
            f"/api/v1/cases/{case_id}/decisions",
            headers=rh,
            json={
                "action": "remove",
                "facts": "The video shows the invented group's flag with a call to join.",
                "assessment_id": assessment["id"],
            },
        ),
        201,
    )
    assert decision["status"] == "in_force" and decision["ground"] == "incompatible_content"
    assert ok(client.get(f"/api/v1/cases/{case_id}", headers=rh))["case"]["state"] == "actioned"
    status = ok(client.get(f"/api/v1/notice-status/{receipts['public']['tracking_code']}"))
    assert status["status"] == "decided" and status["outcome"] == "remove"

    # The statement of reasons, as JSON and as text.
    st = ok(client.get(f"/api/v1/decisions/{decision['id']}/statement", headers=rh))
    assert st["decision_id"] == decision["id"]
    body = st["statement"]
    assert body["restriction"]["action"] == "remove"
    assert body["facts_and_circumstances"]["facts"].startswith("The video shows")
    assert "violent-extremism" in body["contractual_ground"]
    assert body["automated_means"]["automated_decision"] == "not_automated"
    text = client.get(f"/api/v1/statements/{st['id']}/text", headers=rh)
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == st["text"]
    assert base + "public" in text.text and "The video shows" in text.text

    # The content provider follows the link in the statement: reads it and complains, no
    # account needed.
    link = urlsplit(body["redress"]["internal_complaint"]["url"])
    query = parse_qs(link.query)
    statement_id, code = query["statement"][0], query["code"][0]
    assert statement_id == st["id"]
    as_provider = ok(client.get(f"/api/v1/statements/{statement_id}", params={"code": code}))
    assert as_provider["statement"] == body
    assert (
        client.get(f"/api/v1/statements/{statement_id}", params={"code": "guess"}).status_code
        == 401
    )
    complaint = ok(
        client.post(
            "/api/v1/complaints",
            json={
                "grounds": "This is satire about an invented film, not support for violence.",
                "statement_id": statement_id,
                "code": code,
                "contact_email": "uploader@users.example.net",
            },
        ),
        201,
    )
    assert complaint["decision_id"] == decision["id"]
    record = ok(client.get(f"/api/v1/cases/{case_id}", headers=rh))
    assert record["case"]["state"] == "under_complaint"

    # The complaints officer (who took no part) reverses the decision.
    ch = tokens["complaints"]
    listed = ok(client.get("/api/v1/complaints", params={"status": "open"}, headers=ch))
    assert [c["id"] for c in listed["items"]] == [complaint["complaint_id"]]
    assert listed["items"][0]["complainant_kind"] == "content_provider"
    # The reviewer who decided may not decide the complaint.
    r = client.post(
        f"/api/v1/complaints/{complaint['complaint_id']}/decision",
        headers=rh,
        json={"outcome": "reversed", "reasons": "I changed my mind about it."},
    )
    assert r.status_code == 403
    decided = ok(
        client.post(
            f"/api/v1/complaints/{complaint['complaint_id']}/decision",
            headers=ch,
            json={
                "outcome": "reversed",
                "reasons": "Satire of an invented film; no support for violence.",
            },
        )
    )
    assert decided["status"] == "decided" and decided["outcome"] == "reversed"
    assert decided["new_decision_id"] is not None

    # The case afterwards.
    record = ok(client.get(f"/api/v1/cases/{case_id}", headers=rh))
    assert record["case"]["state"] == "no_action"
    by_id = {d["id"]: d for d in record["decisions"]}
    assert by_id[decision["id"]]["status"] == "superseded"
    new = by_id[decided["new_decision_id"]]
    assert new["status"] == "in_force" and new["action"] == "no_action"
    assert new["replaces_id"] == decision["id"]
    assert [(c["status"], c["outcome"]) for c in record["complaints"]] == [("decided", "reversed")]
    kinds = [(p["kind"], p["action"]) for p in record["platform_actions"]]
    assert kinds == [("restrict", "remove"), ("reinstate", "reinstate")]
    # The reinstatement has its own statement, pointing at the decision it replaces.
    st2 = ok(client.get(f"/api/v1/decisions/{new['id']}/statement", headers=rh))
    assert st2["statement"]["replaces_decision_id"] == decision["id"]
    status = ok(client.get(f"/api/v1/notice-status/{receipts['public']['tracking_code']}"))
    assert status["status"] == "decided" and status["outcome"] == "no_action"
    # And the rest of the queue did not move.
    queue = ok(client.get("/api/v1/cases", params={"state": "open"}, headers=rh))
    assert queue["total"] == 4 and case_id not in [c["id"] for c in queue["items"]]


SCRIPT = '<script>alert("cleanit")</script><img src=x onerror=alert(1)>'


def test_user_text_is_returned_as_data_never_markup(client: TestClient, world: World) -> None:
    """What a notifier or reviewer types comes back byte for byte inside JSON (or plain
    text), with content types that no browser renders as HTML."""
    explanation = f"Calls to join an invented group. {SCRIPT} & 'quotes' \"too\" — ü ✓"
    url = "https://host-a.example.org/v/1?title=%3Cscript%3E"
    r = client.post(
        "/api/v1/notices",
        json=notice_body(url, explanation=explanation, notifier_name=f"Pat {SCRIPT}"[:200]),
    )
    receipt = ok(r, 201)
    assert r.headers["x-content-type-options"] == "nosniff"
    rh = world.auth("reviewer")
    n = client.get(f"/api/v1/notices/{receipt['notice_id']}", headers=rh)
    assert ok(n)["explanation"] == explanation
    assert n.json()["locations"] == [url]
    assert n.headers["x-content-type-options"] == "nosniff"
    case_id = receipt["case_ids"][0]
    record = ok(client.get(f"/api/v1/cases/{case_id}", headers=rh))
    assert record["notices"][0]["explanation"] == explanation
    assert record["notices"][0]["notifier_name"] == f"Pat {SCRIPT}"[:200]

    facts = f"The video says {SCRIPT} on screen."
    clause = world.clause_version_id
    a = ok(
        client.post(
            f"/api/v1/cases/{case_id}/assessments",
            headers=rh,
            json={
                "finding": "incompatible_with_terms",
                "explanation": f"Praise: {SCRIPT}",
                "terms_clause_version_id": clause,
            },
        ),
        201,
    )
    d = ok(
        client.post(
            f"/api/v1/cases/{case_id}/decisions",
            headers=rh,
            json={"action": "remove", "facts": facts, "assessment_id": a["id"]},
        ),
        201,
    )
    st = ok(client.get(f"/api/v1/decisions/{d['id']}/statement", headers=rh))
    assert st["statement"]["facts_and_circumstances"]["facts"] == facts
    text = client.get(f"/api/v1/statements/{st['id']}/text", headers=rh)
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["x-content-type-options"] == "nosniff"
    assert facts in text.text  # as typed: plain text is not HTML, nothing to escape
    # Nothing anywhere answers as HTML except the interactive docs page.
    for response in (r, n, text):
        assert "html" not in response.headers["content-type"]
