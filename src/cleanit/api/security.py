"""Authentication for the API: ``Authorization: Bearer <token>``. Authorisation is the
services' job (one mechanism for every entry point)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from cleanit.domain.errors import Unauthenticated
from cleanit.domain.roles import ANONYMOUS, Principal
from cleanit.services.authz import authenticate_token, cached_principal
from cleanit.services.context import Context

_bearer = HTTPBearer(auto_error=False, description="An API token issued by cleanit")


# The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in the
# thread pool, and those hand-offs cost more CPU than the work itself. Only a token that is
# not in the short-lived cache goes to the database, in the thread pool.


async def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def optional_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None:
        return ANONYMOUS
    ctx: Context = request.app.state.ctx
    cached = cached_principal(ctx, creds.credentials)
    if cached is not None:
        return cached
    return await run_in_threadpool(authenticate_token, ctx, creds.credentials)


async def principal(p: Annotated[Principal, Depends(optional_principal)]) -> Principal:
    if p.is_anonymous:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return p


Ctx = Annotated[Context, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
MaybeCaller = Annotated[Principal, Depends(optional_principal)]
