"""A real crash: ``cleanit serve`` is SIGKILLed in the middle of a stream of notices.

The client then does what the API tells clients to do — retry every notice that was not
acknowledged with the same Idempotency-Key — against a restarted server. Afterwards the
database must hold each notice exactly once, every receipt the client was given must point
at a stored notice, and every acknowledgement must still have its delivery job (the job is
deferred in the notice's own transaction, so a crash cannot separate them). A replay of
already acknowledged notices after the restart gets the very same receipts back.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from cleanit.domain.roles import OrgKind, Role
from cleanit.services import audit, organisations
from cleanit.services.context import Context
from tests.system.conftest import ServerProcess

pytestmark = pytest.mark.slow

NOTICES = 300
KILL_AFTER = 100  # acknowledgements before the SIGKILL
THREADS = 8


def _body(i: int) -> dict[str, Any]:
    return {
        "provider": "host-a",
        "source_type": "trusted_flagger",
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "keywords": ["KEYWORD_TERRORIST_CONTENT"],
        "explanation": "It calls on people to join an invented violent group.",
        "locations": [_url(i)],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Invented Flagger",
        "notifier_email": "desk@flagger.example.org",
    }


def _url(i: int) -> str:
    return f"https://host-a.example.org/crash/{i}"


def _key(i: int) -> str:
    return f"crash-test-{i}"


def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(
    ctx: Context, engine: Engine, cleanit_server: ServerProcess
) -> None:
    organisations.create_organisation(
        ctx, slug="host-a", name="Host A", kind=OrgKind.HOSTING_PROVIDER
    )
    organisations.create_organisation(
        ctx, slug="flagger", name="Flagger", kind=OrgKind.TRUSTED_FLAGGER
    )
    token = organisations.issue_token(
        ctx, org_slug="flagger", name="stream", roles=[Role.TRUSTED_FLAGGER]
    ).token
    headers = {"Authorization": f"Bearer {token}"}

    receipts: dict[int, dict[str, Any]] = {}
    lock = threading.Lock()
    killed = threading.Event()
    server = cleanit_server
    server.start()

    def send(client: httpx.Client, i: int) -> bool:
        try:
            r = client.post(
                "/api/v1/notices",
                json=_body(i),
                headers={**headers, "Idempotency-Key": _key(i)},
            )
        except httpx.TransportError:
            return False  # connection refused / reset: the server is gone
        if r.status_code >= 500:
            return False
        assert r.status_code == 201, (i, r.status_code, r.text)
        with lock:
            assert i not in receipts
            receipts[i] = r.json()
            if len(receipts) == KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()  # other threads have requests in flight right now
        return True

    # Phase 1: the stream; the server dies after KILL_AFTER acknowledgements.
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as client,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        list(pool.map(lambda i: send(client, i), range(NOTICES)))
    assert killed.is_set()
    lost = [i for i in range(NOTICES) if i not in receipts]
    assert len(receipts) >= KILL_AFTER
    assert len(lost) > NOTICES // 2, "the kill came too late to test anything"

    # Phase 2: restart on the same port; retry what was not acknowledged, same keys.
    server.start()
    rounds = 0
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as client,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        while lost and rounds < 5:
            rounds += 1
            done = list(pool.map(lambda i: send(client, i), lost))
            lost = [i for i, ok in zip(lost, done, strict=True) if not ok]
    assert not lost, f"still not acknowledged after {rounds} rounds: {lost[:10]}"
    assert len(receipts) == NOTICES

    # A client that lost its responses sends everything again: same receipts, nothing new.
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for i in range(0, NOTICES, 7):
            r = client.post(
                "/api/v1/notices",
                json=_body(i),
                headers={**headers, "Idempotency-Key": _key(i)},
            )
            assert r.status_code == 201, r.text
            assert r.json() == receipts[i]

    with engine.connect() as conn:
        # Exactly one notice per notice sent: no duplicate from any retry.
        total, distinct = conn.execute(
            text("SELECT count(*), count(DISTINCT locations[1]) FROM notices")
        ).one()
        assert (total, distinct) == (NOTICES, NOTICES)
        stored = {
            str(public_id): (notice_id, locations)
            for public_id, notice_id, locations in conn.execute(
                text("SELECT public_id, id, locations FROM notices")
            )
        }
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == NOTICES

        # Every receipt the client holds is a stored notice — the one it sent.
        for i, receipt in receipts.items():
            assert receipt["notice_id"] in stored, (i, receipt)
            assert stored[receipt["notice_id"]][1] == [_url(i)]
            assert receipt["acknowledgement_sent"] is True
        assert {r["notice_id"] for r in receipts.values()} == set(stored)

        # Each notice has one acknowledgement; each message has its delivery job.
        acks = conn.execute(
            text(
                "SELECT m.related_id, m.id, count(j.id) FROM messages m "
                "LEFT JOIN procrastinate_jobs j ON j.task_name = 'outbox.deliver' "
                "AND j.args->>'message_id' = m.id::text "
                "WHERE m.kind = 'notice.acknowledgement' GROUP BY m.related_id, m.id"
            )
        ).all()
        assert sorted(int(rel) for rel, _, _ in acks) == sorted(n for n, _ in stored.values())
        assert [(mid, jobs) for _, mid, jobs in acks if jobs != 1] == []
        orphan_jobs = conn.execute(
            text(
                "SELECT count(*) FROM procrastinate_jobs j WHERE j.task_name = 'outbox.deliver' "
                "AND NOT EXISTS (SELECT 1 FROM messages m "
                "WHERE m.id::text = j.args->>'message_id')"
            )
        ).scalar_one()
        assert orphan_jobs == 0

        # The idempotency records agree with the client.
        keys: dict[str, str] = dict(
            conn.execute(text("SELECT key, response->>'notice_id' FROM idempotency_keys")).all()
        )
        assert keys == {_key(i): r["notice_id"] for i, r in receipts.items()}

    # The audit chain survived the crash: one entry per notice, no gap, no broken link.
    report = audit.verify(ctx)
    assert report.ok, report.problems
    with engine.connect() as conn:
        received = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'notice.received'")
        ).scalar_one()
    assert received == NOTICES
