"""A read-only TAXII 2.1 server under /taxii2/: one collection per bank of your organisation.

Discovery ``/taxii2/``, API root ``/taxii2/api/``, collections, objects (``added_after``,
``limit``/``next``, ``X-TAXII-Date-Added-First/Last``) and single objects. Authentication is
the API's bearer token; errors are TAXII error messages (401, 403, 404, 400).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cleanit.api.security import Ctx, MaybeCaller
from cleanit.domain.errors import DomainError, Unauthenticated
from cleanit.domain.roles import Principal
from cleanit.services import exports

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
PREFIX = "/taxii2"

router = APIRouter(prefix=PREFIX, tags=["taxii"])


class TaxiiResponse(JSONResponse):
    media_type = TAXII


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str) -> None:
        super().__init__(description)
        self.status, self.title, self.description = status, title, description


def _reply(body: Any, headers: dict[str, str] | None = None) -> TaxiiResponse:
    return TaxiiResponse(body, headers=headers)


def _caller(caller: Principal) -> Principal:
    if caller.is_anonymous:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return caller


def _collection(c: exports.Collection) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description or f"Bank '{c.title}'",
        "can_read": True,
        "can_write": False,
        "media_types": [STIX],
    }


def _envelope(page: exports.ObjectPage) -> TaxiiResponse:
    body: dict[str, Any] = {"more": page.more}
    if page.next:
        body["next"] = page.next
    if page.objects:
        body["objects"] = page.objects
    headers = {}
    if page.date_added_first and page.date_added_last:
        headers["X-TAXII-Date-Added-First"] = page.date_added_first
        headers["X-TAXII-Date-Added-Last"] = page.date_added_last
    return _reply(body, headers)


@router.get("/", summary="TAXII discovery")
def discovery(request: Request, caller: MaybeCaller) -> TaxiiResponse:
    _caller(caller)
    root = str(request.url_for("api_root"))
    return _reply(
        {
            "title": "cleanit TAXII server",
            "description": "Your organisation's banks (hash lists) as STIX 2.1 indicators.",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get("/api/", name="api_root", summary="TAXII API root")
def api_root(request: Request, caller: MaybeCaller) -> TaxiiResponse:
    _caller(caller)
    return _reply(
        {
            "title": "cleanit banks",
            "versions": [TAXII],
            "max_content_length": request.app.state.settings.max_body_bytes,
        }
    )


@router.get("/api/collections/", summary="Collections: one per bank you may read")
def collections(ctx: Ctx, caller: MaybeCaller) -> TaxiiResponse:
    found = exports.list_collections(ctx, _caller(caller))
    return _reply({"collections": [_collection(c) for c in found]})


@router.get("/api/collections/{collection_id}/", summary="One collection")
def collection(collection_id: str, ctx: Ctx, caller: MaybeCaller) -> TaxiiResponse:
    return _reply(_collection(exports.get_collection(ctx, _caller(caller), collection_id)))


@router.get("/api/collections/{collection_id}/objects/", summary="A collection's objects")
def objects(
    collection_id: str,
    ctx: Ctx,
    caller: MaybeCaller,
    added_after: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next: Annotated[str | None, Query(max_length=200)] = None,
) -> TaxiiResponse:
    page = exports.collection_objects(
        ctx,
        _caller(caller),
        collection_id,
        added_after=added_after,
        limit=limit,
        next_token=next,
    )
    return _envelope(page)


@router.get("/api/collections/{collection_id}/objects/{object_id}/", summary="One object")
def one_object(collection_id: str, object_id: str, ctx: Ctx, caller: MaybeCaller) -> TaxiiResponse:
    return _envelope(exports.collection_object(ctx, _caller(caller), collection_id, object_id))


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
}


def _error(status: int, description: str) -> TaxiiResponse:
    body = {
        "title": _TITLES.get(status, "Error"),
        "description": description,
        "http_status": str(status),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return TaxiiResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Mount the TAXII routes; their errors are TAXII error messages, not problem details."""
    app.include_router(router)
    for kind in (DomainError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _taxii_errors(app.exception_handlers[kind]))


def _taxii_errors(previous: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request: Request, exc: Exception) -> Any:
        if not request.url.path.startswith(PREFIX + "/"):
            return await previous(request, exc)
        if isinstance(exc, DomainError):
            return _error(400 if exc.status == 422 else exc.status, exc.detail)
        if isinstance(exc, RequestValidationError):
            return _error(400, "; ".join(str(e.get("msg", "")) for e in exc.errors()))
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, str(exc.detail))

    return handler
