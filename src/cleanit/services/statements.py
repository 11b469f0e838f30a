"""Reading statements of reasons: by the provider's staff, or by the content provider with the
secret code from their link."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from cleanit.adapters.db.models import Decision, Statement
from cleanit.adapters.passwords import digest
from cleanit.domain.errors import NotFound
from cleanit.domain.roles import Permission, Principal
from cleanit.services.authz import require
from cleanit.services.context import Context


def get_statement(
    ctx: Context, principal: Principal, public_id: uuid.UUID, code: str | None = None
) -> Statement:
    with ctx.sessions() as s:
        st = s.scalar(select(Statement).where(Statement.public_id == public_id))
        if st is not None and code is not None and st.complaint_secret_hash == digest(code):
            return st
        # Check the caller before looking further, so that the answer does not depend on
        # whether the statement exists.
        require(principal, Permission.READ_CASES)
        d = s.get(Decision, st.decision_id) if st is not None else None
        if st is None or d is None or d.provider_id != principal.organisation_id:
            raise NotFound("no such statement of reasons")
        return st


def statement_for_decision(ctx: Context, principal: Principal, decision_id: int) -> Statement:
    require(principal, Permission.READ_CASES)
    with ctx.sessions() as s:
        d = s.get(Decision, decision_id)
        if d is None or d.provider_id != principal.organisation_id:
            raise NotFound("no such decision")
        st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        if st is None:
            raise NotFound("this decision restricted nothing, so it has no statement of reasons")
        return st
