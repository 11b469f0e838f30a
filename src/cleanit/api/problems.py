"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cleanit.domain.errors import DomainError, Unauthenticated

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://cleanit.example.org/problems/"
UNPARSABLE = "the body is not valid JSON (or not valid UTF-8)"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# Documented on every /api/v1 operation (instead of FastAPI's default 422 schema, which is
# not what the API sends).
RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The request is invalid; `errors` names the fields",
        "content": _PROBLEM_CONTENT,
    },
    "default": {
        "description": "Any other error (401, 403, 404, 409, 413, ...)",
        "content": _PROBLEM_CONTENT,
    },
}


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
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI: the component is added once
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        pairs = exc.errors or ([(exc.field, exc.detail)] if exc.field else [])
        errors = [{"field": f, "message": m} for f, m in pairs] or None
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
            field = _field_of(e.get("loc", ()))
            if e.get("type") == "json_invalid":
                # The location is a character offset, not a field: name the body.
                msg, field = UNPARSABLE, "body"
            errors.append({"field": field, "message": msg})
        detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        return problem(422, "Invalid request", detail, code="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8: the same problem as bad JSON.
            errors = [{"field": "body", "message": UNPARSABLE}]
            return problem(
                422, "Invalid request", UNPARSABLE, code="invalid-request", errors=errors
            )
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

    @app.exception_handler(DataError)
    async def unstorable_value(_: Request, exc: DataError) -> JSONResponse:
        # SQLSTATE class 22: a value from the request that PostgreSQL cannot hold (an id out
        # of range, a NUL character in a path or query parameter). The client's fault.
        log.info("refused a value the database cannot store: %s", exc.orig)
        return problem(
            422,
            "Invalid input",
            "a value is out of range or contains a character that cannot be stored "
            "(such as NUL); nothing was stored",
            code="invalid-input",
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_down(_, exc)
        log.exception("database error")
        return problem(
            500, "Internal error", "the request failed; nothing was stored", code="internal-error"
        )
