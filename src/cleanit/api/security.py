"""Authentication for the API: ``Authorization: Bearer <token>``. Authorisation is the
services' job (one mechanism for every entry point)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cleanit.domain.errors import Unauthenticated
from cleanit.domain.roles import ANONYMOUS, Principal
from cleanit.services.authz import authenticate_token
from cleanit.services.context import Context

_bearer = HTTPBearer(auto_error=False, description="An API token issued by cleanit")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def optional_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None:
        return ANONYMOUS
    return authenticate_token(context(request), creds.credentials)


def principal(p: Annotated[Principal, Depends(optional_principal)]) -> Principal:
    if p.is_anonymous:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return p


Ctx = Annotated[Context, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
MaybeCaller = Annotated[Principal, Depends(optional_principal)]
