"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cleanit.domain.errors import DomainError, Unauthenticated

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://cleanit.example.org/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        return problem(
            exc.status,
            exc.code.replace("-", " ").capitalize(),
            exc.detail,
            code=exc.code,
            errors=errors,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "json_invalid":
                msg = "the body is not valid JSON (or not valid UTF-8)"
            errors.append({"field": _field_of(e.get("loc", ())), "message": msg})
        detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        return problem(422, "Invalid request", detail, code="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not-found",
            405: "method-not-allowed",
            413: "payload-too-large",
            415: "unsupported-media-type",
        }.get(exc.status_code, "http-error")
        return problem(
            exc.status_code,
            code.replace("-", " ").capitalize(),
            str(exc.detail),
            code=code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return problem(
            503,
            "Service unavailable",
            "the database is unavailable; nothing was stored — retry shortly",
            code="database-unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_down(_, exc)
        log.exception("database error")
        return problem(
            500, "Internal error", "the request failed; nothing was stored", code="internal-error"
        )
