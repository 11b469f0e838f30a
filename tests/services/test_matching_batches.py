"""Matching content fetched from the platform's own storage, one object or a batch of them
(real PostgreSQL, a local fake storage over HTTP, invented images; batch jobs run through
the service the worker calls)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import procrastinate
import pytest
from procrastinate.testing import InMemoryConnector
from sqlalchemy import func, select, text, update

from cleanit.adapters import jobs
from cleanit.adapters.db.models import (
    AuditEntry,
    Case,
    MatchingBatch,
    MatchingBatchItem,
    Notice,
    Organisation,
    User,
)
from cleanit.adapters.db.models import Match as MatchRow
from cleanit.adapters.fetch import FetchFailed, HttpContentFetcher, StorageUrlRefused
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound
from cleanit.services import banks, matching, matching_batches
from cleanit.services.context import Context
from cleanit.services.matching_batches import BatchInvalid
from cleanit.workers.tasks import register
from tests.fakes.storage_server import StorageServer
from tests.services.test_matching import COPY, ORIGINAL, OTHER, encode, pdq_of, picture
from tests.world import World, build_world


def set_domains(ctx: Context, slug: str, domains: list[str]) -> None:
    """The organisation's registered hosts. Set directly: the local fake storage is an IP
    address, which the admin service rightly refuses as a domain name."""
    with ctx.transaction() as s:
        s.execute(update(Organisation).where(Organisation.slug == slug).values(domains=domains))


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    with StorageServer() as server:
        yield server


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    ctx.fetcher = HttpContentFetcher(timeout=2.0, allow_private=True)
    w = build_world(ctx)
    set_domains(ctx, "host-a", ["127.0.0.1"])
    set_domains(ctx, "host-b", ["files.host-b.example.org"])
    return w


def listed(w: World) -> int:
    """A review bank of host-a listing ORIGINAL's PDQ hash; the entry id."""
    b = banks.create_bank(w.ctx, w.p("admin"), name="known images")
    return banks.add_entry(w.ctx, w.p("admin"), b.id, signal_type="pdq", value=pdq_of(ORIGINAL)).id


def counts(ctx: Context) -> tuple[int, int, int]:
    with ctx.sessions() as s:
        return (
            int(s.scalar(select(func.count()).select_from(MatchRow)) or 0),
            int(s.scalar(select(func.count()).select_from(Case)) or 0),
            int(s.scalar(select(func.count()).select_from(Notice)) or 0),
        )


def batch_jobs(ctx: Context) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        return [
            dict(a)
            for (a,) in s.execute(
                text(
                    "SELECT args FROM procrastinate_jobs WHERE task_name = :t AND priority = -1 "
                    "ORDER BY id"
                ),
                {"t": jobs.MATCH_BATCH_ITEM},
            )
        ]


def run_jobs(ctx: Context) -> list[str]:
    """Run every deferred batch job through the worker's task, registered under its name."""
    app = procrastinate.App(connector=InMemoryConnector())
    register(app, ctx)
    task = app.tasks[jobs.MATCH_BATCH_ITEM]
    return [task(**args) for args in batch_jobs(ctx)]


# --------------------------------------------------------------------- one object by URL


def test_a_storage_url_is_fetched_hashed_and_matched_into_a_case(
    world: World, storage: StorageServer
) -> None:
    entry_id = listed(world)
    storage_url = storage.put("copy.jpg", COPY, "image/jpeg")
    result = matching.match_content(
        world.ctx,
        world.p("reviewer"),
        storage_url=storage_url + "?X-Signature=invented",
        url="https://host-a.example.org/v/reupload",
    )
    (m,) = result.matches
    assert m.entry_id == entry_id and 0 < m.distance <= 31
    assert result.pdq == pdq_of(COPY) and result.case_id is not None
    assert counts(world.ctx) == (1, 1, 1)
    assert storage.paths == ["/o/copy.jpg?X-Signature=invented"]


def test_a_storage_url_must_be_on_the_organisations_own_domains(
    world: World, storage: StorageServer
) -> None:
    url = storage.put("a.png", ORIGINAL)
    # host-b's domains do not include the storage's host.
    with pytest.raises(StorageUrlRefused) as caught:
        matching.match_content(world.ctx, world.p("other_reviewer"), storage_url=url)
    assert caught.value.field == "storage_url"
    assert "127.0.0.1 is not one of your organisation's domains (files.host-b.example.org)" in (
        caught.value.detail
    )
    # Nor may host-a point at host-b's storage.
    with pytest.raises(StorageUrlRefused, match=r"files\.host-b\.example\.org is not one of"):
        matching.match_content(
            world.ctx, world.p("reviewer"), storage_url="https://files.host-b.example.org/a.png"
        )
    set_domains(world.ctx, "host-a", [])
    with pytest.raises(StorageUrlRefused, match="has no registered domains"):
        matching.match_content(world.ctx, world.p("reviewer"), storage_url=url)
    assert storage.paths == []  # nothing was fetched
    with pytest.raises(InvalidInput, match="exactly one of"):
        matching.match_content(world.ctx, world.p("reviewer"), data=ORIGINAL, storage_url=url)


def test_a_subdomain_of_a_registered_domain_counts(world: World) -> None:
    from cleanit.services.storage_urls import storage_url_problem

    domains = ["example.org"]
    assert storage_url_problem("https://cdn.eu.example.org/o/1", domains) is None
    assert storage_url_problem("https://example.org/o/1", domains) is None
    assert "is not one of" in str(storage_url_problem("https://badexample.org/o/1", domains))
    assert "is not one of" in str(storage_url_problem("https://example.org.test/o", domains))


def test_the_storage_failing_is_a_502_and_too_large_is_refused(
    world: World, storage: StorageServer
) -> None:
    with pytest.raises(FetchFailed) as caught:
        matching.match_content(
            world.ctx, world.p("reviewer"), storage_url=storage.url + "/o/missing"
        )
    assert caught.value.status == 502 and "404 Not Found" in caught.value.detail
    big = storage.put("big.png", encode(picture(3, (900, 700))))
    with pytest.raises(
        InvalidInput, match="more than the limit of 2,048 bytes; it was not downloaded"
    ):
        matching.match_content(world.ctx, world.p("reviewer"), storage_url=big, max_bytes=2048)
    assert counts(world.ctx) == (0, 0, 0)


def test_private_storage_is_refused_by_the_ssrf_guard(world: World, storage: StorageServer) -> None:
    world.ctx.fetcher = HttpContentFetcher(timeout=1.0)  # production: private not allowed
    url = storage.put("a.png", ORIGINAL)
    with pytest.raises(StorageUrlRefused, match="non-public address"):
        matching.match_content(world.ctx, world.p("reviewer"), storage_url=url)
    set_domains(world.ctx, "host-a", ["10.20.30.40"])
    with pytest.raises(StorageUrlRefused, match=r"10\.20\.30\.40 resolves to a non-public"):
        matching.match_content(
            world.ctx, world.p("reviewer"), storage_url="http://10.20.30.40/o/a.png"
        )
    assert storage.paths == []


# ------------------------------------------------------------------------------ batches


def test_a_batch_is_matched_item_by_item_and_a_retry_changes_nothing(
    world: World, storage: StorageServer
) -> None:
    ctx, reviewer = world.ctx, world.p("reviewer")
    entry_id = listed(world)
    items: list[dict[str, Any]] = [
        {"storage_url": storage.put("0.png", ORIGINAL), "url": "https://host-a.example.org/v/0"},
        {
            "storage_url": storage.put("1.jpg", COPY, "image/jpeg"),
            "url": "https://host-a.example.org/v/1",
        },
        {"storage_url": storage.put("2.png", OTHER), "url": "https://host-a.example.org/v/2"},
        {
            "storage_url": storage.url + "/o/deleted-meanwhile",
            "url": "https://host-a.example.org/v/3",
        },
        # No public URL: matched and recorded, but no case (nothing to act on).
        {"storage_url": storage.put("4.png", ORIGINAL, None), "content_type": "image/png"},
    ]
    batch = matching_batches.submit_batch(ctx, reviewer, items)
    assert (batch.status, batch.total, batch.queued, batch.done, batch.failed) == (
        "queued",
        5,
        5,
        0,
        0,
    )
    assert storage.paths == []  # nothing fetched until the jobs run
    deferred = batch_jobs(ctx)
    assert len(deferred) == 5 and set(deferred[0]) == {"item_id"}

    assert run_jobs(ctx) == ["done", "done", "done", "failed", "done"]
    view = matching_batches.get_batch(ctx, reviewer, batch.id)
    assert (view.status, view.queued, view.done, view.failed) == ("done", 0, 4, 1)
    assert view.finished_at is not None
    rows, total = matching_batches.list_items(ctx, reviewer, batch.id)
    assert total == 5 and [r.position for r in rows] == [0, 1, 2, 3, 4]
    first, second, other, failed, no_url = rows
    assert [m["entry_id"] for m in first.matches] == [entry_id]
    assert first.matches[0]["distance"] == 0 and first.case_id is not None
    assert second.matches[0]["entry_id"] == entry_id and second.case_id is not None
    assert second.case_id != first.case_id  # two different URLs: two cases
    assert second.pdq == pdq_of(COPY) and second.sha256 is not None and second.md5 is not None
    assert other.status == "done" and other.matches == [] and other.case_id is None
    assert failed.status == "failed" and failed.error_code == "fetch-failed"
    assert failed.error == (
        f"the storage answered 404 Not Found for {storage.url}/o/deleted-meanwhile"
    )
    assert failed.matches == [] and failed.finished_at is not None
    assert no_url.matches[0]["entry_id"] == entry_id and no_url.case_id is None
    before = counts(ctx)
    assert before == (3, 2, 2)
    fetched = len(storage.paths)

    # The worker retries every job (a crash after the commit, a duplicate): nothing changes.
    assert run_jobs(ctx) == ["skipped"] * 5
    assert counts(ctx) == before and len(storage.paths) == fetched
    assert matching_batches.list_items(ctx, reviewer, batch.id)[0] == rows
    # Pages and filters.
    page, total = matching_batches.list_items(ctx, reviewer, batch.id, limit=2, offset=2)
    assert total == 5 and [r.position for r in page] == [2, 3]
    failures, n = matching_batches.list_items(ctx, reviewer, batch.id, status="failed")
    assert n == 1 and failures[0].position == 3
    with ctx.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions.count("matching.batch_submitted") == 1
    assert actions.count("content.matched") == 3


def test_every_bad_item_is_named_and_nothing_is_stored(world: World) -> None:
    ctx = world.ctx
    good = {"storage_url": "http://127.0.0.1/o/a.png"}
    items: list[Any] = [
        good,
        {"storage_url": "https://files.host-b.example.org/o/b.png"},
        good,
        {"storage_url": "http://127.0.0.1/o/c.png", "url": "not a url at all"},
        {"storage_url": "ftp://127.0.0.1/o/d", "colour": "blue"},
        "http://127.0.0.1/o/e.png",
        {"url": "https://host-a.example.org/v/f"},
        {"storage_url": "http://127.0.0.1/o/\x00.png"},
    ]
    with pytest.raises(BatchInvalid) as caught:
        matching_batches.submit_batch(ctx, world.p("reviewer"), items)
    errors = dict(caught.value.errors)
    assert sorted(errors) == [
        "items[1].storage_url",
        "items[3].url",
        "items[4]",
        "items[4].storage_url",
        "items[5]",
        "items[6].storage_url",
        "items[7].storage_url",
    ]
    assert "files.host-b.example.org is not one of" in errors["items[1].storage_url"]
    assert "unknown field(s): colour" in errors["items[4]"]
    assert "absolute http(s) URL" in errors["items[4].storage_url"]
    assert errors["items[6].storage_url"] == "give the URL of the object in your storage"
    assert errors["items[7].storage_url"] == "must not contain NUL characters"
    assert caught.value.field == "items[1].storage_url"
    assert caught.value.detail.startswith("nothing was submitted: 6 item(s) are invalid: ")
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(MatchingBatch)) == 0
        assert s.scalar(select(func.count()).select_from(MatchingBatchItem)) == 0
    assert batch_jobs(ctx) == []

    with pytest.raises(InvalidInput, match="at most 1000 items per batch, not 1001"):
        matching_batches.submit_batch(ctx, world.p("reviewer"), [good] * 1001)
    with pytest.raises(InvalidInput, match="at least one item"):
        matching_batches.submit_batch(ctx, world.p("reviewer"), [])
    set_domains(ctx, "host-a", [])
    with pytest.raises(InvalidInput, match="no registered domains") as none:
        matching_batches.submit_batch(ctx, world.p("reviewer"), [good])
    assert none.value.field == "items"


def test_batches_belong_to_their_organisation(world: World) -> None:
    ctx = world.ctx
    batch = matching_batches.submit_batch(
        ctx, world.p("admin"), [{"storage_url": "http://127.0.0.1/o/a.png"}]
    )
    assert matching_batches.get_batch(ctx, world.p("legal"), batch.id).total == 1
    for who in ("other_reviewer", "other_admin"):
        with pytest.raises(NotFound):
            matching_batches.get_batch(ctx, world.p(who), batch.id)
        with pytest.raises(NotFound):
            matching_batches.list_items(ctx, world.p(who), batch.id)
    with pytest.raises(NotFound):
        matching_batches.get_batch(ctx, world.p("reviewer"), 10**9)
    for who in ("auditor", "complaints", "analyst"):
        with pytest.raises(Forbidden):
            matching_batches.get_batch(ctx, world.p(who), batch.id)
        with pytest.raises(Forbidden):
            matching_batches.submit_batch(ctx, world.p(who), [{"storage_url": "http://x.test/"}])


def test_items_of_a_disabled_submitter_are_not_matched(
    world: World, storage: StorageServer
) -> None:
    ctx = world.ctx
    listed(world)
    batch = matching_batches.submit_batch(
        ctx,
        world.p("reviewer2"),
        [{"storage_url": storage.put("0.png", ORIGINAL), "url": "https://host-a.example.org/v/0"}],
    )
    with ctx.transaction() as s:
        s.execute(update(User).where(User.id == world.user_ids["reviewer2"]).values(active=False))
    assert run_jobs(ctx) == ["failed"]
    (item,), _ = matching_batches.list_items(ctx, world.p("reviewer"), batch.id)
    assert item.error_code == "submitter-revoked" and "disabled" in str(item.error)
    assert counts(ctx) == (0, 0, 0) and storage.paths == []
