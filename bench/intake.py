"""Sustained notice intake over HTTP, beside a raw-insert baseline measured in the same run.

Everything is real and local: an embedded PostgreSQL in a temporary directory, migrated with
the product's migrations, served by one ``cleanit serve`` process (uvicorn), and a client
with N threads, each with its own keep-alive ``httpx`` connection, submitting trusted-flagger
notices (distinct URLs, each with an Idempotency-Key).

The baseline inserts the same notice rows straight into ``notices`` with psycopg, one
transaction per row, at the same concurrency. Intake does much more per notice (token check,
idempotency key, content item, case, link, acknowledgement message, its job, audit entry), so
the target is a fraction of the raw rate:

    intake >= 1/4 of the raw-insert rate, and intake p99 latency < 100 ms.

Usage:  python bench/intake.py [--notices 3000] [--concurrency 8] [--warmup 200]
                               [--json results.json] [--strict]
``--strict`` exits 1 when a target is missed (the default only reports it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cleanit.adapters.db import migrate
from cleanit.adapters.embedded import EmbeddedPostgres, start_embedded
from cleanit.bootstrap import build
from cleanit.domain.roles import OrgKind, Role
from cleanit.services import organisations
from cleanit.settings import Settings

TARGET_RATIO = 0.25
TARGET_P99_MS = 100.0
EXPLANATION = "It calls on people to join an invented violent group (benchmark data)."


@dataclass
class Result:
    name: str
    notices: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # CPU time per notice (ms) of: this client, the cleanit server, the PostgreSQL processes.
    cpu_client_ms: float = math.nan
    cpu_server_ms: float = math.nan
    cpu_postgres_ms: float = math.nan


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu(pids: list[int], *, skip_gone: bool = False) -> float:
    """User+system CPU seconds of these processes (Linux /proc; NaN elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            if skip_gone:
                continue  # exited meanwhile: its time is in the parent's reaped total
            return math.nan
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds of the postmaster, its live children and its exited (reaped) children, so
    backends that come and go between two readings are counted too."""
    pids = postgres_pids(pgdata)
    if not pids:
        return math.nan
    try:
        fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    reaped = (int(fields[13]) + int(fields[14])) / _TICK
    return reaped + proc_cpu(pids, skip_gone=True)


def process_tree(pid: int) -> list[int]:
    """A process and its direct children (uvicorn's worker processes)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def postgres_pids(pgdata: Path) -> list[int]:
    """The postmaster and all its children (backends, WAL writer, checkpointer, ...)."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def measured(run: Callable[[], Result], server_pid: int | None, pgdata: Path) -> Result:
    """Run and attach the CPU each party spent per notice."""
    client0, pg0 = time.process_time(), postgres_cpu(pgdata)
    server0 = proc_cpu(process_tree(server_pid)) if server_pid else math.nan
    result = run()
    n = max(result.notices, 1)
    result.cpu_client_ms = (time.process_time() - client0) / n * 1000
    result.cpu_postgres_ms = (postgres_cpu(pgdata) - pg0) / n * 1000
    if server_pid:
        result.cpu_server_ms = (proc_cpu(process_tree(server_pid)) - server0) / n * 1000
    return result


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


def run_concurrently(
    name: str,
    count: int,
    concurrency: int,
    make_worker: Callable[[], Callable[[int], None]],
    budget: float = math.inf,
) -> Result:
    """Call a per-thread worker for indices 0..count-1 from ``concurrency`` threads; after
    ``budget`` seconds no new index is handed out (the rate stays valid, the run bounded)."""
    next_index = iter(range(count))
    deadline = [math.inf]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[Exception] = []
    start = threading.Barrier(concurrency + 1)

    def thread_main() -> None:
        try:
            work = make_worker()
        except Exception as exc:  # noqa: BLE001 - re-raised by the main thread
            errors.append(exc)
            start.abort()
            return
        mine: list[float] = []
        try:
            start.wait()
            while not errors and time.perf_counter() < deadline[0]:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                t0 = time.perf_counter()
                work(i)
                mine.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - re-raised by the main thread
            errors.append(exc)
        finally:
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=thread_main, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()  # a worker failed to start: its error is reported below
    t0 = time.perf_counter()
    deadline[0] = t0 + budget
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{name}: {errors[0]!r}") from errors[0]
    latencies.sort()
    return Result(
        name=name,
        notices=len(latencies),
        seconds=elapsed,
        per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=latencies[-1] * 1000 if latencies else math.nan,
    )


def notice_body(tag: str, i: int) -> dict[str, Any]:
    return {
        "provider": "bench-host",
        "source_type": "trusted_flagger",
        "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "keywords": ["KEYWORD_TERRORIST_CONTENT"],
        "explanation": EXPLANATION,
        "locations": [f"https://bench-host.example.org/{tag}/{i}"],
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Invented Flagger",
        "notifier_email": "desk@flagger.example.org",
    }


def http_worker(base_url: str, token: str, tag: str) -> Callable[[], Callable[[int], None]]:
    def make() -> Callable[[int], None]:
        client = httpx.Client(
            base_url=base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )

        def work(i: int) -> None:
            r = client.post(
                "/api/v1/notices",
                json=notice_body(tag, i),
                headers={"Idempotency-Key": f"{tag}-{i}"},
            )
            if r.status_code != 201:
                raise RuntimeError(f"notice {tag}/{i}: HTTP {r.status_code} {r.text[:300]}")

        return work

    return make


RAW_INSERT = """
INSERT INTO notices (public_id, tracking_secret_hash, provider_id, notifier_org_id,
    source_type, category, keywords, explanation, locations, jurisdiction, good_faith,
    anonymous, art16_complete, notifier_name, notifier_email, received_at)
VALUES (%s, %s, %s, %s, 'trusted_flagger', 'STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY',
    %s, %s, %s, 'DE', true, false, true, 'Invented Flagger', 'desk@flagger.example.org', now())
"""


def raw_worker(url: str, provider_id: int, flagger_id: int, tag: str) -> Callable[[], Any]:
    def make() -> Callable[[int], None]:
        conn = psycopg.connect(url)  # one transaction per row: commit after each insert

        def work(i: int) -> None:
            tracking = "CIT-" + secrets.token_urlsafe(18)
            conn.execute(
                RAW_INSERT,
                (
                    uuid.uuid4(),
                    hashlib.sha256(tracking.encode()).hexdigest(),
                    provider_id,
                    flagger_id,
                    ["KEYWORD_TERRORIST_CONTENT"],
                    EXPLANATION,
                    [f"https://bench-host.example.org/{tag}/{i}"],
                ),
            )
            conn.commit()

        return work

    return make


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    url: str, data_dir: Path, port: int, log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANIT_")}
    env.update(
        CLEANIT_DATABASE_URL=url, CLEANIT_DATA_DIR=str(data_dir), CLEANIT_LOG_LEVEL="WARNING"
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cleanit.cli.main import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cleanit serve exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("cleanit serve was not ready within 60 s")


def row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN (a measure not available here) as null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def fmt_nan(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def print_table(results: list[Result]) -> None:
    head = [
        "",
        "notices",
        "seconds",
        "notices/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU ms/notice: client",
        "server",
        "postgres",
    ]
    lines = [
        [r.name, str(r.notices), f"{r.seconds:.2f}", f"{r.per_second:.1f}",
         f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.max_ms:.1f}",
         fmt_nan(r.cpu_client_ms), fmt_nan(r.cpu_server_ms), fmt_nan(r.cpu_postgres_ms)]
        for r in results
    ]  # fmt: skip
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    print(row(head, widths))
    print(row(["-" * w for w in widths], widths))
    for line in lines:
        print(row(line, widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notices", type=int, default=3000, help="measured notices (each)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured notices first")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=110,
        help="stop handing out intake notices after this long (keeps the run under 3 min)",
    )
    parser.add_argument("--workers", type=int, default=1, help="HTTP worker processes")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cleanit-bench-"))
    tmp.chmod(0o755)  # the embedded server may run as its own system user
    pg: EmbeddedPostgres | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        print("starting embedded PostgreSQL ...", flush=True)
        pg = start_embedded(tmp / "pgdata", database="cleanit_bench")
        url = pg.url("cleanit_bench")
        migrate.upgrade(url)
        rt = build(Settings(database_url=url, data_dir=tmp / "seed"), upgrade=False)
        try:
            host = organisations.create_organisation(
                rt.ctx, slug="bench-host", name="Bench Host", kind=OrgKind.HOSTING_PROVIDER
            )
            flagger = organisations.create_organisation(
                rt.ctx, slug="bench-flagger", name="Bench Flagger", kind=OrgKind.TRUSTED_FLAGGER
            )
            token = organisations.issue_token(
                rt.ctx, org_slug="bench-flagger", name="bench", roles=[Role.TRUSTED_FLAGGER]
            ).token
        finally:
            rt.close(stop_embedded=False)

        port = free_port()
        print(f"starting cleanit serve on port {port} ...", flush=True)
        server = start_server(url, tmp / "data", port, tmp / "server.log", args.workers)
        base = f"http://127.0.0.1:{port}"
        c = args.concurrency

        print(f"warm-up: {args.warmup} notices ...", flush=True)
        run_concurrently("warm-up", args.warmup, c, http_worker(base, token, "warm"))
        run_concurrently("warm-up", args.warmup, c, raw_worker(url, host.id, flagger.id, "rw"))

        print(f"measuring: {args.notices} notices each, {c} concurrent ...", flush=True)
        pgdata = tmp / "pgdata"
        intake = measured(
            lambda: run_concurrently(
                "intake (HTTP)",
                args.notices,
                c,
                http_worker(base, token, "intake"),
                budget=args.max_seconds,
            ),
            server.pid,
            pgdata,
        )
        raw = measured(
            lambda: run_concurrently(
                "raw INSERT (psycopg)",
                args.notices,
                c,
                raw_worker(url, host.id, flagger.id, "raw"),
            ),
            None,
            pgdata,
        )
        with psycopg.connect(url) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM notices WHERE locations[1] LIKE %s",
                ("https://bench-host.example.org/intake/%",),
            ).fetchone()
        if stored != (intake.notices,):
            raise RuntimeError(f"expected {intake.notices} intake notices stored, found {stored}")

        ratio = intake.per_second / raw.per_second
        rate_ok = ratio >= TARGET_RATIO
        p99_ok = intake.p99_ms < TARGET_P99_MS
        print()
        print(
            f"cleanit notice intake — {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPU(s), embedded PostgreSQL, "
            f"{args.workers} uvicorn process(es), {c} client threads"
        )
        print()
        print_table([raw, intake])
        if intake.notices < args.notices:
            print(
                f"(intake stopped after --max-seconds {args.max_seconds:g}: "
                f"{intake.notices} of {args.notices} notices measured)"
            )
        print()
        verdict = {True: "met", False: "MISSED"}
        print(f"intake / raw = {ratio:.2f}  (target >= {TARGET_RATIO:.2f}: {verdict[rate_ok]})")
        print(
            f"intake p99   = {intake.p99_ms:.1f} ms  "
            f"(target < {TARGET_P99_MS:.0f} ms: {verdict[p99_ok]})"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "concurrency": c,
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "raw": json_safe(asdict(raw)),
                        "intake": json_safe(asdict(intake)),
                        "ratio": ratio,
                        "targets": {
                            "ratio": TARGET_RATIO,
                            "ratio_met": rate_ok,
                            "p99_ms": TARGET_P99_MS,
                            "p99_met": p99_ok,
                        },
                    },
                    indent=2,
                )
                + "\n"
            )
        return 1 if args.strict and not (rate_ok and p99_ok) else 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
