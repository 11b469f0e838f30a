"""ThreatExchange and TAT exchanges, synced and given opinions, against local fake servers
and the real PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import procrastinate
import pytest
from fastapi.testclient import TestClient
from procrastinate.testing import InMemoryConnector
from sqlalchemy import func, select

from cleanit.adapters.db.models import AuditEntry, BankEntry, ExchangeEntry, ExchangeOpinion
from cleanit.adapters.exchanges import Checkpoint, FeedClient, client_for
from cleanit.adapters.jobs import JOBS_TABLE, SEND_EXCHANGE_OPINION
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound
from cleanit.domain.exchanges import ExchangeFailed, FeedItem
from cleanit.services import banks, exchanges
from cleanit.services.context import Context
from cleanit.workers.tasks import register
from tests.fakes.tat_server import FakeTAT
from tests.fakes.threatexchange_server import APP_ID, FakeThreatExchange
from tests.world import World, build_world

TE_ENV = "CLEANIT_TEST_TE_TOKEN"
TAT_ENV = "CLEANIT_TEST_TAT_CREDENTIALS"


def pdq(n: int) -> str:
    return hashlib.sha256(f"invented-image-{n}".encode()).hexdigest()


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.allow_private_targets = True  # the fakes listen on 127.0.0.1
    return build_world(ctx)


@pytest.fixture
def te(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeThreatExchange]:
    with FakeThreatExchange() as fake:
        monkeypatch.setenv(TE_ENV, fake.token)
        yield fake


@pytest.fixture
def tat(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTAT]:
    with FakeTAT() as fake:
        monkeypatch.setenv(TAT_ENV, fake.credentials)
        yield fake


def te_exchange(
    world: World, te: FakeThreatExchange, name: str = "te", page_size: int = 3
) -> tuple[int, int]:
    bank = banks.create_bank(world.ctx, world.p("legal"), name=f"bank-{name}")
    x = exchanges.create_exchange(
        world.ctx,
        world.p("legal"),
        name=name,
        bank_id=bank.id,
        kind="threatexchange",
        config={
            "api_base": te.api_base,
            "privacy_group": te.privacy_group,
            "credentials_env": TE_ENV,
            "page_size": page_size,
        },
    )
    return x.id, bank.id


def tat_exchange(world: World, tat: FakeTAT, page_size: int = 2) -> tuple[int, int]:
    bank = banks.create_bank(world.ctx, world.p("legal"), name="bank-tat")
    x = exchanges.create_exchange(
        world.ctx,
        world.p("legal"),
        name="tat",
        bank_id=bank.id,
        kind="tat",
        config={"api_base": tat.api_base, "credentials_env": TAT_ENV, "page_size": page_size},
    )
    return x.id, bank.id


def live(ctx: Context, bank_id: int) -> list[str]:
    with ctx.sessions() as s:
        return sorted(
            s.scalars(
                select(BankEntry.value).where(
                    BankEntry.bank_id == bank_id, BankEntry.removed_at.is_(None)
                )
            ).all()
        )


def entry_of(ctx: Context, record_id: str) -> int:
    with ctx.sessions() as s:
        found = s.scalar(
            select(ExchangeEntry.entry_id)
            .where(ExchangeEntry.record_id == record_id)
            .order_by(ExchangeEntry.entry_id.desc())
        )
        assert found is not None
        return int(found)


def audit_actions(ctx: Context) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all())


# --------------------------------------------------------------------------------- syncing


def test_threatexchange_sync_fills_the_bank_incrementally_and_withdraws(
    world: World, te: FakeThreatExchange
) -> None:
    ctx, legal = world.ctx, world.p("legal")
    ids = [te.add(pdq(n), at=1000 + n // 2) for n in range(7)]
    te.add("an invented phrase", "TEXT_STRING", at=1003)
    te.add_raw({"id": "garbage", "last_updated": 1003}, at=1003)
    xid, bank_id = te_exchange(world, te)

    report = exchanges.sync_exchange(ctx, legal, xid)
    assert (report.imported, report.duplicates, report.removed) == (7, 0, 0)
    assert [e.message for e in report.errors] == [
        "unsupported signal type TEXT_STRING",
        "a threat update needs a numeric id and last_updated",
    ]
    assert te.pages_served == 3  # nine updates, three a page
    assert live(ctx, bank_id) == sorted(pdq(n) for n in range(7))
    with ctx.sessions() as s:
        assert set(s.scalars(select(ExchangeEntry.record_id)).all()) == set(ids)
        assert set(s.scalars(select(BankEntry.source)).all()) == {"exchange:te"}
    view = exchanges.get_exchange(ctx, legal, xid)
    assert view.last_status == "ok" and view.checkpoint is not None
    assert view.checkpoint["update_time"] == 1003
    assert "credentials_env" in view.config and te.token not in str(view.config)

    # Nothing new: only the updates of the checkpoint's second are served again (and skipped).
    te.served.clear()
    again = exchanges.sync_exchange(ctx, legal, xid)
    assert (again.imported, again.duplicates, again.removed, len(again.errors)) == (0, 0, 0, 0)
    assert set(te.served) <= {u.id for u in te.updates.values() if u.time == 1003}

    # New records, a deletion, and an indicator every owner now marks non-malicious.
    te.served.clear()
    new = [te.add(pdq(n), at=2000) for n in (7, 8)]
    te.delete(ids[0], at=2001)
    te.mark(ids[1], "NON_MALICIOUS", at=2001)
    more = exchanges.sync_exchange(ctx, legal, xid)
    assert (more.imported, more.duplicates, more.removed, len(more.errors)) == (2, 0, 2, 0)
    assert set(new + ids[:2]) <= set(te.served)
    assert live(ctx, bank_id) == sorted(pdq(n) for n in (2, 3, 4, 5, 6, 7, 8))
    with ctx.sessions() as s:
        gone = s.scalars(select(BankEntry).where(BankEntry.value.in_([pdq(0), pdq(1)]))).all()
        assert {(e.removed_by, e.removed_at is not None) for e in gone} == {("exchange:te", True)}
    view = exchanges.get_exchange(ctx, legal, xid)
    assert view.last_message == "2 new, 0 already held, 2 withdrawn, 0 error(s)"
    assert "exchange.batch_synced" in audit_actions(ctx)

    # Shared again later: a new entry (the removed one stays removed, for the record).
    te.add(pdq(0), at=3000)
    assert exchanges.sync_exchange(ctx, legal, xid).imported == 1
    assert pdq(0) in live(ctx, bank_id)


class Flaky:
    """Wraps a feed client and breaks after ``fail_after`` items (a crash mid-sync),
    checking at that moment that the stored checkpoint covers exactly the stored entries."""

    def __init__(self, inner: FeedClient, fail_after: int, check: Any) -> None:
        self.inner, self.fail_after, self.check = inner, fail_after, check

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return self.inner.next_checkpoint

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedItem]:
        for n, item in enumerate(self.inner.fetch(checkpoint)):
            if n == self.fail_after:
                self.check()
                raise ConnectionError("the process died")
            yield item


def test_a_crash_mid_sync_resumes_exactly(world: World, te: FakeThreatExchange) -> None:
    ctx, legal = world.ctx, world.p("legal")
    ids = [te.add(pdq(n), at=100 + n // 3) for n in range(30)]  # three indicators a second
    xid, bank_id = te_exchange(world, te, page_size=4)
    config = exchanges.get_exchange(ctx, legal, xid).config

    def stored_matches_checkpoint() -> None:
        view = exchanges.get_exchange(ctx, legal, xid)
        # Batches of 5: records 0-9 are stored, 10 and 11 were read but not stored.
        assert live(ctx, bank_id) == sorted(pdq(n) for n in range(10))
        assert view.checkpoint == {"update_time": 103, "done_ids": [ids[9]]}

    inner = client_for("threatexchange", config, allow_private=True)
    with pytest.raises(ConnectionError):
        exchanges.sync_exchange(
            ctx,
            legal,
            xid,
            client=Flaky(inner, 12, stored_matches_checkpoint),
            batch_size=5,
        )
    view = exchanges.get_exchange(ctx, legal, xid)
    assert view.last_status == "failed" and "the process died" in (view.last_message or "")
    stored_matches_checkpoint()

    report = exchanges.sync_exchange(ctx, legal, xid, batch_size=5)
    assert (report.imported, report.duplicates, len(report.errors)) == (20, 0, 0)
    with ctx.sessions() as s:
        values = s.scalars(select(BankEntry.value).where(BankEntry.bank_id == bank_id)).all()
    assert sorted(values) == sorted(pdq(n) for n in range(30))  # no double, no gap


def test_the_server_dropping_mid_sync_resumes_exactly(world: World, tat: FakeTAT) -> None:
    ctx, legal = world.ctx, world.p("legal")
    for n in range(9):
        tat.add(pdq(n), at=1700000000.5 + n)
    xid, bank_id = tat_exchange(world, tat, page_size=2)
    tat.drop_after_pages = 3  # six records served, then the server is gone
    with pytest.raises(ExchangeFailed, match="could not be reached"):
        exchanges.sync_exchange(ctx, legal, xid, batch_size=4)
    view = exchanges.get_exchange(ctx, legal, xid)
    assert view.last_status == "failed"
    assert view.last_message is not None and "stopped after 4 new entries" in view.last_message
    assert live(ctx, bank_id) == sorted(pdq(n) for n in range(4))
    assert view.checkpoint is not None and view.checkpoint["after"].startswith("1700000003.5,")

    tat.drop_after_pages = None
    report = exchanges.sync_exchange(ctx, legal, xid, batch_size=4)
    assert (report.imported, report.duplicates) == (5, 0)
    assert live(ctx, bank_id) == sorted(pdq(n) for n in range(9))
    # A withdrawn TAT record removes its entry.
    first = min(tat.records)
    tat.delete(first, at=1800000000.0)
    assert exchanges.sync_exchange(ctx, legal, xid).removed == 1
    assert pdq(0) not in live(ctx, bank_id)


def test_bad_credentials_and_a_missing_variable_are_clear_statuses(
    world: World, te: FakeThreatExchange, tat: FakeTAT, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, legal = world.ctx, world.p("legal")
    te.add(pdq(1), at=10)
    xid, _ = te_exchange(world, te)
    monkeypatch.setenv(TE_ENV, f"{APP_ID}|wrongsecretwrongsecret00")
    with pytest.raises(ExchangeFailed, match="refused the access token"):
        exchanges.sync_exchange(ctx, legal, xid)
    view = exchanges.get_exchange(ctx, legal, xid)
    assert view.last_status == "failed"
    assert "Invalid OAuth access token" in (view.last_message or "")
    assert "wrongsecret" not in (view.last_message or "")

    monkeypatch.delenv(TE_ENV)
    with pytest.raises(InvalidInput):
        exchanges.sync_exchange(ctx, None, xid)
    message = exchanges.get_exchange(ctx, legal, xid).last_message or ""
    assert f"the environment variable {TE_ENV} named by credentials_env is not set" in message

    tid, _ = tat_exchange(world, tat)
    monkeypatch.setenv(TAT_ENV, "analyst@platform.example.org:wrong")
    with pytest.raises(ExchangeFailed):
        exchanges.sync_exchange(ctx, legal, tid)
    message = exchanges.get_exchange(ctx, legal, tid).last_message or ""
    assert "Unable to log in with provided credentials." in message
    assert "wrong" not in message.replace("Unable", "")  # the password is never shown


def test_api_exchange_settings_are_checked(world: World, ctx: Context) -> None:
    legal = world.p("legal")
    bank = banks.create_bank(ctx, legal, name="checked")

    def add(kind: str, **config: Any) -> Any:
        return exchanges.create_exchange(
            ctx, legal, name=f"x{len(config)}", bank_id=bank.id, kind=kind, config=config
        )

    base = {"credentials_env": "TE_TOKEN", "privacy_group": 12345}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("threatexchange", base | {"token": "1|x"}, "token"),
        ("threatexchange", {"privacy_group": 1}, "credentials_env"),
        ("threatexchange", {"credentials_env": "TE TOKEN", "privacy_group": 1}, "credentials_env"),
        ("threatexchange", {"credentials_env": "TE_TOKEN"}, "privacy_group"),
        ("threatexchange", base | {"privacy_group": "abc"}, "privacy_group"),
        ("threatexchange", base | {"api_base": "http://te.example.org/v26.0"}, "api_base"),
        ("threatexchange", base | {"api_base": "ftp://te.example.org"}, "api_base"),
        ("threatexchange", base | {"api_base": "https://u:p@te.example.org"}, "api_base"),
        ("threatexchange", base | {"page_size": 5000}, "page_size"),
        ("threatexchange", base | {"path": "/x.csv"}, "path"),
        ("tat", {"credentials_env": "TAT", "privacy_group": 1}, "privacy_group"),
        ("tat", {"credentials_env": "TAT", "password": "x"}, "password"),
    ]
    for kind, config, field in cases:
        with pytest.raises(InvalidInput) as exc:
            add(kind, **config)
        assert exc.value.field == field, (config, exc.value.detail)
    # Plain http reaches a loopback fake only where private targets are allowed.
    ctx.allow_private_targets = False
    with pytest.raises(InvalidInput, match="must use https"):
        add("threatexchange", **base, api_base="http://127.0.0.1:9/v26.0")
    ctx.allow_private_targets = True
    made = add("threatexchange", **base, api_base="http://127.0.0.1:9/v26.0/")
    assert made.config == base | {"api_base": "http://127.0.0.1:9/v26.0"}
    tat_made = exchanges.create_exchange(
        ctx, legal, name="tat", bank_id=bank.id, kind="tat", config={"credentials_env": "TAT"}
    )
    assert tat_made.config == {"credentials_env": "TAT"}


# -------------------------------------------------------------------------------- opinions


def test_opinions_are_recorded_sent_by_the_job_and_audited(
    world: World, te: FakeThreatExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, legal = world.ctx, world.p("legal")
    indicator = te.add(pdq(1), at=10)
    te.add(pdq(1), at=11, owner="5000000000000005")  # a second descriptor on it
    xid, bank_id = te_exchange(world, te)
    exchanges.sync_exchange(ctx, legal, xid)
    entry_id = entry_of(ctx, indicator)

    view = exchanges.report_opinion(ctx, legal, entry_id, "true_positive", bank_id=bank_id)
    assert (view.status, view.opinion, view.record_id) == ("pending", "true_positive", indicator)
    with ctx.sessions() as s:
        queued = s.execute(
            select(JOBS_TABLE.c.args).where(JOBS_TABLE.c.task_name == SEND_EXCHANGE_OPINION)
        ).scalars()
        assert list(queued) == [{"opinion_id": view.id}]
    assert te.reactions == []  # nothing is sent before the job runs

    assert exchanges.send_opinion(ctx, view.id) == "sent"
    descriptors = te.indicator_descriptors[indicator]
    assert sorted(te.reactions) == sorted((d, "HELPFUL", "added") for d in descriptors)
    with ctx.sessions() as s:
        row = s.get(ExchangeOpinion, view.id)
        assert row is not None
        assert (row.status, row.attempts, sorted(row.sent_to)) == ("sent", 1, sorted(descriptors))
    assert exchanges.send_opinion(ctx, view.id) == "sent"  # a repeated job sends nothing
    assert len(te.reactions) == len(descriptors)

    # Changing our mind replaces the reaction.
    te.reactions.clear()
    second = exchanges.report_opinion(ctx, legal, entry_id, "false_positive")
    assert exchanges.send_opinion(ctx, second.id) == "sent"
    assert sorted(te.reactions) == sorted(
        [(d, "DISAGREE_WITH_TAGS", "added") for d in descriptors]
        + [(d, "HELPFUL", "removed") for d in descriptors]
    )
    actions = audit_actions(ctx)
    assert actions.count("exchange.opinion_reported") == 2
    assert actions.count("exchange.opinion_sent") == 2

    # A failure is kept and retried; an opinion overtaken by a newer one sent is not sent.
    older = exchanges.report_opinion(ctx, legal, entry_id, "true_positive")
    newer = exchanges.report_opinion(ctx, legal, entry_id, "false_positive")
    monkeypatch.delenv(TE_ENV)
    with pytest.raises(exchanges.OpinionNotSent, match="not set"):
        exchanges.send_opinion(ctx, newer.id)
    with ctx.sessions() as s:
        row = s.get(ExchangeOpinion, newer.id)
        assert row is not None and (row.status, row.attempts) == ("pending", 1)
        assert "credentials_env" in (row.last_error or "")
    monkeypatch.setenv(TE_ENV, te.token)
    te.reactions.clear()
    assert exchanges.send_opinion(ctx, newer.id) == "sent"
    assert exchanges.send_opinion(ctx, older.id) == "superseded"
    assert {r for _, r, _ in te.reactions} == {"DISAGREE_WITH_TAGS"}


def test_who_may_give_opinions_and_on_what(
    world: World, te: FakeThreatExchange, tat: FakeTAT
) -> None:
    ctx, legal = world.ctx, world.p("legal")
    indicator = te.add(pdq(1), at=10)
    xid, bank_id = te_exchange(world, te)
    exchanges.sync_exchange(ctx, legal, xid)
    entry_id = entry_of(ctx, indicator)
    with pytest.raises(Forbidden):
        exchanges.report_opinion(ctx, world.p("reviewer"), entry_id, "true_positive")
    with pytest.raises(NotFound):
        exchanges.report_opinion(ctx, world.p("other_admin"), entry_id, "true_positive")
    with pytest.raises(NotFound):
        exchanges.report_opinion(ctx, legal, entry_id, "true_positive", bank_id=bank_id + 1000)
    with pytest.raises(InvalidInput, match="unknown opinion 'maybe'"):
        exchanges.report_opinion(ctx, legal, entry_id, "maybe")
    local = banks.add_entry(ctx, legal, bank_id, signal_type="md5", value="0" * 32)
    with pytest.raises(InvalidInput, match="did not come from an exchange"):
        exchanges.report_opinion(ctx, legal, local.id, "false_positive")
    record = tat.add(pdq(2), at=5.0)
    tid, _ = tat_exchange(world, tat)
    exchanges.sync_exchange(ctx, legal, tid)
    with pytest.raises(InvalidInput, match="a tat exchange, which takes no opinions"):
        exchanges.report_opinion(ctx, legal, entry_of(ctx, str(record)), "false_positive")
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ExchangeOpinion)) == 0


def test_the_opinion_endpoint_and_the_job(
    world: World, te: FakeThreatExchange, client: TestClient
) -> None:
    ctx, legal = world.ctx, world.p("legal")
    indicator = te.add(pdq(1), at=10)
    xid, bank_id = te_exchange(world, te)
    exchanges.sync_exchange(ctx, legal, xid)
    entry_id = entry_of(ctx, indicator)
    url = f"/api/v1/banks/{bank_id}/entries/{entry_id}/opinions"
    r = client.post(url, json={"opinion": "false_positive"}, headers=world.auth("legal"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["opinion"], body["entry_id"]) == (
        "pending",
        "false_positive",
        entry_id,
    )
    bad = client.post(url, json={"opinion": "perhaps"}, headers=world.auth("legal"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "opinion"
    missing = client.post(
        f"/api/v1/banks/{bank_id}/entries/999999/opinions",
        json={"opinion": "true_positive"},
        headers=world.auth("legal"),
    )
    assert missing.status_code == 404

    # The worker's task, registered under its persisted name, sends it.
    app = procrastinate.App(connector=InMemoryConnector())
    register(app, ctx)
    task = app.tasks[SEND_EXCHANGE_OPINION]
    assert task(opinion_id=body["id"]) == "sent"
    assert {r for _, r, _ in te.reactions} == {"DISAGREE_WITH_TAGS"}
