"""Statements of reasons to the DSA Transparency Database, against a local fake TDB
(tests/fakes/tdb_server.py, never the real service) and the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from cleanit.adapters import jobs
from cleanit.adapters.db.models import Case, Decision, Organisation, TdbSubmission
from cleanit.adapters.tdb_client import HttpTdbClient, TdbClient
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.errors import Conflict, Forbidden, NotFound
from cleanit.domain.notices import SourceType
from cleanit.domain.tdb import validate_statement
from cleanit.services import assessments, content, decisions, maintenance, notices, tdb
from cleanit.services.context import Context
from tests.fakes.tdb_server import TOKEN, FakeTdb
from tests.world import World, build_world, notice

# Planted in every personal field: none of them may reach a payload.
MARKERS = ("Marker Notifier Name", "marker-notifier@", "marker-uploader@", "marker-uploader-ref")


@pytest.fixture
def world(ctx: Context) -> World:
    w = build_world(ctx)
    enable(ctx, "host-a")
    return w


@pytest.fixture
def fake() -> Iterator[FakeTdb]:
    with FakeTdb() as f:
        yield f


@pytest.fixture
def client(fake: FakeTdb) -> Iterator[HttpTdbClient]:
    c = HttpTdbClient(fake.url, allow_private=True)  # the fake listens on 127.0.0.1
    yield c
    c.close()


def tokens(slug: str) -> str | None:
    return TOKEN if slug == "host-a" else None


def enable(ctx: Context, slug: str, on: bool = True) -> None:
    with ctx.transaction() as s:
        s.execute(update(Organisation).where(Organisation.slug == slug).values(tdb_enabled=on))


def decided(
    w: World,
    n: int,
    *,
    action: Action = Action.REMOVE,
    source: SourceType = SourceType.END_USER,
    notifier: str = "reporter",
    illegal: bool = False,
    **notice_fields: object,
) -> Decision:
    """A host-a case notified and decided with ``action`` (approved when it is wide)."""
    ctx = w.ctx
    url = f"https://host-a.example.org/v/tdb-{n}"
    content.register_content(
        ctx,
        w.p("admin"),
        url=url,
        uploader_ref="marker-uploader-ref",
        uploader_email="marker-uploader@users.example.net",
    )
    draft = notice(
        url,
        source=source,
        notifier_name="Marker Notifier Name",
        notifier_email="marker-notifier@public.example.net",
        **notice_fields,
    )
    case_id = notices.receive_notice(ctx, w.p(notifier), draft).case_ids[0]
    if illegal:
        a = assessments.assess(
            ctx,
            w.p("analyst"),
            case_id,
            AssessmentRequest(
                finding=Finding.ILLEGAL,
                explanation="Public provocation to an invented terrorist offence.",
                legal_provision_id=w.provision_id,
                exemption_considered=True,
            ),
        )
        assessments.confirm(ctx, w.p("analyst2"), a.id)
    else:
        a = assessments.assess(
            ctx,
            w.p("reviewer"),
            case_id,
            AssessmentRequest(
                finding=Finding.INCOMPATIBLE_WITH_TERMS,
                explanation="Praises an invented violent group.",
                terms_clause_version_id=w.clause_version_id,
            ),
        )
    d = decisions.decide_case(
        ctx,
        w.p("legal"),
        case_id,
        DecisionRequest(
            action=action,
            facts="The video shows the invented group's flag with a call to join.",
            assessment_id=a.id,
            justification="Removing single items has not stopped the repeated uploads."
            if action is Action.SUSPEND_ACCOUNT
            else None,
            territorial_scope=("DE", "AT") if action is Action.GEO_BLOCK else (),
            duration_days=30 if action is Action.SUSPEND_ACCOUNT else None,
        ),
    )
    if action is Action.SUSPEND_ACCOUNT:
        d = decisions.approve(ctx, w.p("legal2"), d.id)
    return d


def rows(ctx: Context, status: str | None = None) -> list[TdbSubmission]:
    with ctx.sessions() as s:
        q = select(TdbSubmission).order_by(TdbSubmission.id)
        if status:
            q = q.where(TdbSubmission.status == status)
        return list(s.scalars(q))


def copies(w: World, n: int) -> None:
    """``n`` more decisions in force like the first one, queued through the same hook."""
    ctx = w.ctx
    with ctx.transaction() as s:
        first = s.scalars(select(Decision).order_by(Decision.id)).first()
        assert first is not None
        case = s.get(Case, first.case_id)
        assert case is not None
        for _ in range(n):
            d = Decision(
                case_id=first.case_id,
                provider_id=first.provider_id,
                action=first.action,
                ground=first.ground,
                assessment_id=first.assessment_id,
                facts=first.facts,
                territorial_scope=[],
                automated_detection=False,
                automated_decision=first.automated_decision,
                status=first.status,
                in_force_at=first.in_force_at,
            )
            s.add(d)
            s.flush()
            tdb.queue_statement(s, ctx, d, case)


def submit(w: World, client: TdbClient) -> tdb.SubmitReport:
    return tdb.submit_pending(w.ctx, w.org_ids["host-a"], client, tokens)


# ------------------------------------------------------------------------------ queueing


def test_decisions_of_several_kinds_queue_valid_statements(world: World) -> None:
    decided(world, 1, action=Action.REMOVE)
    decided(world, 2, action=Action.GEO_BLOCK, source=SourceType.REFERRAL_UNIT, notifier="analyst")
    decided(
        world,
        3,
        action=Action.SUSPEND_ACCOUNT,
        illegal=True,
        source=SourceType.REFERRAL_UNIT,
        notifier="analyst",
    )
    decided(
        world,
        4,
        action=Action.DISABLE_ACCESS,
        source=SourceType.TRUSTED_FLAGGER,
        notifier="flagger",
        keywords=("KEYWORD_TERRORIST_CONTENT", "KEYWORD_INVENTED_THING"),
    )
    queued = rows(world.ctx)
    assert [r.status for r in queued] == ["queued"] * 4, [r.problems for r in queued]
    for r in queued:
        assert validate_statement(r.payload) == []
        assert r.puid == r.payload["puid"] == f"cleanit-host-a-{r.decision_id}"
    remove, geo, suspend, disable = (r.payload for r in queued)
    assert remove["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert remove["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert remove["source_type"] == "SOURCE_ARTICLE_16"
    assert geo["territorial_scope"] == ["AT", "DE"]
    assert geo["source_type"] == "SOURCE_TYPE_OTHER_NOTIFICATION"
    assert suspend["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert suspend["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert suspend["illegal_content_legal_ground"].startswith("Directive (EU) 2017/541")
    assert "end_date_account_restriction" in suspend
    assert disable["source_type"] == "SOURCE_TRUSTED_FLAGGER"
    assert disable["source_identity"] == "Org flagger"  # the organisation, never a person
    assert disable["category"] == "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    assert disable["category_specification"] == ["KEYWORD_TERRORIST_CONTENT", "KEYWORD_OTHER"]
    assert disable["category_specification_other"] == "invented thing"
    # Nothing is sent when the decision is taken: the sweep's job batches them.
    with world.ctx.sessions() as s:
        assert not s.scalar(
            select(jobs.JOBS_TABLE.c.id).where(jobs.JOBS_TABLE.c.task_name == jobs.SUBMIT_TDB)
        )


def test_providers_without_tdb_submission_queue_nothing(world: World) -> None:
    enable(world.ctx, "host-a", on=False)
    decided(world, 1)
    assert rows(world.ctx) == []


def test_no_personal_data_in_any_payload(world: World, fake: FakeTdb, client: TdbClient) -> None:
    decided(world, 1)
    decided(
        world,
        2,
        action=Action.SUSPEND_ACCOUNT,
        source=SourceType.TRUSTED_FLAGGER,
        notifier="flagger",
    )
    decided(
        world,
        3,
        action=Action.LABEL,
        illegal=True,
        source=SourceType.REFERRAL_UNIT,
        notifier="analyst",
    )
    submit(world, client)
    sent = [json.dumps(r.payload) for r in rows(world.ctx)]
    sent += [req.body.decode() for req in fake.requests]
    assert len(sent) == 4
    for text in sent:
        for marker in MARKERS:
            assert marker not in text
        assert "host-a.example.org/v/" not in text  # nor the content's address


def test_an_invalid_statement_is_rejected_in_plain_words(world: World) -> None:
    enable(world.ctx, "host-a", on=False)
    decided(world, 1)
    enable(world.ctx, "host-a")
    with world.ctx.transaction() as s:
        d = s.scalars(select(Decision)).one()
        d.facts = "F" * 6000  # longer than the TDB allows (5000)
        case = s.get(Case, d.case_id)
        assert case is not None
        assert tdb.queue_statement(s, world.ctx, d, case) is not None
    (r,) = rows(world.ctx)
    assert r.status == "rejected"
    assert r.problems is not None and r.problems[0]["field"] == "decision_facts"
    assert "longer than 5000 characters" in r.problems[0]["message"]
    listed, total = tdb.list_submissions(world.ctx, world.p("legal"), status="rejected")
    assert total == 1 and listed[0].problems == r.problems


# ------------------------------------------------------------------------------- sending


def test_the_fake_accepts_and_answers_are_recorded(
    world: World, fake: FakeTdb, client: TdbClient
) -> None:
    decided(world, 1)
    decided(world, 2, action=Action.RESTRICT_VISIBILITY)
    report = submit(world, client)
    assert (report.submitted, report.rejected, report.batches) == (2, 0, 1)
    done = rows(world.ctx)
    assert {r.status for r in done} == {"submitted"}
    for r in done:
        assert r.tdb_id and r.tdb_url and r.tdb_url.endswith(r.tdb_id)
        assert r.submitted_at is not None and r.attempts == 1
        assert fake.stored[r.puid]["uuid"] == r.tdb_id
    assert fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert submit(world, client).batches == 0  # nothing left


def test_250_statements_go_in_3_batches(world: World, fake: FakeTdb, client: TdbClient) -> None:
    decided(world, 1)
    copies(world, 249)
    seen: list[int] = []
    report = tdb.submit_pending(
        world.ctx, world.org_ids["host-a"], client, tokens, progress=seen.append
    )
    assert fake.calls == [100, 100, 50]
    assert seen == [100, 100, 50]
    assert (report.submitted, report.batches) == (250, 3)
    assert len(fake.stored) == 250


def test_one_bad_statement_is_split_out_and_the_others_go_through(
    world: World, fake: FakeTdb, client: TdbClient
) -> None:
    decided(world, 1)
    copies(world, 9)
    bad = rows(world.ctx)[6]
    with world.ctx.transaction() as s:  # forced past our validation: edit the stored payload
        row = s.get(TdbSubmission, bad.id)
        assert row is not None
        row.payload = {**row.payload, "decision_facts": "F" * 5001}
    report = submit(world, client)
    assert (report.submitted, report.rejected) == (9, 1)
    # 10 refused -> 5 stored + 5 refused -> 2 refused + 3 stored -> 1 stored + 1 refused
    assert fake.calls == [10, 5, 5, 2, 1, 1, 3]
    after = {r.id: r for r in rows(world.ctx)}
    assert after[bad.id].status == "rejected"
    assert after[bad.id].problems == [
        {
            "field": "decision_facts",
            "message": "decision_facts is longer than 5000 characters (5001)",
        }
    ]
    assert all(r.status == "submitted" for i, r in after.items() if i != bad.id)
    assert bad.puid not in fake.stored and len(fake.stored) == 9


def test_a_server_error_keeps_them_queued_and_the_job_retries(
    world: World, fake: FakeTdb, client: TdbClient
) -> None:
    decided(world, 1)
    fake.fail_next = [503]
    with pytest.raises(tdb.TdbFailed, match="HTTP 503"):
        submit(world, client)
    (r,) = rows(world.ctx)
    assert (r.status, r.attempts) == ("queued", 1)
    assert r.last_error is not None and "503" in r.last_error
    report = submit(world, client)  # procrastinate's retry
    assert report.submitted == 1
    (r,) = rows(world.ctx)
    assert (r.status, r.attempts, r.last_error) == ("submitted", 2, None)


def test_a_puid_already_stored_counts_as_submitted(
    world: World, fake: FakeTdb, client: TdbClient
) -> None:
    decided(world, 1)
    decided(world, 2)
    first = rows(world.ctx)[0]
    # Stored by an earlier call whose answer was lost.
    fake.stored[first.puid] = {**first.payload, "uuid": "earlier"}
    report = submit(world, client)
    assert report.submitted == 2
    assert {r.status for r in rows(world.ctx)} == {"submitted"}
    assert fake.calls == [2, 1]  # refused as a whole, then the new one alone


def test_a_missing_token_is_reported_and_retried(world: World, client: TdbClient) -> None:
    decided(world, 1)
    with pytest.raises(tdb.TdbFailed, match="no Transparency Database token"):
        tdb.submit_pending(world.ctx, world.org_ids["host-a"], client, lambda slug: None)
    (r,) = rows(world.ctx)
    assert r.status == "queued" and "token" in (r.last_error or "")


def test_a_wrong_token_is_not_a_rejection(world: World, client: TdbClient) -> None:
    decided(world, 1)
    with pytest.raises(tdb.TdbFailed, match="HTTP 401"):
        tdb.submit_pending(world.ctx, world.org_ids["host-a"], client, lambda slug: "wrong")
    assert rows(world.ctx)[0].status == "queued"


def test_the_sweep_defers_one_job_per_provider_with_queued_statements(world: World) -> None:
    decided(world, 1)
    decided(world, 2)
    assert maintenance.sweep(world.ctx).tdb_jobs_deferred == 1
    assert maintenance.sweep(world.ctx).tdb_jobs_deferred == 0  # the job is still to run
    with world.ctx.sessions() as s:
        args = s.scalars(
            select(jobs.JOBS_TABLE.c.args).where(jobs.JOBS_TABLE.c.task_name == jobs.SUBMIT_TDB)
        ).all()
    assert args == [{"provider_id": world.org_ids["host-a"]}]


# ------------------------------------------------------------------------- for people


def test_listing_and_retrying(world: World, fake: FakeTdb, client: TdbClient) -> None:
    decided(world, 1)
    decided(world, 2)
    bad = rows(world.ctx)[1]
    fake.refuse[bad.puid] = "The decision facts field is invalid."
    submit(world, client)
    listed, total = tdb.list_submissions(world.ctx, world.p("auditor"))
    assert total == 2 and [v.status for v in listed] == ["rejected", "submitted"]
    assert listed[0].problems == [
        {"field": "decision_facts", "message": "The decision facts field is invalid."}
    ]
    with pytest.raises(Forbidden):
        tdb.list_submissions(world.ctx, world.p("reviewer"))
    with pytest.raises(Forbidden):
        tdb.retry(world.ctx, world.p("auditor"), bad.id)
    with pytest.raises(NotFound):
        tdb.retry(world.ctx, world.p("other_admin"), bad.id)
    with pytest.raises(Conflict):
        tdb.retry(world.ctx, world.p("legal"), listed[1].id)  # already stored
    del fake.refuse[bad.puid]
    again = tdb.retry(world.ctx, world.p("legal"), bad.id)
    assert again.status == "queued" and again.problems == []
    assert submit(world, client).submitted == 1
    assert tdb.list_submissions(world.ctx, world.p("admin"), status="submitted")[1] == 2


def test_a_decision_that_restricts_nothing_is_skipped(world: World) -> None:
    url = "https://host-a.example.org/v/tdb-nothing"
    case_id = notices.receive_notice(world.ctx, world.p("reporter"), notice(url)).case_ids[0]
    decisions.decide_case(
        world.ctx,
        world.p("reviewer"),
        case_id,
        DecisionRequest(action=Action.NO_ACTION, facts="Satire about an invented film."),
    )
    (r,) = rows(world.ctx)
    assert (r.status, r.payload) == ("skipped", {})
    assert r.last_error is not None and "restricts nothing" in r.last_error
    with pytest.raises(Conflict):
        tdb.retry(world.ctx, world.p("legal"), r.id)


def test_the_worker_task_sends_with_the_configured_url_and_token(
    world: World, fake: FakeTdb, monkeypatch: pytest.MonkeyPatch
) -> None:
    import procrastinate
    from procrastinate.testing import InMemoryConnector

    from cleanit.workers.tasks import register

    monkeypatch.setenv("CLEANIT_TDB_URL", fake.url)
    monkeypatch.setenv("CLEANIT_TDB_TOKEN_HOST_A", TOKEN)
    world.ctx.allow_private_targets = True  # the fake listens on 127.0.0.1
    decided(world, 1)
    app = procrastinate.App(connector=InMemoryConnector())
    register(app, world.ctx)
    task = app.tasks[jobs.SUBMIT_TDB]
    assert task(provider_id=world.org_ids["host-a"]) == {"submitted": 1, "rejected": 0}
    assert len(fake.stored) == 1
