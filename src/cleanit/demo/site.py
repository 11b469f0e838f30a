"""A tiny invented hosting site ("Example Video") that obeys cleanit's signed webhooks.

A newcomer watches an item disappear after a decision and come back after a reversal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import DictLoader, Environment, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cleanit.adapters.db.models import DemoSitePost, Organisation
from cleanit.adapters.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from cleanit.demo.seed import PROVIDER
from cleanit.services.context import Context

_TEMPLATES = {
    "base.html": """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{% block title %}Example Video{% endblock %} — demo hosting site</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
.gone{border:2px dashed #8a1c1c;padding:1rem;color:#8a1c1c}.label{background:#fff3cd;
padding:.5rem;border:1px solid #997a00}.post{border-bottom:1px solid #ccc;padding:.5rem 0}
</style></head><body><p><strong>Example Video</strong> — an invented demo site run by
<code>make run</code>. Nothing here is real.</p>{% block body %}{% endblock %}</body></html>""",
    "index.html": """{% extends "base.html" %}{% block body %}<h1>Latest posts</h1>
{% for p in posts %}<div class="post"><a href="posts/{{ p.slug }}">{{ p.title }}</a>
— <em>{{ p.state }}</em></div>{% endfor %}{% endblock %}""",
    "post.html": """{% extends "base.html" %}
{% block title %}{{ "Content not available" if post.state in GONE else post.title }}
{% endblock %}
{% block body %}{% if post.state in GONE %}
<div class="gone" role="status"><h1>This content is not available</h1>
<p>It was {{ "removed" if post.state == "remove" else "disabled" }} after a decision under
our terms or the law. The uploader received a statement of reasons.</p></div>
{% else %}{% if post.state not in ("available",) %}<p class="label" role="note">Notice: this
content is subject to a restriction ({{ post.state.replace("_", " ") }}).</p>{% endif %}
<h1>{{ post.title }}</h1>{{ svg | safe }}<p>{{ post.body }}</p>
<p><small>Uploaded by {{ post.author_email }}</small></p>{% endif %}
<p><a href="../">All posts</a></p>{% endblock %}""",
}


def _svg(slug: str) -> str:
    """A deterministic abstract picture generated from the slug (no real media)."""
    h = hashlib.sha256(slug.encode()).digest()
    shapes = "".join(
        f'<rect x="{h[i] % 200}" y="{h[i + 1] % 100}" width="{20 + h[i + 2] % 80}" '
        f'height="{20 + h[i + 3] % 60}" fill="#{h[i + 4]:02x}{h[i + 5]:02x}{h[i + 6]:02x}"/>'
        for i in range(0, 24, 7)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" role="img" '
        f'aria-label="generated picture">{shapes}</svg>'
    )


def create_site(ctx: Context) -> FastAPI:
    env = Environment(loader=DictLoader(_TEMPLATES), autoescape=select_autoescape(default=True))
    env.globals["GONE"] = ("remove", "disable_access", "suspend_account")
    site = FastAPI(title="Example Video (demo)", docs_url=None, redoc_url=None, openapi_url=None)

    @site.get("/", response_class=HTMLResponse)
    def index() -> str:
        with ctx.sessions() as s:
            posts = list(s.scalars(select(DemoSitePost).order_by(DemoSitePost.id)))
        return env.get_template("index.html").render(posts=posts)

    @site.get("/posts/{slug}", response_class=HTMLResponse)
    def post(slug: str) -> HTMLResponse:
        with ctx.sessions() as s:
            p = s.scalar(select(DemoSitePost).where(DemoSitePost.slug == slug))
        if p is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        return HTMLResponse(env.get_template("post.html").render(post=p, svg=_svg(p.slug)))

    @site.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        # Database work runs in a thread so the event loop stays free.
        return await run_in_threadpool(
            _apply,
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
        )

    def _apply(body: bytes, timestamp: str | None, signature: str | None) -> JSONResponse:
        with ctx.sessions() as s:
            secret = s.scalar(
                select(Organisation.webhook_secret).where(Organisation.slug == PROVIDER)
            )
        if not secret or not verify(secret, timestamp, signature, body):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        payload: dict[str, Any] = json.loads(body)
        slug = str(payload.get("content_url", "")).rstrip("/").rsplit("/", 1)[-1]
        with ctx.transaction() as s:
            p = s.scalar(select(DemoSitePost).where(DemoSitePost.slug == slug).with_for_update())
            if p is None:
                return JSONResponse({"error": "unknown content"}, status_code=404)
            p.state = (
                "available"
                if payload.get("type") == "content.reinstate"
                else str(payload.get("action"))
            )
            return JSONResponse({"ok": True, "state": p.state})

    return site
