"""The ASGI application factory."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from cleanit import __version__
from cleanit.api import problems
from cleanit.api.middleware import BodyLimit, Metrics, SecurityHeaders
from cleanit.api.routes import (
    banks,
    cases,
    complaints,
    evaluation,
    investigations,
    notices,
    orders,
    organisations,
    preservation,
    registries,
    reports,
    taxii,
    tdb,
    transparency,
)
from cleanit.services.context import Context
from cleanit.settings import Settings

DESCRIPTION = """
Clean IT: notices, cases, decisions with statements of reasons, complaints and platform
actions — under the rule of law. Errors are RFC 9457 problem details.
Authenticate with `Authorization: Bearer <token>` (get one at `POST /api/v1/tokens`).
"""


def create_app(ctx: Context, settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Clean IT API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.settings = settings
    problems.install(app)

    api = APIRouter(prefix="/api/v1", responses=problems.RESPONSES)
    for module in (notices, cases, complaints, registries, organisations, banks):
        api.include_router(module.router)
    api.include_router(preservation.router)  # preservation holds, threat to life
    api.include_router(investigations.router)  # law-enforcement requests
    api.include_router(orders.router)  # TCO removal orders
    api.include_router(tdb.router)  # DSA Transparency Database submissions
    api.include_router(evaluation.router)  # evaluation metrics (issue 6)
    api.include_router(reports.router)  # transparency reports (staff, publishing)
    app.include_router(api)
    app.include_router(transparency.router)  # public transparency pages
    taxii.install(app)

    registry = CollectorRegistry()

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The process can serve (database up)")
    def readyz() -> Response:
        try:
            with ctx.sessions() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return JSONResponse(
                {"status": "unavailable", "database": str(exc)[:200]}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def root() -> dict[str, Any]:
        return {
            "name": "Clean IT",
            "version": __version__,
            "api": "/api/v1/docs",
            "openapi": "/api/v1/openapi.json",
        }

    app.add_middleware(Metrics, registry=registry)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        # A platform hands over removed files (videos) for preservation: streamed to disk.
        uploads=re.compile(r"/api/v1/preservation-holds/\d+/content"),
        upload_limit=settings.max_content_bytes,
    )
    app.add_middleware(SecurityHeaders)
    return app
