"""Real background work: a procrastinate worker delivers messages, and signed webhooks make the
demo hosting site hide an item after a decision and show it again after a reversal."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import procrastinate
import pytest
import uvicorn
from sqlalchemy import select

from cleanit.adapters.db.models import (
    DemoSitePost,
    Message,
    Organisation,
    PlatformAction,
    Statement,
    TermsClauseVersion,
    User,
)
from cleanit.adapters.webhooks import HttpWebhookSender, UnsafeTarget, check_target, sign
from cleanit.api.app import create_app
from cleanit.demo.seed import PROVIDER, seed
from cleanit.demo.site import create_site
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.services import assessments, cases, complaints, decisions, notices, platform
from cleanit.services.authz import principal_for_user
from cleanit.services.context import Context
from cleanit.settings import Settings
from cleanit.workers.runner import WorkerThread
from cleanit.workers.tasks import register


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until ``check`` holds (bounded); the assertion is on the outcome, not the time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def worker(ctx: Context, database_url: str) -> Iterator[WorkerThread]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    register(app, ctx)
    w = WorkerThread(app, concurrency=2)
    w.start()
    yield w
    w.stop()


def test_worker_delivers_the_acknowledgement(
    ctx: Context, worker: WorkerThread, mailbox: Path
) -> None:
    from tests.world import build_world, notice

    w = build_world(ctx)
    receipt = notices.receive_notice(ctx, w.p("reporter"), notice())

    def sent() -> bool:
        with ctx.sessions() as s:
            return s.scalar(select(Message.status)) == "sent"

    wait_for(sent)
    mail = next((mailbox / "pat@public.example.net").glob("*.eml")).read_text()
    assert receipt.tracking_code in mail


@pytest.fixture
def live_site(ctx: Context, settings: Settings) -> Iterator[str]:
    """The API and the demo site served by a real uvicorn on a loopback port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ctx.base_url = base
    ctx.webhooks = HttpWebhookSender(timeout=5, allow_private=True)
    app = create_app(ctx, settings)
    app.mount("/demo-site", create_site(ctx))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10)
    yield base
    server.should_exit = True
    thread.join(10)


def test_demo_site_obeys_signed_webhooks(ctx: Context, live_site: str) -> None:
    seed(ctx)
    with ctx.sessions() as s:

        def person(email: str) -> int:
            uid = s.scalar(select(User.id).where(User.email == email))
            assert uid is not None
            return uid

        reviewer = principal_for_user(s, person("reviewer@video.example.org"))
        officer = principal_for_user(s, person("complaints@video.example.org"))
        clause_version = s.scalar(select(TermsClauseVersion.id).limit(1))
    url = f"{live_site}/demo-site/posts/blue-squares"
    assert "Blue squares" in httpx.get(url).text
    queue, _ = cases.list_cases(ctx, reviewer)
    case = next(c for c in queue if c.priority == 20)  # the referral unit's notice
    a = assessments.assess(
        ctx,
        reviewer,
        case.id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Praises an invented group.",
            terms_clause_version_id=clause_version,
        ),
    )
    d = decisions.decide_case(
        ctx,
        reviewer,
        case.id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="The post glorifies an invented violent group.",
            assessment_id=a.id,
        ),
    )
    with ctx.sessions() as s:
        pa_id = s.scalar(select(PlatformAction.id).where(PlatformAction.decision_id == d.id))
    assert pa_id is not None
    assert platform.send_platform_action(ctx, pa_id) == "acknowledged"
    page = httpx.get(url).text
    assert "This content is not available" in page and "Blue squares" not in page
    with ctx.sessions() as s:
        statement = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        assert statement is not None
        link = statement.body["redress"]["internal_complaint"]["url"]
    code = link.split("code=")[1]
    rc = complaints.lodge_complaint(
        ctx,
        grounds="It is an art project about shapes.",
        statement_id=statement.public_id,
        code=code,
    )
    c = complaints.decide_complaint(
        ctx,
        officer,
        uuid.UUID(rc.complaint_id),
        outcome=ComplaintOutcome.REVERSED,
        reasons="An art project; no support for violence.",
    )
    with ctx.sessions() as s:
        reinstate = s.scalar(
            select(PlatformAction.id).where(PlatformAction.decision_id == c.new_decision_id)
        )
    assert reinstate is not None
    assert platform.send_platform_action(ctx, reinstate) == "acknowledged"
    assert "Blue squares" in httpx.get(url).text
    with ctx.sessions() as s:
        post = s.scalar(select(DemoSitePost).where(DemoSitePost.slug == "blue-squares"))
        assert post is not None and post.state == "available"


def test_demo_site_refuses_unsigned_or_forged_webhooks(ctx: Context, live_site: str) -> None:
    seed(ctx)
    body = b'{"type": "content.restrict", "action": "remove", "content_url": "x/cooking-tips"}'
    hook = f"{live_site}/demo-site/webhook"
    assert httpx.post(hook, content=body).status_code == 401
    ts = int(time.time())
    forged = {"X-Cleanit-Timestamp": str(ts), "X-Cleanit-Signature": sign("wrong", ts, body)}
    assert httpx.post(hook, content=body, headers=forged).status_code == 401
    with ctx.sessions() as s:
        secret = s.scalar(select(Organisation.webhook_secret).where(Organisation.slug == PROVIDER))
    assert secret is not None
    stale = ts - 3600  # a replay of an old message
    old = {"X-Cleanit-Timestamp": str(stale), "X-Cleanit-Signature": sign(secret, stale, body)}
    assert httpx.post(hook, content=body, headers=old).status_code == 401
    good = {"X-Cleanit-Timestamp": str(ts), "X-Cleanit-Signature": sign(secret, ts, body)}
    assert httpx.post(hook, content=body, headers=good).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "ftp://example.org/hook",
    ],
)
def test_webhook_targets_on_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(url, allow_private=False)
