"""Transparency report over a year of 1,000,000 decisions, beside its bare SQL.

Everything is real and local: an embedded PostgreSQL in a temporary directory, migrated with
the product's migrations, filled with ``INSERT ... SELECT generate_series`` (content items,
cases, notices and decisions one per case, complaints for 5 % of the decisions, spread over
2026). Then, in the same run, it times ``build_report`` for the year (DSA and TCO) and the
same aggregate queries executed bare with psycopg (no ORM, no folding into sections):

    build_report(dsa, 2026) < 10 s, and < 3x the bare queries.

Usage:  python bench/reports.py [--decisions 1000000] [--repeat 3] [--json results.json]
                                [--strict]
``--strict`` exits 1 when a target is missed (the default only reports it).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from cleanit.adapters.db import migrate
from cleanit.adapters.embedded import EmbeddedPostgres, start_embedded
from cleanit.bootstrap import build
from cleanit.domain.roles import OrgKind
from cleanit.services import imports, organisations, reports
from cleanit.settings import Settings

TARGET_SECONDS = 10.0
TARGET_RATIO = 3.0

CATEGORIES = (
    "ARRAY['STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY', 'STATEMENT_CATEGORY_VIOLENCE', "
    "'STATEMENT_CATEGORY_SCAMS_AND_FRAUD', 'STATEMENT_CATEGORY_SELF_HARM']"
)
# One row per decision (i = 1..N); ids are given explicitly so the tables line up.
FILL = [
    """INSERT INTO content_items (id, provider_id, url, canonical_url, platform_state)
       SELECT i, %(org)s, 'https://bench.example.org/v/' || i, 'https://bench.example.org/v/' || i,
              'available'
       FROM generate_series(1, %(n)s) i""",
    """INSERT INTO cases (id, provider_id, content_item_id, state, priority, category,
                          jurisdiction)
       SELECT i, %(org)s, i, 'closed', 50,
              ("""
    + CATEGORIES
    + """)[1 + i %% 4],
              'DE'
       FROM generate_series(1, %(n)s) i""",
    """INSERT INTO notices (id, public_id, tracking_secret_hash, provider_id, source_type,
                            category, keywords, explanation, locations, jurisdiction, good_faith,
                            anonymous, art16_complete, received_at)
       SELECT i, gen_random_uuid(), md5(i::text), %(org)s,
              (ARRAY['end_user', 'trusted_flagger', 'own_initiative', 'automated_detection',
                     'referral_unit'])[1 + i %% 5],
              ("""
    + CATEGORIES
    + """)[1 + i %% 4],
              '{}', 'Benchmark notice about invented content.',
              ARRAY['https://bench.example.org/v/' || i], 'DE', true, false, true,
              timestamptz '2026-01-01 00:00+00' + (i %% 360) * interval '1 day'
                + (i %% 23) * interval '1 hour'
       FROM generate_series(1, %(n)s) i""",
    """INSERT INTO notice_cases (notice_id, case_id)
       SELECT i, i FROM generate_series(1, %(n)s) i""",
    """INSERT INTO decisions (id, case_id, provider_id, action, ground, facts, territorial_scope,
                              automated_detection, automated_decision, status, in_force_at)
       SELECT i, i, %(org)s,
              (ARRAY['remove', 'disable_access', 'no_action', 'restrict_visibility'])[1 + i %% 4],
              CASE WHEN i %% 4 = 2 THEN NULL ELSE 'incompatible_content' END,
              'Benchmark decision.', '{}', i %% 5 = 3,
              (ARRAY['not_automated', 'partially', 'fully'])[1 + i %% 3],
              CASE WHEN i %% 20 = 0 THEN 'superseded' ELSE 'in_force' END,
              timestamptz '2026-01-01 00:00+00' + (i %% 360) * interval '1 day'
                + (i %% 23) * interval '1 hour' + (1 + i %% 47) * interval '1 hour'
       FROM generate_series(1, %(n)s) i""",
    """INSERT INTO complaints (public_id, decision_id, case_id, provider_id, complainant_kind,
                               grounds, status, outcome, lodged_at, decided_at)
       SELECT gen_random_uuid(), i, i, %(org)s, 'content_provider', 'Benchmark complaint.',
              'decided', CASE WHEN i %% 20 = 0 THEN 'reversed' ELSE 'upheld' END,
              timestamptz '2026-01-03 00:00+00' + (i %% 355) * interval '1 day',
              timestamptz '2026-01-03 00:00+00' + (i %% 355) * interval '1 day'
                + (1 + i %% 71) * interval '1 hour'
       FROM generate_series(5, %(n)s, 5) i""",
]


def _psycopg_sql(query: str) -> str:
    # SQLAlchemy's :name parameters as psycopg's %(name)s (the queries have no '::' casts).
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", query)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timings: the best of this many")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cleanit-bench-reports-"))
    tmp.chmod(0o755)  # the embedded server may run as its own system user
    pg: EmbeddedPostgres | None = None
    try:
        print("starting embedded PostgreSQL ...", flush=True)
        pg = start_embedded(tmp / "pgdata", database="cleanit_bench")
        url = pg.url("cleanit_bench")
        migrate.upgrade(url)
        rt = build(Settings(database_url=url, data_dir=tmp / "data"), upgrade=False)
        org = organisations.create_organisation(
            rt.ctx, slug="bench-host", name="Bench host", kind=OrgKind.HOSTING_PROVIDER
        )
        t = time.perf_counter()
        with psycopg.connect(url) as conn:
            for statement in FILL:
                conn.execute(statement, {"org": org.id, "n": args.decisions})  # type: ignore[arg-type]
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        fill_s = time.perf_counter() - t
        print(f"filled {args.decisions:,} decisions in {fill_s:.1f} s", flush=True)

        principal = imports.operator_principal(rt.ctx, "bench-host")
        year = reports.parse_period("2026")
        params = {
            "org": org.id,
            "start": year.start,
            "end": year.end,
            "terrorist": reports.TERRORIST_CATEGORY,
        }
        results: dict[str, Any] = {"decisions": args.decisions, "fill_s": round(fill_s, 1)}
        met = True
        with psycopg.connect(url) as conn:
            # The same memory the service gives its report transaction (apples to apples).
            conn.execute(f"SET work_mem = '{reports.REPORT_WORK_MEM}'")
            for kind, names in (("dsa", reports.DSA_QUERIES), ("tco", reports.TCO_QUERIES)):

                def bare(names: tuple[str, ...] = names) -> None:
                    for n in names:
                        conn.execute(_psycopg_sql(reports.QUERIES[n]), params).fetchall()  # type: ignore[arg-type]

                def service(kind: reports.ReportKind = kind) -> reports.Report:  # type: ignore[assignment]
                    return reports.build_report(
                        rt.ctx,
                        principal,
                        organisation_slug="bench-host",
                        period_start=year.start,
                        period_end=year.end,
                        kind=kind,
                    )

                bare()  # warm the caches for both
                for n in names:
                    q = _psycopg_sql(reports.QUERIES[n])
                    each = best_of(1, lambda q=q: conn.execute(q, params).fetchall())  # type: ignore[misc]
                    print(f"  {kind} query {n}: {each:.3f} s", flush=True)
                bare_s = best_of(args.repeat, bare)
                service_s = best_of(args.repeat, service)
                ratio = service_s / bare_s
                ok = service_s < TARGET_SECONDS and ratio < TARGET_RATIO
                met = met and ok
                total = service().section("decisions" if kind == "dsa" else "actions")
                results[kind] = {
                    "build_report_s": round(service_s, 3),
                    "bare_sql_s": round(bare_s, 3),
                    "ratio": round(ratio, 2),
                    "decisions_counted": total.value("total"),
                    "met": ok,
                }
                print(
                    f"{kind}: build_report {service_s:.3f} s, bare SQL {bare_s:.3f} s, "
                    f"ratio {ratio:.2f} (targets < {TARGET_SECONDS:.0f} s, < {TARGET_RATIO:.0f}x)"
                    f" -> {'met' if ok else 'MISSED'}; counted {total.value('total')}",
                    flush=True,
                )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        rt.close(stop_embedded=False)
        return 1 if args.strict and not met else 0
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
