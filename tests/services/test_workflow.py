"""The whole notice-and-action path on a real PostgreSQL: notice → case → assessment →
decision → statement of reasons → messages and platform action → complaint → reversal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from cleanit.adapters.db.models import (
    Case,
    ContentItem,
    Decision,
    Message,
    Notice,
    PlatformAction,
    Statement,
)
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PrincipleViolation,
    Unauthenticated,
)
from cleanit.domain.notices import SourceType
from cleanit.services import (
    assessments,
    cases,
    complaints,
    content,
    decisions,
    notices,
    outbox,
    platform,
)
from cleanit.services.context import Context
from tests.conftest import RecordingWebhooks
from tests.world import World, build_world, notice


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def jobs_for(ctx: Context, task: str) -> list[dict[str, int]]:
    with ctx.sessions() as s:
        rows = (
            s.execute(
                text("SELECT args FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"),
                {"t": task},
            )
            .scalars()
            .all()
        )
    return list(rows)


def run_jobs(ctx: Context) -> None:
    """Run every deferred message and platform job through the same service as the worker."""
    with ctx.sessions() as s:
        rows = s.execute(
            text(
                "SELECT id, task_name, args FROM procrastinate_jobs "
                "WHERE status = 'todo' ORDER BY id"
            )
        ).all()
        s.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE status = 'todo'"))
        s.commit()
    for _id, task, args in rows:
        if task == "outbox.deliver":
            outbox.deliver_message(ctx, args["message_id"])
        elif task == "platform.send_action":
            platform.send_platform_action(ctx, args["platform_action_id"])


def test_notice_is_acknowledged_and_opens_one_case_per_content(world: World) -> None:
    ctx = world.ctx
    r1 = notices.receive_notice(ctx, world.p("flagger"), notice(source=SourceType.TRUSTED_FLAGGER))
    r2 = notices.receive_notice(
        ctx,
        world.p("analyst"),
        notice("HTTPS://Host-A.example.org:443/v/1/", source=SourceType.REFERRAL_UNIT),
    )
    assert r1.case_ids == r2.case_ids  # same content (canonical URL) → same case
    assert r1.tracking_code != r2.tracking_code
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        case = s.scalar(select(Case))
        assert case is not None and case.priority == 20  # trusted flagger / referral unit
    # The acknowledgement was queued with its delivery job in the same transaction.
    assert len(jobs_for(ctx, "outbox.deliver")) == 2
    run_jobs(ctx)
    mails = list((ctx.mailer.directory).rglob("*.eml"))  # type: ignore[attr-defined]
    assert len(mails) == 2
    assert r1.tracking_code in mails[0].read_text() or r1.tracking_code in mails[1].read_text()


def test_priority_puts_referrals_before_public_reports(world: World) -> None:
    ctx = world.ctx
    notices.receive_notice(
        ctx,
        world.p("reporter"),
        notice("https://host-a.example.org/v/9", source=SourceType.END_USER),
    )
    notices.receive_notice(
        ctx,
        world.p("analyst"),
        notice("https://host-a.example.org/v/2", source=SourceType.REFERRAL_UNIT),
    )
    queue, total = cases.list_cases(ctx, world.p("reviewer"))
    assert total == 2
    assert [c.priority for c in queue] == [20, 50]


def test_idempotency_key_never_creates_a_second_notice(world: World) -> None:
    ctx = world.ctx
    a = notices.receive_notice(
        ctx, world.p("flagger"), notice(source=SourceType.TRUSTED_FLAGGER), idempotency_key="k-1"
    )
    b = notices.receive_notice(
        ctx, world.p("flagger"), notice(source=SourceType.TRUSTED_FLAGGER), idempotency_key="k-1"
    )
    assert a == b
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 1
    with pytest.raises(Conflict):
        notices.receive_notice(
            ctx,
            world.p("flagger"),
            notice("https://host-a.example.org/v/other", source=SourceType.TRUSTED_FLAGGER),
            idempotency_key="k-1",
        )


def test_unknown_provider_stores_nothing(world: World) -> None:
    with pytest.raises(InvalidInput) as exc:
        notices.receive_notice(
            world.ctx,
            world.p("flagger"),
            notice(provider="nobody", source=SourceType.TRUSTED_FLAGGER),
        )
    assert exc.value.field == "provider"
    with world.ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 0
        assert s.scalar(select(func.count()).select_from(Case)) == 0


def _terms_decision(
    world: World, case_id: int, action: Action = Action.REMOVE, who: str = "reviewer", **kw: object
) -> Decision:
    a = assessments.assess(
        world.ctx,
        world.p(who),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Praises an invented violent group.",
            terms_clause_version_id=world.clause_version_id,
        ),
    )
    return decisions.decide_case(
        world.ctx,
        world.p(who),
        case_id,
        DecisionRequest(
            action=action,
            facts="The video shows the group's flag with a call to join.",
            assessment_id=a.id,
            **kw,
        ),
    )  # type: ignore[arg-type]


def test_full_path_from_notice_to_reinstatement(
    world: World, webhooks: RecordingWebhooks, mailbox: Path
) -> None:
    ctx = world.ctx
    url = "https://host-a.example.org/v/42"
    content.register_content(
        ctx,
        world.p("admin"),
        url=url,
        uploader_ref="u42",
        uploader_email="uploader@users.example.net",
    )
    receipt = notices.receive_notice(ctx, world.p("reporter"), notice(url))
    case_id = receipt.case_ids[0]
    cases.assign(ctx, world.p("reviewer"), case_id, None)
    d = _terms_decision(world, case_id)
    assert d.status == "in_force"
    with ctx.sessions() as s:
        st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        assert st is not None
        body = st.body
        # Every DSA Art 17(3) element is present.
        assert body["restriction"]["action"] == "remove"
        assert body["facts_and_circumstances"]["facts"].startswith("The video")
        assert body["automated_means"] == {
            "automated_detection": False,
            "automated_decision": "not_automated",
        }
        assert "violent-extremism" in body["contractual_ground"]
        assert "version 1" in body["contractual_ground"]
        assert body["redress"]["internal_complaint"]["url"].startswith("http://testserver/")
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "actioned"
    run_jobs(ctx)
    # The platform was told, and its 200 counts as acknowledgement.
    assert len(webhooks.sent) == 1
    sent = json.loads(webhooks.sent[0][1])
    assert sent["type"] == "content.restrict" and sent["action"] == "remove"
    with ctx.sessions() as s:
        assert s.scalar(select(ContentItem.platform_state)) == "remove"
    # The content provider got the statement; the notifier got the outcome.
    sor_mail = next((mailbox / "uploader@users.example.net").glob("*.eml")).read_text()
    assert "Statement of reasons" in sor_mail
    outcome_mails = [p.read_text() for p in (mailbox / "pat@public.example.net").glob("*.eml")]
    assert any("remove" in m for m in outcome_mails)
    # The content provider complains through the link in the statement.
    link = body["redress"]["internal_complaint"]["url"]
    statement_id = link.split("statement=")[1].split("&")[0]
    code = link.split("code=")[1]
    import uuid

    with pytest.raises(Unauthenticated):  # a wrong code is refused
        complaints.lodge_complaint(
            ctx,
            grounds="This is satire about a fictional film.",
            statement_id=uuid.UUID(statement_id),
            code="wrong",
        )
    rc = complaints.lodge_complaint(
        ctx,
        grounds="This is satire about a fictional film.",
        statement_id=uuid.UUID(statement_id),
        code=code,
        contact_email="uploader@users.example.net",
    )
    # The reviewer who decided cannot decide the complaint — not even with the right role.
    with pytest.raises((PrincipleViolation, Forbidden)):
        complaints.decide_complaint(
            ctx,
            world.p("reviewer"),
            uuid.UUID(rc.complaint_id),
            outcome=ComplaintOutcome.REVERSED,
            reasons="Looks fine now.",
        )
    c = complaints.decide_complaint(
        ctx,
        world.p("complaints"),
        uuid.UUID(rc.complaint_id),
        outcome=ComplaintOutcome.REVERSED,
        reasons="Satire of a fictional film; no support for violence.",
    )
    assert c.outcome == "reversed" and c.new_decision_id is not None
    with ctx.sessions() as s:
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "no_action"
        old = s.get(Decision, d.id)
        assert old is not None and old.status == "superseded"
        new_statement = s.scalar(
            select(Statement).where(Statement.decision_id == c.new_decision_id)
        )
        assert new_statement is not None
        assert new_statement.body["replaces_decision_id"] == d.id
    run_jobs(ctx)
    assert json.loads(webhooks.sent[-1][1])["type"] == "content.reinstate"
    with ctx.sessions() as s:
        assert s.scalar(select(ContentItem.platform_state)) == "available"
        assert {p.kind for p in s.scalars(select(PlatformAction))} == {"restrict", "reinstate"}
        assert all(p.status == "acknowledged" for p in s.scalars(select(PlatformAction)))


def test_wide_action_needs_justification_and_a_second_person(world: World) -> None:
    ctx = world.ctx
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice()).case_ids[0]
    with pytest.raises(PrincipleViolation) as exc:
        _terms_decision(world, case_id, Action.SUSPEND_ACCOUNT)
    assert exc.value.field == "justification"
    d = decisions.decide_case(
        ctx,
        world.p("legal"),
        case_id,
        DecisionRequest(
            action=Action.SUSPEND_ACCOUNT,
            facts="Third upload of the same material this week.",
            assessment_id=_assessment(world, case_id),
            justification="Removing single items has not stopped repeated uploads of it.",
        ),
    )
    assert d.status == "awaiting_approval"
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Statement)) == 0
        assert s.scalar(select(func.count()).select_from(PlatformAction)) == 0
    with pytest.raises(PrincipleViolation):
        decisions.approve(ctx, world.p("legal"), d.id)  # the proposer cannot approve
    approved = decisions.approve(ctx, world.p("legal2"), d.id)
    assert approved.status == "in_force" and approved.approved_by == world.user_ids["legal2"]


def _assessment(world: World, case_id: int) -> int:
    return assessments.assess(
        world.ctx,
        world.p("legal"),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Repeated extremist uploads.",
            terms_clause_version_id=world.clause_version_id,
        ),
    ).id


def test_legal_basis_rule(world: World) -> None:
    ctx = world.ctx
    case_id = notices.receive_notice(
        ctx, world.p("analyst"), notice(source=SourceType.REFERRAL_UNIT)
    ).case_ids[0]
    # A company never records "illegal".
    with pytest.raises(Forbidden):
        assessments.assess(
            ctx,
            world.p("reviewer"),
            case_id,
            AssessmentRequest(
                finding=Finding.ILLEGAL,
                explanation="Looks illegal to me.",
                legal_provision_id=world.provision_id,
                exemption_considered=True,
            ),
        )
    # A referral unit never records "incompatible with terms".
    with pytest.raises(Forbidden):
        assessments.assess(
            ctx,
            world.p("analyst"),
            case_id,
            AssessmentRequest(
                finding=Finding.INCOMPATIBLE_WITH_TERMS,
                explanation="Against their terms.",
                terms_clause_version_id=world.clause_version_id,
            ),
        )
    a = assessments.assess(
        ctx,
        world.p("analyst"),
        case_id,
        AssessmentRequest(
            finding=Finding.ILLEGAL,
            explanation="Public provocation under Art 5.",
            legal_provision_id=world.provision_id,
            exemption_considered=True,
        ),
    )
    assert a.status == "proposed"
    # Until a second person confirms, it cannot ground a restriction.
    with pytest.raises(PrincipleViolation):
        decisions.decide_case(
            ctx,
            world.p("reviewer"),
            case_id,
            DecisionRequest(
                action=Action.REMOVE, facts="Referral confirmed illegal.", assessment_id=a.id
            ),
        )
    with pytest.raises(PrincipleViolation):
        assessments.confirm(ctx, world.p("analyst"), a.id)  # not the author
    assessments.confirm(ctx, world.p("analyst2"), a.id)
    d = decisions.decide_case(
        ctx,
        world.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.DISABLE_ACCESS,
            facts="Referral confirmed illegal.",
            assessment_id=a.id,
            territorial_scope=("DE",),
        ),
    )
    assert d.ground == "illegal_content"
    with ctx.sessions() as s:
        st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        assert st is not None and "Directive (EU) 2017/541, Art 5" in st.body["legal_ground"]


def test_terms_decision_must_cite_the_version_in_force(world: World) -> None:
    from cleanit.services import registries

    ctx = world.ctx
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice()).case_ids[0]
    registries.publish_terms_clause(
        ctx,
        world.p("legal"),
        key="violent-extremism",
        title="Violent extremism",
        text="Version two: no support for violent extremism.",
    )
    with pytest.raises(InvalidInput) as exc:
        _terms_decision(world, case_id)
    assert "v2" in exc.value.detail


def test_restriction_without_basis_is_refused(world: World) -> None:
    ctx = world.ctx
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice()).case_ids[0]
    with pytest.raises(PrincipleViolation):
        decisions.decide_case(
            ctx,
            world.p("reviewer"),
            case_id,
            DecisionRequest(action=Action.REMOVE, facts="I do not like this video."),
        )
    d = decisions.decide_case(
        ctx,
        world.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.NO_ACTION, facts="Newsworthy reporting on a fictional event."
        ),
    )
    assert d.status == "in_force"
    with pytest.raises(IllegalTransition):  # decided cases are not decided again
        decisions.decide_case(
            ctx,
            world.p("reviewer"),
            case_id,
            DecisionRequest(action=Action.NO_ACTION, facts="Decided twice by mistake."),
        )


def test_notifier_complaint_on_no_action_reopens_the_case(world: World) -> None:
    ctx = world.ctx
    r = notices.receive_notice(ctx, world.p("reporter"), notice())
    decisions.decide_case(
        ctx,
        world.p("reviewer"),
        r.case_ids[0],
        DecisionRequest(
            action=Action.NO_ACTION, facts="Documentary footage, no praise of violence."
        ),
    )
    rc = complaints.lodge_complaint(
        ctx, grounds="You missed the call to violence at 2:10.", tracking_code=r.tracking_code
    )
    import uuid

    complaints.decide_complaint(
        ctx,
        world.p("complaints"),
        uuid.UUID(rc.complaint_id),
        outcome=ComplaintOutcome.REVERSED,
        reasons="The call to violence at 2:10 was missed.",
    )
    with ctx.sessions() as s:
        assert s.scalar(select(Case.state)) == "open"


def test_complaint_window_closes(world: World) -> None:
    from datetime import timedelta

    ctx = world.ctx
    r = notices.receive_notice(ctx, world.p("reporter"), notice())
    decisions.decide_case(
        ctx,
        world.p("reviewer"),
        r.case_ids[0],
        DecisionRequest(
            action=Action.NO_ACTION, facts="Documentary footage, no praise of violence."
        ),
    )
    later = ctx.now() + timedelta(days=200)
    ctx.clock = lambda: later
    with pytest.raises(PrincipleViolation) as exc:
        complaints.lodge_complaint(
            ctx, grounds="Too late, but still wrong.", tracking_code=r.tracking_code
        )
    assert "window" in exc.value.detail


def test_webhook_failure_keeps_the_action_pending_and_raises_for_retry(
    world: World, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice()).case_ids[0]
    _terms_decision(world, case_id)
    webhooks.fail_with = ConnectionError("platform down")
    with ctx.sessions() as s:
        pa_id = s.scalar(select(PlatformAction.id))
    assert pa_id is not None
    with pytest.raises(platform.WebhookFailed):
        platform.send_platform_action(ctx, pa_id)
    with ctx.sessions() as s:
        pa = s.get(PlatformAction, pa_id)
        assert pa is not None and pa.status == "pending" and pa.attempts == 1
        assert "platform down" in (pa.last_error or "")
    webhooks.fail_with = None
    webhooks.status = 202  # accepted: the platform will confirm later
    assert platform.send_platform_action(ctx, pa_id) == "delivered"
    with ctx.sessions() as s:
        pa = s.get(PlatformAction, pa_id)
        assert pa is not None
        public_id = pa.public_id
        assert s.scalar(select(ContentItem.platform_state)) == "available"  # not done yet
    with pytest.raises(NotFound):  # another provider cannot acknowledge (nor see) it
        platform.acknowledge(ctx, world.p("other_admin"), public_id)
    platform.acknowledge(ctx, world.p("admin"), public_id)
    with ctx.sessions() as s:
        assert s.scalar(select(ContentItem.platform_state)) == "remove"


def test_messages_survive_a_failing_mailer(world: World) -> None:
    ctx = world.ctx

    class Broken:
        def send(self, **_: object) -> None:
            raise OSError("smtp down")

    ctx.mailer = Broken()
    notices.receive_notice(ctx, world.p("reporter"), notice())
    with ctx.sessions() as s:
        mid = s.scalar(select(Message.id))
    assert mid is not None
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver_message(ctx, mid)
    with ctx.sessions() as s:
        m = s.get(Message, mid)
        assert m is not None and m.status == "pending" and m.attempts == 1
