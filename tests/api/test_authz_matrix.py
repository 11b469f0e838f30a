"""Who may call what: every /api/v1 endpoint × every kind of person, over HTTP.

One world is built for the module (organisations host-a, host-b, iru, authority, flagger,
research and a person for every role), with a real target behind every endpoint: a case at
host-a opened by the referral unit's notice, its assessment, its decision in force with a
statement of reasons and a platform action, and a complaint against it. Endpoints that change
something get a fresh target for each call, so "allowed" really means the change succeeded.

Outcome classes: 2xx allowed, 403 the role may not do this (checked before anything is looked
up, so it reveals nothing), 404 another organisation's data (its existence is not revealed:
for outsiders the answer equals the answer for an id that does not exist), 401 no token where
one is needed, 422 the four-eyes rule (the author cannot be the second person). A route under
/api/v1 that is not in the matrix fails ``test_every_api_route_is_in_the_matrix``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from cleanit.adapters.db.engine import make_session_factory
from cleanit.adapters.db.models import PlatformAction, PreservationHold, Statement
from cleanit.adapters.mail import MailboxMailer
from cleanit.adapters.passwords import Passwords
from cleanit.api.app import create_app
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.banks import validate_entry
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.exchanges import FeedRecord
from cleanit.domain.notices import Category, SourceType
from cleanit.domain.orders import InabilityReason
from cleanit.domain.roles import OrgKind, Role
from cleanit.services import (
    assessments,
    banks,
    complaints,
    decisions,
    exchanges,
    investigations,
    matching_batches,
    notices,
    orders,
    organisations,
    platform,
)
from cleanit.services.authz import principal_for_user
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.conftest import TABLES, RecordingWebhooks
from tests.world import PASSWORD, PEOPLE, World, build_world, notice

OK, CREATED = 200, 201
UNAUTH, FORBIDDEN, NOT_FOUND, PRINCIPLE = 401, 403, 404, 422

ANON = "anonymous"
# One more person, so that host-b also has someone with host-a legal's role: approving or
# rejecting host-a's decisions must then fail with 404, not only with 403.
EXTRA_PEOPLE: dict[str, tuple[str, list[Role]]] = {"other_legal": ("host-b", [Role.LEGAL])}
EVERYONE = (*PEOPLE, *EXTRA_PEOPLE, ANON)

HOST_A_STAFF = ("reviewer", "reviewer2", "legal", "legal2", "complaints", "admin", "auditor")
HOST_A = (*HOST_A_STAFF, "reporter")
HOST_B = ("other_reviewer", "other_admin", "other_complaints", "other_legal")
IRU = ("analyst", "analyst2")
DECIDERS = ("reviewer", "reviewer2", "legal", "legal2")
REGISTRARS = ("legal", "legal2", "admin", "other_admin", "other_legal")
NOTIFIERS = ("reporter", "analyst", "analyst2", "authority", "flagger", ANON)
# Provider staff notify their own platform (own initiative) or others as members of the public.
STAFF_NOTIFIERS = ("reviewer", "reviewer2", "legal", "legal2", "other_reviewer", "other_legal")
# Own-organisation staff with audit:read or reports:read (transparency reports).
REPORT_READERS = (
    "auditor",
    "researcher",
    "legal",
    "legal2",
    "admin",
    "other_admin",
    "other_legal",
)
EVALUATION_READERS = (
    "auditor",
    "researcher",
    "legal",
    "legal2",
    "admin",
    "other_admin",
    "other_legal",
)
# Neither host-a nor the referral unit that notified the base case: for them, a real target
# must look exactly like one that does not exist.
OUTSIDERS = frozenset({*HOST_B, "authority", "flagger", "researcher", ANON})

MISSING_INT = 10**9
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


def outcomes(default: int, *groups: tuple[Iterable[str], int]) -> dict[str, int]:
    table = dict.fromkeys(EVERYONE, default)
    for people, status in groups:
        for who in people:
            assert who in table, who
            table[who] = status
    return table


def staff(default: int = FORBIDDEN, *groups: tuple[Iterable[str], int]) -> dict[str, int]:
    """Endpoints that need a token: anonymous gets 401."""
    return outcomes(default, ([ANON], UNAUTH), *groups)


# --------------------------------------------------------------------------- the world


@dataclass
class Env:
    world: World
    client: TestClient
    app: FastAPI
    case_id: int = 0
    other_case_id: int = 0
    notice_id: str = ""
    tracking_code: str = ""
    assessment_id: int = 0
    decision_id: int = 0
    statement_id: str = ""
    statement_code: str = ""
    complaint_id: str = ""
    platform_action_id: str = ""
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def ctx(self) -> Context:
        return self.world.ctx

    def n(self) -> int:
        return next(self.counter)

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == ANON else self.world.auth(who)

    # Fresh targets, made through the services (the call under test is the HTTP one).

    def fresh_case(self) -> int:
        """A host-a case opened by the referral unit's notice (iru may see it)."""
        url = f"https://host-a.example.org/v/fresh-{self.n()}"
        draft = notice(url, source=SourceType.REFERRAL_UNIT)
        return notices.receive_notice(self.ctx, self.world.p("analyst"), draft).case_ids[0]

    def terms_assessment(self, case_id: int, who: str = "reviewer") -> int:
        return assessments.assess(
            self.ctx,
            self.world.p(who),
            case_id,
            AssessmentRequest(
                finding=Finding.INCOMPATIBLE_WITH_TERMS,
                explanation="Praises an invented violent group.",
                terms_clause_version_id=self.world.clause_version_id,
            ),
        ).id

    def decided(self) -> tuple[int, str, str]:
        """A restrictive decision in force: (decision id, statement id, complaint code)."""
        case_id = self.fresh_case()
        d = decisions.decide_case(
            self.ctx,
            self.world.p("reviewer"),
            case_id,
            DecisionRequest(
                action=Action.REMOVE,
                facts="The video shows the invented group's flag with a call to join.",
                assessment_id=self.terms_assessment(case_id),
            ),
        )
        with self.ctx.sessions() as s:
            st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
            assert st is not None
            link = st.body["redress"]["internal_complaint"]["url"]
            return d.id, str(st.public_id), parse_qs(urlsplit(link).query)["code"][0]

    def pending_wide_decision(self) -> int:
        """An account suspension proposed by ``legal``, waiting for a second person."""
        case_id = self.fresh_case()
        return decisions.decide_case(
            self.ctx,
            self.world.p("legal"),
            case_id,
            DecisionRequest(
                action=Action.SUSPEND_ACCOUNT,
                facts="Third upload of the same invented material this week.",
                assessment_id=self.terms_assessment(case_id, "legal"),
                justification="Removing single items has not stopped the repeated uploads.",
            ),
        ).id

    def proposed_illegality(self) -> int:
        """A finding of illegality by ``analyst``, waiting for its second person."""
        return assessments.assess(
            self.ctx,
            self.world.p("analyst"),
            self.fresh_case(),
            AssessmentRequest(
                finding=Finding.ILLEGAL,
                explanation="Public provocation to an invented terrorist offence.",
                legal_provision_id=self.world.provision_id,
                exemption_considered=True,
            ),
        ).id

    def open_complaint(self) -> str:
        _, statement_id, code = self.decided()
        return complaints.lodge_complaint(
            self.ctx,
            grounds="This is satire about an invented film.",
            statement_id=uuid.UUID(statement_id),
            code=code,
        ).complaint_id


@pytest.fixture(scope="module")
def env(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    """Module-wide world: building it per cell would take ~1 s × 600 cells."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    tmp: Path = tmp_path_factory.mktemp("matrix")
    ctx = Context(
        sessions=make_session_factory(engine),
        mailer=MailboxMailer(tmp / "mailbox"),
        webhooks=RecordingWebhooks(),
        base_url="http://testserver",
        passwords=Passwords(time_cost=1, memory_cost=1024),
    )
    world = build_world(ctx)
    for who, (org, roles) in EXTRA_PEOPLE.items():
        user = organisations.create_user(
            ctx,
            org_slug=org,
            email=f"{who}@{org}.example.org",
            name=who,
            password=PASSWORD,
            roles=roles,
        )
        world.user_ids[who] = user.id
        world.tokens[who] = organisations.issue_token(
            ctx, org_slug=org, name=who, roles=roles, user_id=user.id
        ).token
        with ctx.sessions() as s:
            world.principals[who] = principal_for_user(s, user.id)
    # Webhook targets are checked for SSRF by resolving names; that is not what is tested here.
    settings = Settings(
        database_url=database_url,
        data_dir=tmp,
        max_body_bytes=64 * 1024,
        allow_private_webhook_targets=True,
    )
    app = create_app(ctx, settings)
    with TestClient(app) as client:
        e = Env(world=world, client=client, app=app)
        # The base case: notified by the referral unit (category and jurisdiction unique to
        # the base targets, so list filters find them however many fresh cases exist).
        base = notices.receive_notice(
            ctx,
            world.p("analyst"),
            notice(
                "https://host-a.example.org/v/base",
                source=SourceType.REFERRAL_UNIT,
                category=Category.VIOLENCE,
                jurisdiction="FR",
            ),
        )
        e.case_id, e.notice_id, e.tracking_code = (
            base.case_ids[0],
            base.notice_id,
            base.tracking_code,
        )
        e.assessment_id = e.terms_assessment(e.case_id)
        e.decision_id = decisions.decide_case(
            ctx,
            world.p("reviewer"),
            e.case_id,
            DecisionRequest(
                action=Action.REMOVE,
                facts="The video shows the invented group's flag with a call to join.",
                assessment_id=e.assessment_id,
            ),
        ).id
        with ctx.sessions() as s:
            st = s.scalar(select(Statement).where(Statement.decision_id == e.decision_id))
            pa = s.scalar(select(PlatformAction).where(PlatformAction.decision_id == e.decision_id))
            assert st is not None and pa is not None
            e.statement_id, e.platform_action_id = str(st.public_id), str(pa.public_id)
            link = st.body["redress"]["internal_complaint"]["url"]
            e.statement_code = parse_qs(urlsplit(link).query)["code"][0]
        e.complaint_id = complaints.lodge_complaint(
            ctx,
            grounds="This is satire about an invented film.",
            statement_id=uuid.UUID(e.statement_id),
            code=e.statement_code,
        ).complaint_id
        # A case the referral unit has nothing to do with (a member of the public's notice).
        e.other_case_id = notices.receive_notice(
            ctx,
            world.p("reporter"),
            notice(
                "https://host-a.example.org/v/other", category=Category.VIOLENCE, jurisdiction="FR"
            ),
        ).case_ids[0]
        yield e


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # the route template, exactly as the app declares it
    expect: dict[str, int]
    path: Callable[[Env], str]  # the concrete path; may create a fresh target
    body: Callable[[Env, str], dict[str, Any]] | None = None
    params: Callable[[Env], dict[str, Any]] | None = None
    missing: str | None = None  # the same path with an id that does not exist
    variant: str = ""
    # For list endpoints: does the answer contain host-a's base target, and who may see it.
    shows_base: Callable[[Env, Any], bool] | None = None
    sees_base: frozenset[str] = frozenset()
    outsiders: frozenset[str] = OUTSIDERS

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}" + (f" [{self.variant}]" if self.variant else "")


def notice_body(e: Env, who: str) -> dict[str, Any]:
    source = {
        "analyst": "referral_unit",
        "analyst2": "referral_unit",
        "authority": "authority_notice",
        "flagger": "trusted_flagger",
        **dict.fromkeys(("reviewer", "reviewer2", "legal", "legal2"), "own_initiative"),
    }.get(who, "end_user")
    return {
        "provider": "host-a",
        "source_type": source,
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "explanation": "It calls on people to join an invented violent group.",
        "locations": [f"https://host-a.example.org/v/new-{e.n()}"],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }


def assessment_body(e: Env, who: str) -> dict[str, Any]:
    if who in (*IRU, "authority"):
        return {
            "finding": "illegal",
            "explanation": "Public provocation to an invented terrorist offence.",
            "legal_provision_id": e.world.provision_id,
            "exemption_considered": True,
        }
    return {
        "finding": "incompatible_with_terms",
        "explanation": "Praises an invented violent group.",
        "terms_clause_version_id": e.world.clause_version_id,
    }


def ids(payload: Any) -> set[Any]:
    items = payload["items"] if isinstance(payload, dict) else payload
    return {item["id"] for item in items}


def complaint_body(e: Env, who: str) -> dict[str, Any]:
    _, statement_id, code = e.decided()
    return COMPLAINT | {"statement_id": statement_id, "code": code}


NO_ACTION = {"action": "no_action", "facts": "Documentary footage; no praise of violence."}
REJECT = {"reason": "Not proportionate for a first upload."}
UPHOLD = {"outcome": "upheld", "reasons": "The flag and the call to join are plainly there."}
COMPLAINT = {"grounds": "This is satire about an invented film."}

# Banks (hash lists) and matching. Permissions: banks:manage (legal, org_admin, referral
# analysts), banks:read (those, reviewers and auditors), matching:run (provider staff who
# decide, and org admins for their platform's uploads).
BANK_MANAGERS_A = ("legal", "legal2", "admin")
BANK_MANAGERS_ELSEWHERE = ("other_admin", "other_legal", "analyst", "analyst2")
BANK_READERS_A = (*BANK_MANAGERS_A, "reviewer", "reviewer2", "auditor")
BANK_READERS_ELSEWHERE = (*BANK_MANAGERS_ELSEWHERE, "other_reviewer", "researcher")
MATCHERS = (*DECIDERS, "admin", "other_reviewer", "other_admin", "other_legal")
_BASE_BANK: dict[int, int] = {}
# A tiny invented PNG (4x4 grey), base64.
TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAAAAACMmsGiAAAAEElEQVR4nGNsYGBgYGJAIQAJ5ACIUhZOXwAAAABJ"
    "RU5ErkJggg=="
)


def fresh_bank(e: Env) -> int:
    return banks.create_bank(e.ctx, e.world.p("admin"), name=f"bank-{e.n()}").id


def base_bank(e: Env) -> int:
    if id(e) not in _BASE_BANK:
        _BASE_BANK[id(e)] = fresh_bank(e)
    return _BASE_BANK[id(e)]


def fresh_entry(e: Env) -> tuple[int, int]:
    bank_id = fresh_bank(e)
    entry = banks.add_entry(
        e.ctx, e.world.p("admin"), bank_id, signal_type="md5", value=f"{e.n():032x}"
    )
    return bank_id, entry.id


class OneRecordFeed:
    """A ThreatExchange feed of one record, without a server (opinions are only queued)."""

    def __init__(self, record_id: str, value: str) -> None:
        self.record_id, self.value = record_id, value
        self.next_checkpoint: dict[str, Any] | None = None

    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FeedRecord]:
        self.next_checkpoint = {"update_time": 1, "done_ids": [self.record_id]}
        yield FeedRecord(self.record_id, validate_entry("md5", self.value))


def fresh_exchange_entry(e: Env) -> tuple[int, int]:
    """An entry that came from a ThreatExchange exchange: (bank id, entry id)."""
    n, bank_id = e.n(), fresh_bank(e)
    x = exchanges.create_exchange(
        e.ctx,
        e.world.p("admin"),
        name=f"te-{n}",
        bank_id=bank_id,
        kind="threatexchange",
        config={"privacy_group": 1, "credentials_env": "CLEANIT_TE_TOKEN"},
    )
    feed = OneRecordFeed(str(4000000000000000 + n), f"{n:032x}")
    exchanges.sync_exchange(e.ctx, e.world.p("admin"), x.id, client=feed)
    entries, _ = banks.list_entries(e.ctx, e.world.p("admin"), bank_id)
    return bank_id, entries[0].id


# Bulk matching: storage URLs must be on the caller's organisation's domains.
STORAGE_HOSTS = {"host-a": "files.host-a.example.org", "host-b": "files.host-b.example.org"}
HOST_A_MATCHERS = (*DECIDERS, "admin")
HOST_B_MATCHERS = ("other_reviewer", "other_admin", "other_legal")
_BASE_BATCH: dict[int, int] = {}


def storage_domains(e: Env) -> None:
    """host-a and host-b serve content from their STORAGE_HOSTS (added to their domains)."""
    from cleanit.adapters.db.models import Organisation

    with e.ctx.transaction() as s:
        for slug, host in STORAGE_HOSTS.items():
            org = s.scalar(select(Organisation).where(Organisation.slug == slug))
            assert org is not None
            if host not in org.domains:
                org.domains = [*org.domains, host]


def batch_body(e: Env, who: str) -> dict[str, Any]:
    storage_domains(e)
    org = {**PEOPLE, **EXTRA_PEOPLE}.get(who, ("host-a", []))[0]
    host = STORAGE_HOSTS.get(org, STORAGE_HOSTS["host-a"])
    return {"items": [{"storage_url": f"https://{host}/o/{e.n()}.png"}]}


def base_batch(e: Env) -> int:
    """A batch host-a's reviewer submitted (its job never runs here)."""
    if id(e) not in _BASE_BATCH:
        storage_domains(e)
        item = {"storage_url": f"https://{STORAGE_HOSTS['host-a']}/o/base.png"}
        _BASE_BATCH[id(e)] = matching_batches.submit_batch(e.ctx, e.world.p("reviewer"), [item]).id
    return _BASE_BATCH[id(e)]


READ_CASES = HOST_A_STAFF + IRU  # who may read the base case (the provider and its notifier)
STAFF_READERS = (*HOST_A_STAFF, *HOST_B, *IRU, "authority", "researcher")

ENDPOINTS: list[Endpoint] = [
    # Reads first: the mutating cells below add cases, notices and complaints.
    Endpoint(
        "GET",
        "/api/v1/notices",
        staff(FORBIDDEN, ((*STAFF_READERS, "flagger"), OK)),
        lambda e: "/api/v1/notices",
        params=lambda e: {"category": "STATEMENT_CATEGORY_VIOLENCE", "limit": 200},
        shows_base=lambda e, body: e.notice_id in ids(body),
        sees_base=frozenset(READ_CASES),
    ),
    Endpoint(
        "GET",
        "/api/v1/notices/{notice_id}",
        staff(NOT_FOUND, (READ_CASES, OK), (["reporter"], FORBIDDEN)),
        lambda e: f"/api/v1/notices/{e.notice_id}",
        missing=f"/api/v1/notices/{MISSING_UUID}",
    ),
    Endpoint(
        "GET",
        "/api/v1/notice-status/{tracking_code}",
        outcomes(OK),
        lambda e: f"/api/v1/notice-status/{e.tracking_code}",
    ),
    Endpoint(
        "GET",
        "/api/v1/cases",
        staff(OK, (["reporter", "flagger"], FORBIDDEN)),
        lambda e: "/api/v1/cases",
        params=lambda e: {"jurisdiction": "FR", "limit": 200},
        shows_base=lambda e, body: e.case_id in ids(body),
        sees_base=frozenset(READ_CASES),
    ),
    Endpoint(
        "GET",
        "/api/v1/cases/{case_id}",
        staff(NOT_FOUND, (READ_CASES, OK), (["reporter", "flagger"], FORBIDDEN)),
        lambda e: f"/api/v1/cases/{e.case_id}",
        missing=f"/api/v1/cases/{MISSING_INT}",
    ),
    Endpoint(
        "GET",
        "/api/v1/cases/{case_id}",
        staff(NOT_FOUND, (HOST_A_STAFF, OK), (["reporter", "flagger"], FORBIDDEN)),
        lambda e: f"/api/v1/cases/{e.other_case_id}",
        missing=f"/api/v1/cases/{MISSING_INT}",
        variant="a case the referral unit did not notify",
        outsiders=OUTSIDERS | set(IRU),
    ),
    Endpoint(
        "GET",
        "/api/v1/decisions/{decision_id}/statement",
        staff(NOT_FOUND, (HOST_A_STAFF, OK), (["reporter", "flagger"], FORBIDDEN)),
        lambda e: f"/api/v1/decisions/{e.decision_id}/statement",
        missing=f"/api/v1/decisions/{MISSING_INT}/statement",
    ),
    Endpoint(
        "GET",
        "/api/v1/statements/{statement_id}",
        staff(NOT_FOUND, (HOST_A_STAFF, OK), (["reporter", "flagger"], FORBIDDEN)),
        lambda e: f"/api/v1/statements/{e.statement_id}",
        missing=f"/api/v1/statements/{MISSING_UUID}",
    ),
    Endpoint(
        "GET",
        "/api/v1/statements/{statement_id}",
        outcomes(OK),
        lambda e: f"/api/v1/statements/{e.statement_id}",
        params=lambda e: {"code": e.statement_code},
        variant="with the code from the statement's link",
    ),
    Endpoint(
        "GET",
        "/api/v1/statements/{statement_id}/text",
        staff(NOT_FOUND, (HOST_A_STAFF, OK), (["reporter", "flagger"], FORBIDDEN)),
        lambda e: f"/api/v1/statements/{e.statement_id}/text",
        missing=f"/api/v1/statements/{MISSING_UUID}/text",
    ),
    Endpoint(
        "GET",
        "/api/v1/statements/{statement_id}/text",
        outcomes(OK),
        lambda e: f"/api/v1/statements/{e.statement_id}/text",
        params=lambda e: {"code": e.statement_code},
        variant="with the code from the statement's link",
    ),
    Endpoint(
        "GET",
        "/api/v1/complaints",
        staff(
            FORBIDDEN,
            (
                ["complaints", "admin", "auditor", "other_complaints", "other_admin", "researcher"],
                OK,
            ),
        ),
        lambda e: "/api/v1/complaints",
        params=lambda e: {"status": "open", "limit": 200},
        shows_base=lambda e, body: e.complaint_id in ids(body),
        sees_base=frozenset({"complaints", "admin", "auditor"}),
    ),
    Endpoint(
        "GET",
        "/api/v1/platform-actions",
        staff(OK, (["reporter", "flagger"], FORBIDDEN)),
        lambda e: "/api/v1/platform-actions",
        shows_base=lambda e, body: e.platform_action_id in ids(body),
        sees_base=frozenset(HOST_A_STAFF),
    ),
    Endpoint(
        "GET",
        "/api/v1/audit",
        staff(FORBIDDEN, (["auditor", "researcher"], OK)),
        lambda e: "/api/v1/audit",
        params=lambda e: {"limit": 500},
        shows_base=lambda e, body: any(
            x["entity"] == "case" and x["entity_id"] == str(e.case_id) for x in body
        ),
        sees_base=frozenset({"auditor"}),
    ),
    Endpoint(
        "GET",
        "/api/v1/audit/verification",
        staff(FORBIDDEN, (["auditor", "researcher"], OK)),
        lambda e: "/api/v1/audit/verification",
    ),
    # Evaluation metrics of the caller's own organisation (audit:read or reports:read).
    Endpoint(
        "GET",
        "/api/v1/evaluation",
        staff(FORBIDDEN, (EVALUATION_READERS, OK)),
        lambda e: "/api/v1/evaluation",
        params=lambda e: {"period": "2026"},
    ),
    Endpoint(
        "GET",
        "/api/v1/evaluation",
        staff(FORBIDDEN, (EVALUATION_READERS, OK)),
        lambda e: "/api/v1/evaluation",
        params=lambda e: {"period": "2026", "format": "csv"},
        variant="as CSV",
    ),
    # Transparency reports: the caller's own organisation by default; another's is not found.
    Endpoint(
        "GET",
        "/api/v1/reports",
        staff(FORBIDDEN, (REPORT_READERS, OK)),
        lambda e: "/api/v1/reports",
        params=lambda e: {"period": "2026", "kind": "dsa"},
    ),
    Endpoint(
        "GET",
        "/api/v1/reports",
        staff(
            FORBIDDEN,
            (("auditor", "legal", "legal2", "admin"), OK),
            (("other_admin", "other_legal", "researcher"), NOT_FOUND),
        ),
        lambda e: "/api/v1/reports",
        params=lambda e: {"period": "2026", "kind": "dsa", "organisation": "host-a"},
        variant="another organisation's",
    ),
    Endpoint(
        "POST",
        "/api/v1/reports/publications",
        staff(FORBIDDEN, (("admin", "other_admin"), CREATED)),
        lambda e: "/api/v1/reports/publications",
        body=lambda e, who: {"period": "2026", "kind": "dsa"},
    ),
    Endpoint("GET", "/api/v1/legal-provisions", outcomes(OK), lambda e: "/api/v1/legal-provisions"),
    Endpoint(
        "GET",
        "/api/v1/organisations/{slug}/terms-clauses",
        outcomes(OK),
        lambda e: "/api/v1/organisations/host-a/terms-clauses",
    ),
    Endpoint("GET", "/api/v1/openapi.json", outcomes(OK), lambda e: "/api/v1/openapi.json"),
    Endpoint("GET", "/api/v1/docs", outcomes(OK), lambda e: "/api/v1/docs"),
    # Changes.
    Endpoint(
        "POST",
        "/api/v1/notices",
        outcomes(FORBIDDEN, ((*NOTIFIERS, *STAFF_NOTIFIERS), CREATED)),
        lambda e: "/api/v1/notices",
        body=notice_body,
    ),
    Endpoint(
        "POST",
        "/api/v1/cases/{case_id}/assignment",
        staff(FORBIDDEN, (DECIDERS, OK), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/cases/{e.fresh_case()}/assignment",
        body=lambda e, who: {},
        missing=f"/api/v1/cases/{MISSING_INT}/assignment",
    ),
    Endpoint(
        "POST",
        "/api/v1/cases/{case_id}/assessments",
        staff(
            FORBIDDEN,
            ((*DECIDERS, *IRU), CREATED),
            (["other_reviewer", "other_legal", "authority"], NOT_FOUND),
        ),
        lambda e: f"/api/v1/cases/{e.fresh_case()}/assessments",
        body=assessment_body,
        missing=f"/api/v1/cases/{MISSING_INT}/assessments",
    ),
    Endpoint(
        "POST",
        "/api/v1/assessments/{assessment_id}/confirmation",
        staff(
            NOT_FOUND,
            (["analyst2"], OK),
            (["analyst"], PRINCIPLE),  # the author is not the second person
            (HOST_A, FORBIDDEN),
        ),
        lambda e: f"/api/v1/assessments/{e.proposed_illegality()}/confirmation",
        missing=f"/api/v1/assessments/{MISSING_INT}/confirmation",
    ),
    Endpoint(
        "POST",
        "/api/v1/cases/{case_id}/decisions",
        staff(FORBIDDEN, (DECIDERS, CREATED), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/cases/{e.fresh_case()}/decisions",
        body=lambda e, who: NO_ACTION,
        missing=f"/api/v1/cases/{MISSING_INT}/decisions",
    ),
    Endpoint(
        "POST",
        "/api/v1/decisions/{decision_id}/approval",
        staff(
            FORBIDDEN,
            (["legal2"], OK),
            (["legal"], PRINCIPLE),  # the proposer is not the second person
            (["other_legal"], NOT_FOUND),
        ),
        lambda e: f"/api/v1/decisions/{e.pending_wide_decision()}/approval",
        missing=f"/api/v1/decisions/{MISSING_INT}/approval",
    ),
    Endpoint(
        "POST",
        "/api/v1/decisions/{decision_id}/rejection",
        # The proposer may withdraw their own proposal: rejecting restricts nobody.
        staff(FORBIDDEN, (["legal", "legal2"], OK), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/decisions/{e.pending_wide_decision()}/rejection",
        body=lambda e, who: REJECT,
        missing=f"/api/v1/decisions/{MISSING_INT}/rejection",
    ),
    Endpoint(
        "POST",
        "/api/v1/complaints",
        outcomes(CREATED),  # no account needed: the statement's code is the credential
        lambda e: "/api/v1/complaints",
        body=complaint_body,
    ),
    Endpoint(
        "POST",
        "/api/v1/complaints/{complaint_id}/decision",
        staff(FORBIDDEN, (["complaints"], OK), (["other_complaints"], NOT_FOUND)),
        lambda e: f"/api/v1/complaints/{e.open_complaint()}/decision",
        body=lambda e, who: UPHOLD,
        missing=f"/api/v1/complaints/{MISSING_UUID}/decision",
    ),
    Endpoint(
        "POST",
        "/api/v1/legal-provisions",
        staff(FORBIDDEN, (REGISTRARS, CREATED)),
        lambda e: "/api/v1/legal-provisions",
        body=lambda e, who: {
            "jurisdiction": "DE",
            "instrument": "Invented Act",
            "article": f"§ {e.n()}",
            "title": "An invented offence",
        },
    ),
    Endpoint(
        "POST",
        "/api/v1/terms-clauses",
        staff(FORBIDDEN, (REGISTRARS, CREATED)),
        lambda e: "/api/v1/terms-clauses",
        # A new key each time: a new version of the base clause would make the base
        # world's clause version outdated.
        body=lambda e, who: {
            "key": f"clause-{e.n()}",
            "title": "Invented rule",
            "text": "No content praising invented violent groups.",
        },
    ),
    Endpoint(
        "POST",
        "/api/v1/tokens",
        outcomes(CREATED),
        lambda e: "/api/v1/tokens",
        body=lambda e, who: {
            "email": f"{'reporter' if who == ANON else who}@"
            f"{PEOPLE.get(who, EXTRA_PEOPLE.get(who, ('host-a', [])))[0]}.example.org",
            "password": PASSWORD,
        },
    ),
    Endpoint(
        "POST",
        "/api/v1/organisations/{slug}/users",
        staff(FORBIDDEN, (["admin"], CREATED), (["other_admin"], NOT_FOUND)),
        lambda e: "/api/v1/organisations/host-a/users",
        body=lambda e, who: {
            "email": f"new-{e.n()}@host-a.example.org",
            "name": "New Reviewer",
            "password": "a long invented password",
            "roles": ["reviewer"],
        },
    ),
    Endpoint(
        "PUT",
        "/api/v1/webhook",
        staff(FORBIDDEN, (["admin", "other_admin"], OK)),
        lambda e: "/api/v1/webhook",
        body=lambda e, who: {"url": "https://platform.example.org/hook"},
    ),
    Endpoint(
        "PUT",
        "/api/v1/content",
        staff(FORBIDDEN, (["admin", "other_admin"], OK)),
        lambda e: "/api/v1/content",
        body=lambda e, who: {
            "url": f"https://host-a.example.org/v/uploaded-{e.n()}",
            "uploader_ref": "u1",
            "uploader_email": "uploader@users.example.net",
        },
    ),
    Endpoint(
        "POST",
        "/api/v1/platform-actions/{action_id}/ack",
        staff(FORBIDDEN, (["admin"], OK), (["other_admin"], NOT_FOUND)),
        lambda e: f"/api/v1/platform-actions/{e.platform_action_id}/ack",
        missing=f"/api/v1/platform-actions/{MISSING_UUID}/ack",
    ),
    Endpoint(
        "GET",
        "/api/v1/banks",
        staff(FORBIDDEN, ((*BANK_READERS_A, *BANK_READERS_ELSEWHERE), OK)),
        lambda e: f"/api/v1/banks?_={base_bank(e)}",
        shows_base=lambda e, body: base_bank(e) in ids(body),
        sees_base=frozenset(BANK_READERS_A),
    ),
    Endpoint(
        "GET",
        "/api/v1/banks/{bank_id}",
        staff(FORBIDDEN, (BANK_READERS_A, OK), (BANK_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/banks/{base_bank(e)}",
        missing=f"/api/v1/banks/{MISSING_INT}",
    ),
    Endpoint(
        "GET",
        "/api/v1/banks/{bank_id}/entries",
        staff(FORBIDDEN, (BANK_READERS_A, OK), (BANK_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/banks/{base_bank(e)}/entries",
        missing=f"/api/v1/banks/{MISSING_INT}/entries",
    ),
    Endpoint(
        "POST",
        "/api/v1/banks",
        staff(FORBIDDEN, ((*BANK_MANAGERS_A, *BANK_MANAGERS_ELSEWHERE), CREATED)),
        lambda e: "/api/v1/banks",
        body=lambda e, who: {"name": f"bank-{e.n()}", "labels": ["entity:invented-group"]},
    ),
    Endpoint(
        "PATCH",
        "/api/v1/banks/{bank_id}",
        staff(FORBIDDEN, (BANK_MANAGERS_A, OK), (BANK_MANAGERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/banks/{fresh_bank(e)}",
        body=lambda e, who: {"enabled": False},
        missing=f"/api/v1/banks/{MISSING_INT}",
    ),
    Endpoint(
        "POST",
        "/api/v1/banks/{bank_id}/entries",
        staff(FORBIDDEN, (BANK_MANAGERS_A, CREATED), (BANK_MANAGERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/banks/{fresh_bank(e)}/entries",
        body=lambda e, who: {"signal_type": "md5", "value": f"{e.n():032x}"},
        missing=f"/api/v1/banks/{MISSING_INT}/entries",
    ),
    Endpoint(
        "DELETE",
        "/api/v1/banks/{bank_id}/entries/{entry_id}",
        staff(FORBIDDEN, (BANK_MANAGERS_A, OK), (BANK_MANAGERS_ELSEWHERE, NOT_FOUND)),
        lambda e: "/api/v1/banks/{}/entries/{}".format(*fresh_entry(e)),
        missing=f"/api/v1/banks/{MISSING_INT}/entries/{MISSING_INT}",
    ),
    Endpoint(
        "POST",
        "/api/v1/banks/{bank_id}/entries/{entry_id}/opinions",
        staff(FORBIDDEN, (BANK_MANAGERS_A, CREATED), (BANK_MANAGERS_ELSEWHERE, NOT_FOUND)),
        lambda e: "/api/v1/banks/{}/entries/{}/opinions".format(*fresh_exchange_entry(e)),
        body=lambda e, who: {"opinion": "false_positive"},
        missing=f"/api/v1/banks/{MISSING_INT}/entries/{MISSING_INT}/opinions",
    ),
    Endpoint(
        "POST",
        "/api/v1/banks/{bank_id}/imports",
        staff(FORBIDDEN, (BANK_MANAGERS_A, CREATED), (BANK_MANAGERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/banks/{fresh_bank(e)}/imports",
        body=lambda e, who: {"filename": "list.csv", "csv": f"md5,{e.n():032x},entity:x\n"},
        missing=f"/api/v1/banks/{MISSING_INT}/imports",
    ),
    Endpoint(
        "POST",
        "/api/v1/matching/lookup",
        staff(FORBIDDEN, (MATCHERS, OK)),
        lambda e: "/api/v1/matching/lookup",
        body=lambda e, who: {"signal_type": "md5", "hashes": [f"{e.n():032x}"]},
    ),
    Endpoint(
        "POST",
        "/api/v1/matching/content",
        staff(FORBIDDEN, (MATCHERS, OK)),
        lambda e: "/api/v1/matching/content",
        body=lambda e, who: {"content_base64": TINY_PNG},
    ),
    Endpoint(
        "POST",
        "/api/v1/matching/hashes",
        staff(FORBIDDEN, (MATCHERS, OK)),
        lambda e: "/api/v1/matching/hashes",
        body=lambda e, who: {"content_base64": TINY_PNG},
    ),
    Endpoint(
        "POST",
        "/api/v1/matching/batches",
        staff(FORBIDDEN, (MATCHERS, 202)),
        lambda e: "/api/v1/matching/batches",
        body=batch_body,
    ),
    Endpoint(
        "GET",
        "/api/v1/matching/batches/{batch_id}",
        staff(FORBIDDEN, (HOST_A_MATCHERS, OK), (HOST_B_MATCHERS, NOT_FOUND)),
        lambda e: f"/api/v1/matching/batches/{base_batch(e)}",
        missing=f"/api/v1/matching/batches/{MISSING_INT}",
    ),
    Endpoint(
        "GET",
        "/api/v1/matching/batches/{batch_id}/items",
        staff(FORBIDDEN, (HOST_A_MATCHERS, OK), (HOST_B_MATCHERS, NOT_FOUND)),
        lambda e: f"/api/v1/matching/batches/{base_batch(e)}/items",
        missing=f"/api/v1/matching/batches/{MISSING_INT}/items",
    ),
]

# --- preservation holds, investigation requests, threat to life ------------------------------
# Holds: preservation:read (legal, org_admin, auditors, competent authorities with standing),
# preservation:access and :extend (legal; authorities with standing), content upload by the
# platform (org_admin). The base case's removal started the base hold; the authority has
# standing only in holds of cases it notified.
HOLD_READERS_A = ("legal", "legal2", "admin", "auditor")
HOLD_READERS_ELSEWHERE = ("other_admin", "other_legal", "authority", "researcher")
HOLD_OPENERS = ("legal", "legal2", "authority")
INVESTIGATION_READERS_A = ("legal", "legal2", "auditor", "authority")
_HOLDS: dict[tuple[int, str], int] = {}
PRESERVATION_PURPOSE = {"purpose": "review", "reason": "Judicial review of the removal 2026/9"}


def _hold_of_case(e: Env, case_id: int) -> int:
    with e.ctx.sessions() as s:
        hold_id = s.scalar(
            select(PreservationHold.id).where(PreservationHold.case_id == case_id).limit(1)
        )
        assert hold_id is not None
        return hold_id


def base_hold(e: Env) -> int:
    if (id(e), "base") not in _HOLDS:
        _HOLDS[(id(e), "base")] = _hold_of_case(e, e.case_id)
    return _HOLDS[(id(e), "base")]


def fresh_authority_hold(e: Env) -> int:
    """A removal of content the competent authority notified: it has standing in the hold."""
    url = f"https://host-a.example.org/v/authority-{e.n()}"
    draft = notice(url, source=SourceType.AUTHORITY_NOTICE)
    case_id = notices.receive_notice(e.ctx, e.world.p("authority"), draft).case_ids[0]
    decisions.decide_case(
        e.ctx,
        e.world.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="The video shows the invented group's flag with a call to join.",
            assessment_id=e.terms_assessment(case_id),
        ),
    )
    return _hold_of_case(e, case_id)


def authority_hold(e: Env) -> int:
    if (id(e), "authority") not in _HOLDS:
        _HOLDS[(id(e), "authority")] = fresh_authority_hold(e)
    return _HOLDS[(id(e), "authority")]


def investigation_body(e: Env, who: str = "") -> dict[str, Any]:
    return {
        "provider": "host-a",
        "requesting_authority": "Invented Federal Police",
        "reference": f"IFP-{e.n()}",
        "kind": "disclosure",
        "legal_basis": "Order of the invented investigating judge.",
        "provision": "Code of Criminal Procedure, Art 46bis (BE)",
        "subject": "Account u-77 at host-a",
        "scope": ["ip_logs", "account_metadata"],
        "deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
    }


def fresh_request(e: Env, *, decided: bool = False) -> int:
    r = investigations.submit_request(e.ctx, e.world.p("authority"), investigation_body(e))
    if decided:
        investigations.decide(e.ctx, e.world.p("legal"), r.id, "comply")
    return r.id


def base_request(e: Env) -> int:
    if (id(e), "request") not in _HOLDS:
        _HOLDS[(id(e), "request")] = fresh_request(e)
    return _HOLDS[(id(e), "request")]


ENDPOINTS += [
    Endpoint(
        "GET",
        "/api/v1/preservation-holds",
        staff(FORBIDDEN, ((*HOLD_READERS_A, *HOLD_READERS_ELSEWHERE), OK)),
        lambda e: f"/api/v1/preservation-holds?case_id={e.case_id}&_={base_hold(e)}",
        shows_base=lambda e, body: base_hold(e) in ids(body),
        sees_base=frozenset(HOLD_READERS_A),
    ),
    Endpoint(
        "GET",
        "/api/v1/preservation-holds/{hold_id}",
        staff(FORBIDDEN, (HOLD_READERS_A, OK), (HOLD_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{base_hold(e)}",
        missing=f"/api/v1/preservation-holds/{MISSING_INT}",
    ),
    Endpoint(
        "GET",
        "/api/v1/preservation-holds/{hold_id}/accesses",
        staff(FORBIDDEN, (HOLD_READERS_A, OK), (HOLD_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{base_hold(e)}/accesses",
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/accesses",
    ),
    Endpoint(
        "GET",
        "/api/v1/preservation-holds/{hold_id}/items/{name}",
        staff(FORBIDDEN, (HOLD_OPENERS, OK), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{authority_hold(e)}/items/record.json",
        params=lambda e: PRESERVATION_PURPOSE,
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/items/record.json",
    ),
    Endpoint(
        "GET",
        "/api/v1/preservation-holds/{hold_id}/items/{name}",
        # Without standing the authority finds nothing, like any other organisation.
        staff(FORBIDDEN, (["legal", "legal2"], OK), (["other_legal", "authority"], NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{base_hold(e)}/items/record.json",
        params=lambda e: PRESERVATION_PURPOSE,
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/items/record.json",
        variant="no standing",
    ),
    Endpoint(
        "GET",
        "/api/v1/preservation-holds/{hold_id}/evidence-package",
        staff(FORBIDDEN, (HOLD_OPENERS, OK), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{authority_hold(e)}/evidence-package",
        params=lambda e: PRESERVATION_PURPOSE,
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/evidence-package",
    ),
    Endpoint(
        "POST",
        "/api/v1/preservation-holds/{hold_id}/extensions",
        staff(FORBIDDEN, (HOLD_OPENERS, OK), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{fresh_authority_hold(e)}/extensions",
        body=lambda e, who: {
            "reasons": "Proceedings 2026/9 before the invented court are ongoing.",
            "months": 1,
            "requested_by": "Invented district court",
        },
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/extensions",
    ),
    Endpoint(
        "POST",
        "/api/v1/preservation-holds/{hold_id}/content",
        staff(FORBIDDEN, (["admin"], CREATED), (["other_admin"], NOT_FOUND)),
        lambda e: f"/api/v1/preservation-holds/{base_hold(e)}/content?filename=clip.mp4",
        body=lambda e, who: {"invented": "file content"},
        missing=f"/api/v1/preservation-holds/{MISSING_INT}/content",
    ),
    Endpoint(
        "POST",
        "/api/v1/cases/{case_id}/threat-to-life",
        staff(FORBIDDEN, (DECIDERS, CREATED), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/cases/{e.fresh_case()}/threat-to-life",
        body=lambda e, who: {"reasons": "A dated threat against an invented person's life."},
        missing=f"/api/v1/cases/{MISSING_INT}/threat-to-life",
    ),
    Endpoint(
        "POST",
        "/api/v1/investigation-requests",
        staff(FORBIDDEN, (["authority"], CREATED)),
        lambda e: "/api/v1/investigation-requests",
        body=investigation_body,
    ),
    Endpoint(
        "GET",
        "/api/v1/investigation-requests",
        staff(FORBIDDEN, ((*INVESTIGATION_READERS_A, "other_legal", "researcher"), OK)),
        lambda e: f"/api/v1/investigation-requests?_={base_request(e)}",
        shows_base=lambda e, body: base_request(e) in ids(body),
        sees_base=frozenset(INVESTIGATION_READERS_A),
    ),
    Endpoint(
        "GET",
        "/api/v1/investigation-requests/{request_id}",
        staff(
            FORBIDDEN,
            (INVESTIGATION_READERS_A, OK),
            (["other_legal", "researcher"], NOT_FOUND),
        ),
        lambda e: f"/api/v1/investigation-requests/{base_request(e)}",
        missing=f"/api/v1/investigation-requests/{MISSING_INT}",
    ),
    Endpoint(
        "POST",
        "/api/v1/investigation-requests/{request_id}/decision",
        staff(FORBIDDEN, (["legal", "legal2"], OK), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/investigation-requests/{fresh_request(e)}/decision",
        body=lambda e, who: {"decision": "refuse", "reasons": "No judicial order was attached."},
        missing=f"/api/v1/investigation-requests/{MISSING_INT}/decision",
    ),
    Endpoint(
        "POST",
        "/api/v1/investigation-requests/{request_id}/disclosures",
        staff(FORBIDDEN, (["legal", "legal2"], CREATED), (["other_legal"], NOT_FOUND)),
        lambda e: f"/api/v1/investigation-requests/{fresh_request(e, decided=True)}/disclosures",
        body=lambda e, who: {"categories": ["ip_logs"], "note": "IP log CSV by encrypted mail."},
        missing=f"/api/v1/investigation-requests/{MISSING_INT}/disclosures",
    ),
]


# --- removal orders ------------------------------------------------------------------------------
# orders:issue (competent authorities), orders:read (the authority that sent the order and the
# addressee's staff), orders:execute (the addressee's reviewers and legal). Clarification and
# scrutiny are recorded by either side; only the issuing authority renews a hold. The base
# order was sent to host-a, executed and confirmed by the platform; another got an Annex III.
ORDER_READERS_A = (*HOST_A_STAFF, "authority")
ORDER_READERS_ELSEWHERE = (*HOST_B, "researcher")
ORDER_PARTIES = (*DECIDERS, "authority")
_ORDERS: dict[tuple[int, str], str] = {}
ORDERS_URL = "/api/v1/removal-orders"
INABILITY = {"reason": "force_majeure", "explanation": "Our data centre is flooded and offline."}


def order_domains(e: Env) -> str:
    """host-a serves content from host-a.example.org (orders may only name URLs there)."""
    from cleanit.adapters.db.models import Organisation

    with e.ctx.transaction() as s:
        org = s.scalar(select(Organisation).where(Organisation.slug == "host-a"))
        assert org is not None
        if "host-a.example.org" not in org.domains:
            org.domains = [*org.domains, "host-a.example.org"]
    return ORDERS_URL


def order_json(e: Env, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "addressee": "host-a",
        "issuing_authority": "Invented Internet Referral Office",
        "issuing_member_state": "BE",
        "reference": f"RO-MATRIX-{e.n()}",
        "issued_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "content_urls": [f"https://host-a.example.org/v/order-{e.n()}"],
        "reasons": ["incitement"],
        "host_member_state": "BE",
        "contact_email": "orders@authority.example.org",
        "redress_information": "Challenge before the invented administrative court.",
    }
    return body | changes


def fresh_order(e: Env, **changes: Any) -> str:
    order_domains(e)
    return orders.receive_order(e.ctx, e.world.p("authority"), order_json(e, **changes)).order_id


def unable_order(e: Env) -> str:
    oid = fresh_order(e)
    orders.report_inability(
        e.ctx,
        e.world.p("reviewer"),
        uuid.UUID(oid),
        reason=InabilityReason(INABILITY["reason"]),
        explanation=INABILITY["explanation"],
    )
    return oid


def base_order(e: Env, kind: str = "executed") -> str:
    if (id(e), kind) not in _ORDERS:
        if kind == "annex-iii":
            _ORDERS[(id(e), kind)] = unable_order(e)
        else:
            oid = fresh_order(e)
            view = orders.execute_order(e.ctx, e.world.p("reviewer"), uuid.UUID(oid))
            with e.ctx.sessions() as s:
                pending = s.scalars(
                    select(PlatformAction.id).where(
                        PlatformAction.decision_id == view["items"][0]["decision_id"]
                    )
                ).all()
            for action_id in pending:  # the platform answers 200: confirmed
                platform.send_platform_action(e.ctx, action_id)
            _ORDERS[(id(e), kind)] = oid
    return _ORDERS[(id(e), kind)]


PRE_AUTHORISATIONS_URL = f"{ORDERS_URL}/pre-authorisations"
# Pre-authorising is for a provider's legal staff and admin; any of its staff reading orders
# sees the list. Each call names a fresh authority, so the module's own "authority" is never
# pre-authorised (its orders in the other rows must wait for a person).
PRE_AUTHORISERS_A = ("legal", "legal2", "admin")
PRE_AUTHORISERS_B = ("other_admin", "other_legal")


def fresh_authority(e: Env) -> str:
    slug = f"authority-{e.n()}"
    organisations.create_organisation(
        e.ctx, slug=slug, name=f"Authority {slug}", kind=OrgKind.COMPETENT_AUTHORITY
    )
    return slug


def fresh_pre_authorisation(e: Env) -> int:
    return orders.pre_authorise(e.ctx, e.world.p("legal"), fresh_authority(e)).id


def base_pre_authorisation(e: Env) -> int:
    key = (id(e), "pre-authorisation")
    if key not in _ORDERS:
        _ORDERS[key] = str(fresh_pre_authorisation(e))
    return int(_ORDERS[key])


ENDPOINTS += [
    Endpoint(
        "POST",
        ORDERS_URL,
        staff(FORBIDDEN, (["authority"], CREATED)),
        order_domains,
        body=lambda e, who: order_json(e),
    ),
    Endpoint(
        "GET",
        ORDERS_URL,
        staff(FORBIDDEN, ((*ORDER_READERS_A, *ORDER_READERS_ELSEWHERE), OK)),
        lambda e: f"{ORDERS_URL}?_={base_order(e)}",
        shows_base=lambda e, body: base_order(e) in ids(body),
        sees_base=frozenset(ORDER_READERS_A),
    ),
    Endpoint(
        "GET",
        f"{ORDERS_URL}/statistics",
        staff(FORBIDDEN, ((*ORDER_READERS_A, *ORDER_READERS_ELSEWHERE), OK)),
        lambda e: f"{ORDERS_URL}/statistics",
        params=lambda e: {"year": datetime.now(UTC).year},
    ),
    Endpoint(
        "GET",
        f"{ORDERS_URL}/{{order_id}}",
        staff(FORBIDDEN, (ORDER_READERS_A, OK), (ORDER_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{base_order(e)}",
        missing=f"{ORDERS_URL}/{MISSING_UUID}",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/execution",
        staff(FORBIDDEN, (DECIDERS, OK), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{fresh_order(e)}/execution",
        body=lambda e, who: {"action": "disable_access"},
        missing=f"{ORDERS_URL}/{MISSING_UUID}/execution",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/inability",
        staff(FORBIDDEN, (DECIDERS, OK), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{fresh_order(e)}/inability",
        body=lambda e, who: INABILITY,
        missing=f"{ORDERS_URL}/{MISSING_UUID}/inability",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/clarification",
        staff(FORBIDDEN, (ORDER_PARTIES, OK), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{unable_order(e)}/clarification",
        body=lambda e, who: {"clarification": "The power is back; we can act now."},
        missing=f"{ORDERS_URL}/{MISSING_UUID}/clarification",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/scrutiny",
        staff(FORBIDDEN, (ORDER_PARTIES, OK), (["other_reviewer", "other_legal"], NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{fresh_order(e, issuing_member_state='FR')}/scrutiny",
        body=lambda e, who: {"requested_by": "provider"},
        missing=f"{ORDERS_URL}/{MISSING_UUID}/scrutiny",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/hold-renewal",
        staff(FORBIDDEN, (["authority"], OK)),
        lambda e: f"{ORDERS_URL}/{fresh_order(e, withhold_information=True)}/hold-renewal",
        body=lambda e, who: {"days": 42, "reasons": "The invented investigation continues."},
        missing=f"{ORDERS_URL}/{MISSING_UUID}/hold-renewal",
    ),
    Endpoint(
        "GET",
        f"{ORDERS_URL}/{{order_id}}/annex-ii",
        staff(FORBIDDEN, (ORDER_READERS_A, OK), (ORDER_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{base_order(e)}/annex-ii",
        missing=f"{ORDERS_URL}/{MISSING_UUID}/annex-ii",
    ),
    Endpoint(
        "GET",
        f"{ORDERS_URL}/{{order_id}}/annex-iii",
        staff(FORBIDDEN, (ORDER_READERS_A, OK), (ORDER_READERS_ELSEWHERE, NOT_FOUND)),
        lambda e: f"{ORDERS_URL}/{base_order(e, 'annex-iii')}/annex-iii",
        missing=f"{ORDERS_URL}/{MISSING_UUID}/annex-iii",
    ),
    Endpoint(
        "POST",
        f"{ORDERS_URL}/{{order_id}}/withdrawal",
        staff(FORBIDDEN, (["authority"], OK)),
        lambda e: f"{ORDERS_URL}/{fresh_order(e)}/withdrawal",
        body=lambda e, who: {"reasons": "The invented investigation found it was a hoax."},
        missing=f"{ORDERS_URL}/{MISSING_UUID}/withdrawal",
    ),
    Endpoint(
        "POST",
        PRE_AUTHORISATIONS_URL,
        staff(FORBIDDEN, ((*PRE_AUTHORISERS_A, *PRE_AUTHORISERS_B), CREATED)),
        lambda e: PRE_AUTHORISATIONS_URL,
        body=lambda e, who: {"authority": fresh_authority(e)},
    ),
    Endpoint(
        "GET",
        PRE_AUTHORISATIONS_URL,
        staff(FORBIDDEN, ((*HOST_A_STAFF, *HOST_B), OK)),
        lambda e: f"{PRE_AUTHORISATIONS_URL}?_={base_pre_authorisation(e)}",
        shows_base=lambda e, body: base_pre_authorisation(e) in ids(body),
        sees_base=frozenset(HOST_A_STAFF),
    ),
    Endpoint(
        "DELETE",
        f"{PRE_AUTHORISATIONS_URL}/{{pre_authorisation_id}}",
        staff(FORBIDDEN, (PRE_AUTHORISERS_A, OK), (PRE_AUTHORISERS_B, NOT_FOUND)),
        lambda e: f"{PRE_AUTHORISATIONS_URL}/{fresh_pre_authorisation(e)}",
        missing=f"{PRE_AUTHORISATIONS_URL}/{MISSING_INT}",
    ),
]


# --- DSA Transparency Database submissions -------------------------------------------------
# tdb:read (legal, org_admin, auditors: their own organisation's), tdb:submit (legal,
# org_admin) sends a rejected statement again.
TDB_READERS_A = ("legal", "legal2", "admin", "auditor")
TDB_READERS_ELSEWHERE = ("other_admin", "other_legal", "researcher")
TDB_SENDERS_A = ("legal", "legal2", "admin")
TDB_SENDERS_B = ("other_admin", "other_legal")
_TDB: dict[int, int] = {}


def fresh_tdb_submission(e: Env, *, rejected: bool = False) -> int:
    """A decision in force at host-a (TDB submission on) and its statement's submission."""
    from sqlalchemy import update

    from cleanit.adapters.db.models import Organisation, TdbSubmission

    with e.ctx.transaction() as s:
        s.execute(
            update(Organisation).where(Organisation.slug == "host-a").values(tdb_enabled=True)
        )
    decision_id, _, _ = e.decided()
    with e.ctx.transaction() as s:
        row = s.scalar(select(TdbSubmission).where(TdbSubmission.decision_id == decision_id))
        assert row is not None
        if rejected:
            row.status = "rejected"
        return row.id


def base_tdb_submission(e: Env) -> int:
    if id(e) not in _TDB:
        _TDB[id(e)] = fresh_tdb_submission(e)
    return _TDB[id(e)]


ENDPOINTS += [
    Endpoint(
        "GET",
        "/api/v1/tdb/submissions",
        staff(FORBIDDEN, ((*TDB_READERS_A, *TDB_READERS_ELSEWHERE), OK)),
        lambda e: f"/api/v1/tdb/submissions?_={base_tdb_submission(e)}",
        shows_base=lambda e, body: base_tdb_submission(e) in ids(body),
        sees_base=frozenset(TDB_READERS_A),
    ),
    Endpoint(
        "POST",
        "/api/v1/tdb/submissions/{submission_id}/retry",
        staff(FORBIDDEN, (TDB_SENDERS_A, OK), (TDB_SENDERS_B, NOT_FOUND)),
        lambda e: f"/api/v1/tdb/submissions/{fresh_tdb_submission(e, rejected=True)}/retry",
        missing=f"/api/v1/tdb/submissions/{MISSING_INT}/retry",
    ),
]


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    try:  # FastAPI >= 0.16x keeps included routers as branches of app.routes
        from fastapi.routing import iter_route_contexts

        routes: Iterable[Any] = iter_route_contexts(app.routes)
    except ImportError:  # pragma: no cover - older FastAPI flattens them
        routes = app.routes
    found: set[tuple[str, str]] = set()
    for r in routes:
        path = getattr(r, "path", None)
        for method in getattr(r, "methods", None) or ():
            if path and path.startswith("/api/v1") and method != "HEAD":
                found.add((method, path))
    return found


def test_every_api_route_is_in_the_matrix(env: Env) -> None:
    routes = _routes(env.app)
    assert len(routes) >= 30, routes  # the enumeration itself works
    covered = {(ep.method, ep.route) for ep in ENDPOINTS}
    missing = sorted(routes - covered)
    assert not missing, f"add these routes to the authorisation matrix: {missing}"
    stale = sorted(covered - routes)
    assert not stale, f"the matrix names routes the app does not have: {stale}"


def test_every_person_has_an_expected_outcome_everywhere() -> None:
    for ep in ENDPOINTS:
        assert set(ep.expect) == set(EVERYONE), ep.label
        for who, status in ep.expect.items():
            # Anonymous callers never get 403/404 where a token is needed: they must log in.
            if who == ANON and status >= 400:
                assert status == UNAUTH, ep.label


PUBLIC_CHANGES = {
    ("POST", "/api/v1/notices"),
    ("POST", "/api/v1/complaints"),
    ("POST", "/api/v1/tokens"),
}


def _allowed(method: str, route: str) -> set[str]:
    return {
        who
        for ep in ENDPOINTS
        if (ep.method, ep.route) == (method, route)
        for who, status in ep.expect.items()
        if status < 400
    }


def test_the_table_keeps_the_key_rules() -> None:
    """The rules the matrix must never be edited away from (test_matrix checks the app
    against the table; this checks the table against the rules)."""
    for ep in ENDPOINTS:
        if ep.method != "GET" and (ep.method, ep.route) not in PUBLIC_CHANGES:
            # Auditors (of the provider, or researchers) read; they never change anything.
            assert ep.expect["auditor"] >= 400 and ep.expect["researcher"] >= 400, ep.label
            assert ep.expect[ANON] == UNAUTH, ep.label
    assert _allowed("PUT", "/api/v1/webhook") == {"admin", "other_admin"}
    assert _allowed("POST", "/api/v1/organisations/{slug}/users") == {"admin"}
    assert _allowed("POST", "/api/v1/platform-actions/{action_id}/ack") == {"admin"}
    assert _allowed("POST", "/api/v1/cases/{case_id}/decisions") == set(DECIDERS)
    assert _allowed("POST", "/api/v1/decisions/{decision_id}/approval") == {"legal2"}
    assert _allowed("POST", "/api/v1/complaints/{complaint_id}/decision") == {"complaints"}
    assert _allowed("GET", "/api/v1/audit") == {"auditor", "researcher"}
    assert _allowed("GET", "/api/v1/audit/verification") == {"auditor", "researcher"}
    assert {"reporter", "flagger"}.isdisjoint(_allowed("GET", "/api/v1/cases"))
    for method, route in (
        ("GET", "/api/v1/notice-status/{tracking_code}"),
        ("GET", "/api/v1/legal-provisions"),
        ("GET", "/api/v1/organisations/{slug}/terms-clauses"),
        *PUBLIC_CHANGES,
    ):
        assert ANON in _allowed(method, route), (method, route)
    # Other organisations never read host-a's records.
    for ep in ENDPOINTS:
        if ep.method == "GET" and ep.missing is not None:
            assert all(ep.expect[who] in (NOT_FOUND, FORBIDDEN) for who in HOST_B), ep.label


def _call(e: Env, ep: Endpoint, who: str, path: str) -> Any:
    return e.client.request(
        ep.method,
        path,
        headers=e.headers(who),
        json=ep.body(e, who) if ep.body else None,
        params=ep.params(e) if ep.params else None,
    )


@pytest.mark.parametrize(
    ("ep", "who"),
    [pytest.param(ep, who, id=f"{ep.label} | {who}") for ep in ENDPOINTS for who in EVERYONE],
)
def test_matrix(env: Env, ep: Endpoint, who: str) -> None:
    expected = ep.expect[who]
    r = _call(env, ep, who, ep.path(env))
    assert r.status_code == expected, f"{ep.label} as {who}: {r.status_code} {r.text[:300]}"
    if expected >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == expected
        if expected == UNAUTH:
            assert r.headers["www-authenticate"] == "Bearer"
        if ep.missing is not None and who in ep.outsiders:
            # Another organisation's id must be indistinguishable from one that does not exist.
            m = _call(env, ep, who, ep.missing)
            assert m.status_code == r.status_code, (
                f"{ep.label} as {who}: real target {r.status_code}, "
                f"missing target {m.status_code} — the answer reveals that it exists"
            )
    elif ep.shows_base is not None:
        assert ep.shows_base(env, r.json()) == (who in ep.sees_base), (
            f"{ep.label} as {who}: host-a's record is "
            + ("missing" if who in ep.sees_base else "visible to another organisation")
        )


def test_a_refused_change_changes_nothing(env: Env) -> None:
    """403/404 answers leave no trace: the record of the base case is unchanged."""
    record = f"/api/v1/cases/{env.case_id}"
    before = env.client.get(record, headers=env.headers("auditor")).json()
    refused: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (f"{record}/decisions", NO_ACTION, ("other_reviewer", "complaints", "analyst")),
        (f"{record}/assignment", {}, ("other_legal", "auditor", "analyst2")),
        (f"{record}/assessments", assessment_body(env, "flagger"), ("flagger", "admin")),
        (
            f"/api/v1/complaints/{env.complaint_id}/decision",
            UPHOLD,
            ("other_complaints", "reviewer", "auditor"),
        ),
    ]
    for path, body, people in refused:
        for who in (*people, ANON):
            r = env.client.post(path, json=body, headers=env.headers(who))
            assert r.status_code in (UNAUTH, FORBIDDEN, NOT_FOUND), (path, who, r.text)
    after = env.client.get(record, headers=env.headers("auditor")).json()
    assert after == before
    assert after["case"]["state"] == "under_complaint"
    assert [c["status"] for c in after["complaints"]] == ["open"]
