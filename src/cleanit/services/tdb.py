"""Statements of reasons to the DSA Transparency Database (DSA Art 24(5)).

When a decision is put in force for a provider with ``tdb_enabled``, its TDB statement is
built (``domain.tdb.statement_payload``), checked (``validate_statement``) and stored as a
``TdbSubmission``: ``queued`` when acceptable, ``rejected`` with the problems in plain words
when not (a person reads them in the API list), ``skipped`` when the decision restricts
nothing. The periodic sweep defers a ``tdb.submit_batch`` job for providers with queued
statements; the job (or ``cleanit tdb submit``) sends them in batches of at most 100.

The TDB stores a batch only as a whole, answering ``201``. A ``422`` naming ``existing_puids``
means those statements were stored before (our ``puid`` is the idempotency key): they count as
submitted and the rest is sent again. Any other ``422`` is split in two until the statement
the TDB refuses is alone; it ends ``rejected`` with the TDB's reasons and the others go
through. Anything else (5xx, 429, a network failure, a refused token) leaves the statements
queued and raises ``TdbFailed`` so the job is retried with back-off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    Assessment,
    Case,
    ContentItem,
    Decision,
    Notice,
    NoticeCase,
    Organisation,
    TdbSubmission,
)
from cleanit.adapters.tdb_client import (
    MAX_BATCH,
    HttpTdbClient,
    TdbClient,
    TdbUnavailable,
    env_tokens,
)
from cleanit.domain.decisions import Action, AutomatedDecision, Ground
from cleanit.domain.errors import Conflict, InvalidInput, NotFound
from cleanit.domain.notices import Category, SourceType
from cleanit.domain.roles import Permission, Principal
from cleanit.domain.tdb import (
    CATEGORY_SPECIFICATION,
    CONTENT_TYPE_OTHER,
    KEYWORD_OTHER,
    KEYWORD_TERRORIST_CONTENT,
    NoStatement,
    TdbInput,
    TdbProblem,
    statement_payload,
    validate_statement,
)
from cleanit.services import audit
from cleanit.services.assessments import basis_reference
from cleanit.services.authz import require
from cleanit.services.context import Context
from cleanit.settings import Settings

QUEUED, SUBMITTED, REJECTED, SKIPPED = "queued", "submitted", "rejected", "skipped"
STATUSES = (QUEUED, SUBMITTED, REJECTED, SKIPPED)

# Which notice decides the statement's source when several notified the same content.
_SOURCE_ORDER = (
    SourceType.AUTHORITY_NOTICE,
    SourceType.REFERRAL_UNIT,
    SourceType.TRUSTED_FLAGGER,
    SourceType.END_USER,
    SourceType.AUTOMATED_DETECTION,
    SourceType.OWN_INITIATIVE,
)
# cleanit does not record what kind of content an item is (video, image, text).
CONTENT_TYPE_UNKNOWN = "content type not recorded by the moderation system"

TokenSource = Callable[[str], str | None]


class TdbFailed(Exception):
    """Raised inside the job so procrastinate retries it with back-off."""


# ------------------------------------------------------------------------------- queueing


def _problems(problems: Iterable[TdbProblem]) -> list[dict[str, str]]:
    return [{"field": p.field, "message": p.message} for p in problems]


def _keywords(notices: list[Notice]) -> tuple[tuple[str, ...], str | None]:
    """The notices' keywords the validator knows; others become KEYWORD_OTHER, named."""
    given = list(dict.fromkeys(k for n in notices for k in n.keywords))
    known = [k for k in given if k in CATEGORY_SPECIFICATION and k != KEYWORD_OTHER]
    unknown = [k for k in given if k not in known]
    if not unknown:
        return tuple(known), None
    other = ", ".join(k.removeprefix("KEYWORD_").replace("_", " ").lower() for k in unknown)
    return (*known, KEYWORD_OTHER), other[:500]


def statement_input(s: Session, d: Decision, case: Case) -> TdbInput:
    """Everything the TDB statement of ``d`` is built from (personal fields included: the
    domain never copies them into the payload)."""
    if d.action == Action.NO_ACTION.value:  # before looking for a basis it does not need
        raise NoStatement(f"decision {d.id} restricts nothing: no TDB statement")
    provider = s.get(Organisation, d.provider_id)
    item = s.get(ContentItem, case.content_item_id)
    assert provider is not None and item is not None
    replaces = s.get(Decision, d.replaces_id) if d.replaces_id else None
    basis_id = d.assessment_id or (replaces.assessment_id if replaces else None)
    basis = s.get(Assessment, basis_id) if basis_id else None
    if basis is None:
        raise NoStatement(f"decision {d.id} has no assessment to state as its ground")
    reference, url = basis_reference(s, basis)
    ground = (
        Ground(d.ground)
        if d.ground
        else (Ground.ILLEGAL_CONTENT if basis.legal_provision_id else Ground.INCOMPATIBLE_CONTENT)
    )
    notices = list(
        s.scalars(
            select(Notice)
            .join(NoticeCase, NoticeCase.notice_id == Notice.id)
            .where(NoticeCase.case_id == case.id)
            .order_by(Notice.id)
        )
    )
    kinds = {n.source_type for n in notices}
    source = next((st for st in _SOURCE_ORDER if st.value in kinds), None)
    flagger = None
    if source is SourceType.TRUSTED_FLAGGER:
        org_id = next((n.notifier_org_id for n in notices if n.source_type == source.value), None)
        org = s.get(Organisation, org_id) if org_id else None
        flagger = org.name if org else None
    first = next((n for n in notices if source and n.source_type == source.value), None)
    try:
        category = Category(case.category)
    except ValueError:
        category = Category.NOT_SPECIFIED_NOTICE
    keywords, keywords_other = _keywords(notices)
    in_force = d.in_force_at or d.created_at
    return TdbInput(
        decision_id=d.id,
        provider=provider.slug,
        action=Action(d.action),
        ground=ground,
        basis_reference=reference,
        basis_explanation=basis.explanation,
        facts=d.facts,
        source=source,
        category=category,
        content_date=item.created_at.date(),
        application_date=in_force.date(),
        keywords=keywords,
        keywords_other=keywords_other,
        terrorist_content=KEYWORD_TERRORIST_CONTENT in keywords,
        territorial_scope=tuple(d.territorial_scope),
        content_types=(CONTENT_TYPE_OTHER,),
        content_type_other=CONTENT_TYPE_UNKNOWN,
        automated_detection=d.automated_detection,
        automated_decision=AutomatedDecision(d.automated_decision),
        end_date=(in_force + timedelta(days=d.duration_days)).date() if d.duration_days else None,
        basis_url=url,
        flagger_organisation=flagger,
        notifier_name=first.notifier_name if first else None,
        notifier_email=first.notifier_email if first else None,
        content_url=item.url,
        uploader=item.uploader_email or item.uploader_ref,
    )


def queue_statement(s: Session, ctx: Context, d: Decision, case: Case) -> TdbSubmission | None:
    """Called when ``d`` is put in force: the provider's TDB statement, checked and queued.

    Nothing is sent here (the sweep's job batches them); nothing at all for providers that
    have not enabled TDB submission.
    """
    provider = s.get(Organisation, d.provider_id)
    assert provider is not None
    if not provider.tdb_enabled:
        return None
    row = TdbSubmission(
        decision_id=d.id,
        provider_id=d.provider_id,
        status=QUEUED,
        attempts=0,
        created_at=ctx.now(),
    )
    try:
        row.payload = statement_payload(statement_input(s, d, case))
        problems = validate_statement(row.payload)
    except NoStatement as exc:
        row.payload, row.status, row.last_error = {}, SKIPPED, str(exc)
        problems = []
    row.puid = row.payload.get("puid") or f"skipped:{d.id}"  # never a valid puid
    if problems:
        row.status, row.problems = REJECTED, _problems(problems)
        row.last_error = "the statement does not meet the Transparency Database's rules"
    s.add(row)
    s.flush()
    return row


# -------------------------------------------------------------------------------- sending


@dataclass
class SubmitReport:
    submitted: int = 0
    rejected: int = 0
    batches: int = 0  # calls made to the TDB
    errors: list[str] = field(default_factory=list)


def _error_text(answer_body: Any, fallback: str) -> list[dict[str, str]]:
    """The TDB's reasons, in plain words: ``{"errors": {"statement_0": {field: [msg]}}}``,
    ``{"errors": {field: [msg]}}`` or ``{"message": ...}``."""
    out: list[dict[str, str]] = []
    if isinstance(answer_body, dict):
        errors = answer_body.get("errors")
        if isinstance(errors, dict):
            for key, value in errors.items():
                nested = value if isinstance(value, dict) else {key: value}
                for name, messages in nested.items():
                    texts = messages if isinstance(messages, list) else [messages]
                    out.extend({"field": str(name), "message": str(m)} for m in texts)
        if not out and isinstance(answer_body.get("message"), str):
            out.append({"field": "", "message": answer_body["message"]})
    return out or [{"field": "", "message": fallback}]


def _existing_puids(answer_body: Any) -> set[str]:
    errors = answer_body.get("errors") if isinstance(answer_body, dict) else None
    found = errors.get("existing_puids") if isinstance(errors, dict) else None
    return {str(p) for p in found} if isinstance(found, list) else set()


class _Sender:
    """One provider's batch: sends, splits on refusal, records each statement's outcome."""

    def __init__(self, ctx: Context, client: TdbClient, token: str, report: SubmitReport):
        self.ctx, self.client, self.token, self.report = ctx, client, token, report

    def _submitted(self, row: TdbSubmission, stored: dict[str, Any] | None) -> None:
        row.status, row.submitted_at, row.last_error, row.problems = (
            SUBMITTED,
            self.ctx.now(),
            None,
            None,
        )
        if stored:
            row.tdb_id = str(stored.get("uuid") or stored.get("id") or "")[:64] or None
            link = stored.get("permalink") or stored.get("self")
            row.tdb_url = str(link)[:2048] if link else None
        self.report.submitted += 1

    def send(self, rows: list[TdbSubmission]) -> None:
        """Raises TdbFailed on an answer that retrying may cure; rows not done stay queued."""
        if not rows:
            return
        for row in rows:
            row.attempts += 1
        self.report.batches += 1
        try:
            answer = self.client.submit([r.payload for r in rows], token=self.token)
        except TdbUnavailable as exc:
            self._failed(rows, str(exc))
        if answer.status == 201:
            stored = answer.body.get("statements") if isinstance(answer.body, dict) else None
            by_puid = {str(st.get("puid")): st for st in stored or [] if isinstance(st, dict)}
            for row in rows:
                self._submitted(row, by_puid.get(row.puid))
            return
        if answer.status == 422:
            existing = _existing_puids(answer.body) & {r.puid for r in rows}
            if existing:  # stored by an earlier call whose answer we never saw
                for row in rows:
                    if row.puid in existing:
                        self._submitted(row, None)
                self.send([r for r in rows if r.puid not in existing])
                return
            if len(rows) == 1:
                row = rows[0]
                row.status = REJECTED
                row.problems = _error_text(answer.body, f"HTTP 422: {answer.text[:300]}")
                row.last_error = "the Transparency Database refused the statement"
                self.report.rejected += 1
                return
            half = len(rows) // 2  # find the refused statement(s): the rest goes through
            self.send(rows[:half])
            self.send(rows[half:])
            return
        detail = _error_text(answer.body, answer.text[:300])[0]["message"]
        self._failed(rows, f"HTTP {answer.status}: {detail}"[:2000])

    def _failed(self, rows: list[TdbSubmission], message: str) -> NoReturn:
        for row in rows:
            row.last_error = message
        raise TdbFailed(message)


def _queued(s: Session, provider_id: int, limit: int) -> list[TdbSubmission]:
    return list(
        s.scalars(
            select(TdbSubmission)
            .where(TdbSubmission.provider_id == provider_id, TdbSubmission.status == QUEUED)
            .order_by(TdbSubmission.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def queued_count(ctx: Context, provider_id: int) -> int:
    with ctx.sessions() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(TdbSubmission)
                .where(TdbSubmission.provider_id == provider_id, TdbSubmission.status == QUEUED)
            )
            or 0
        )


def status_counts(ctx: Context, provider_id: int) -> dict[str, int]:
    with ctx.sessions() as s:
        found = dict(
            s.execute(
                select(TdbSubmission.status, func.count())
                .where(TdbSubmission.provider_id == provider_id)
                .group_by(TdbSubmission.status)
            ).all()
        )
    return {status: int(found.get(status, 0)) for status in STATUSES}


def submit_pending(
    ctx: Context,
    provider_id: int,
    client: TdbClient,
    tokens: TokenSource,
    *,
    batch_size: int = MAX_BATCH,
    progress: Callable[[int], None] | None = None,
) -> SubmitReport:
    """Send the provider's queued statements, ``batch_size`` (at most 100) per call, until
    none is left. Each batch is its own transaction: what was stored stays recorded when a
    later batch fails. Raises TdbFailed (after recording it) when the TDB must be retried.
    ``progress`` is told how many statements each batch settled."""
    batch_size = max(1, min(batch_size, MAX_BATCH))
    report = SubmitReport()
    with ctx.sessions() as s:
        provider = s.get(Organisation, provider_id)
        if provider is None:
            raise NotFound("no such organisation")
        slug = provider.slug
    token = tokens(slug)
    while True:
        failure: TdbFailed | None = None
        with ctx.transaction() as s:
            rows = _queued(s, provider_id, batch_size)
            if not rows:
                return report
            if token is None:
                message = f"no Transparency Database token is configured for {slug}"
                for row in rows:
                    row.last_error = message
                failure = TdbFailed(message)
            else:
                before = report.submitted + report.rejected
                try:
                    _Sender(ctx, client, token, report).send(rows)
                except TdbFailed as exc:
                    failure = exc
                if progress is not None:
                    progress(report.submitted + report.rejected - before)
        if failure is not None:  # committed above: the stored ones stay stored
            report.errors.append(str(failure))
            raise failure


def submit_configured(
    ctx: Context,
    provider_id: int,
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
) -> SubmitReport:
    """``submit_pending`` over HTTP to the configured TDB, with the provider's token from the
    environment variable ``settings.tdb_token_env`` names (the CLI and the worker job)."""
    client = HttpTdbClient(
        settings.tdb_url,
        timeout=settings.tdb_timeout_seconds,
        allow_private=ctx.allow_private_targets,
    )
    try:
        return submit_pending(
            ctx, provider_id, client, env_tokens(settings.tdb_token_env), progress=progress
        )
    finally:
        client.close()


def providers_with_queued(s: Session) -> list[int]:
    """Providers (with TDB submission on) that have statements waiting and no job for them."""
    return list(
        s.scalars(
            select(Organisation.id).where(
                Organisation.tdb_enabled.is_(True),
                select(TdbSubmission.id)
                .where(
                    TdbSubmission.provider_id == Organisation.id,
                    TdbSubmission.status == QUEUED,
                )
                .exists(),
                ~jobs.pending_job_exists(jobs.SUBMIT_TDB, "provider_id", Organisation.id),
            )
        )
    )


def defer_batches(s: Session) -> int:
    """The sweep's trigger: one submission job per provider with queued statements."""
    ids = providers_with_queued(s)
    jobs.defer_many(s, jobs.SUBMIT_TDB, [{"provider_id": pid} for pid in ids])
    return len(ids)


# --------------------------------------------------------------------------- for people


def set_enabled(ctx: Context, principal: Principal, enabled: bool) -> None:
    """Turn TDB submission on or off for the caller's organisation (a hosting provider)."""
    require(principal, Permission.MANAGE_ORGANISATION)
    with ctx.transaction() as s:
        org = s.get(Organisation, principal.organisation_id, with_for_update=True)
        if org is None:
            raise NotFound("no such organisation")
        if org.kind != "hosting_provider":
            raise InvalidInput(
                "only hosting providers submit statements of reasons", field="organisation"
            )
        if org.tdb_enabled == enabled:
            return
        org.tdb_enabled = enabled
        audit.record(
            s,
            principal,
            "tdb.enabled" if enabled else "tdb.disabled",
            "organisation",
            org.id,
            organisation_id=org.id,
            at=ctx.now(),
        )


@dataclass(frozen=True)
class SubmissionView:
    id: int
    decision_id: int
    puid: str
    status: str
    attempts: int
    last_error: str | None
    problems: list[dict[str, str]]
    tdb_id: str | None
    tdb_url: str | None
    created_at: Any
    submitted_at: Any
    payload: dict[str, Any]


def _view(row: TdbSubmission) -> SubmissionView:
    return SubmissionView(
        id=row.id,
        decision_id=row.decision_id,
        puid=row.puid,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        problems=list(row.problems or []),
        tdb_id=row.tdb_id,
        tdb_url=row.tdb_url,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        payload=dict(row.payload),
    )


def list_submissions(
    ctx: Context,
    principal: Principal,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SubmissionView], int]:
    """The caller's organisation's statements and where each stands, newest first."""
    require(principal, Permission.READ_TDB)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    where = [TdbSubmission.provider_id == principal.organisation_id]
    if status is not None:
        where.append(TdbSubmission.status == status)
    with ctx.sessions() as s:
        total = s.scalar(select(func.count()).select_from(TdbSubmission).where(*where)) or 0
        rows = s.scalars(
            select(TdbSubmission)
            .where(*where)
            .order_by(TdbSubmission.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        return [_view(r) for r in rows], total


def retry(ctx: Context, principal: Principal, submission_id: int) -> SubmissionView:
    """Build a refused statement again from its decision (its data may have been put
    right) and queue it when it is now acceptable; a queued one is sent at once."""
    require(principal, Permission.SUBMIT_TDB)
    with ctx.transaction() as s:
        row = s.get(TdbSubmission, submission_id, with_for_update=True)
        if row is None or row.provider_id != principal.organisation_id:
            raise NotFound("no such Transparency Database submission")
        if row.status == SUBMITTED:
            raise Conflict("this statement is already stored in the Transparency Database")
        if row.status == SKIPPED:
            raise Conflict("this decision restricts nothing: no statement is due")
        if row.status == REJECTED:
            d = s.get(Decision, row.decision_id)
            case = s.get(Case, d.case_id) if d else None
            assert d is not None and case is not None
            payload = statement_payload(statement_input(s, d, case))
            problems = validate_statement(payload)
            row.payload, row.puid = payload, payload["puid"]
            if problems:
                row.problems = _problems(problems)
                return _view(row)
            row.status, row.problems, row.last_error, row.attempts = QUEUED, None, None, 0
        audit.record(
            s,
            principal,
            "tdb.retry",
            "tdb_submission",
            row.id,
            {"decision_id": row.decision_id, "puid": row.puid},
            organisation_id=row.provider_id,
            at=ctx.now(),
        )
        if not s.scalar(
            select(
                jobs.pending_job_exists(jobs.SUBMIT_TDB, "provider_id", literal(row.provider_id))
            )
        ):
            jobs.defer(s, jobs.SUBMIT_TDB, {"provider_id": row.provider_id})
        return _view(row)
