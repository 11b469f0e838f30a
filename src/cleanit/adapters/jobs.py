"""Background jobs on procrastinate.

Jobs are deferred with procrastinate's own SQL function *inside the caller's transaction*, so a
job exists if and only if the state change that causes it was committed: no lost job on a crash
and no job about a change that was rolled back.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Exists,
    MetaData,
    String,
    Table,
    Text,
    cast,
    exists,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Session

# Persisted job (task) names: explicit constants, never derived from function names.
DELIVER_MESSAGE = "outbox.deliver"
SEND_PLATFORM_ACTION = "platform.send_action"
SWEEP = "maintenance.sweep"
REMATCH = "matching.rematch"
SYNC_EXCHANGE = "exchanges.sync"
SEND_EXCHANGE_OPINION = "exchanges.send_opinion"
MATCH_BATCH_ITEM = "matching.batch_item"
# Removal orders: reminders at their due times, their webhook, and the minute sweep.
ESCALATE_ORDER = "orders.escalate"
SEND_ORDER_ESCALATION = "orders.send_escalation"
ORDERS_SWEEP = "orders.sweep"
# DSA Transparency Database: one provider's queued statements, sent in batches of 100.
SUBMIT_TDB = "tdb.submit_batch"
# Jobs with a higher number run first: an order's hour is the tightest deadline there is.
ORDER_PRIORITY = 10

DEFAULT_QUEUE = "default"

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, NULL, NULL, "
    "CAST(:args AS jsonb), :scheduled_at)::procrastinate_job_to_defer_v1])"
)


def defer(
    session: Session,
    task_name: str,
    args: dict[str, Any],
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    scheduled_at: datetime | None = None,
) -> None:
    """Defer a job in the session's current transaction."""
    session.connection().execute(
        _DEFER,
        {
            "queue": queue,
            "task": task_name,
            "priority": priority,
            "args": json.dumps(args),
            "scheduled_at": scheduled_at,
        },
    )


_DEFER_MANY = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY(SELECT ROW(:queue, :task, :priority, NULL, NULL, "
    "a.value, NULL)::procrastinate_job_to_defer_v1 "
    "FROM jsonb_array_elements(CAST(:args AS jsonb)) WITH ORDINALITY AS a(value, n) "
    "ORDER BY a.n))"
)


def defer_many(
    session: Session,
    task_name: str,
    args: list[dict[str, Any]],
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
) -> None:
    """Defer one job per ``args`` in the session's current transaction, in one statement
    (a bulk submission defers up to a thousand jobs at once)."""
    if args:
        session.connection().execute(
            _DEFER_MANY,
            {"queue": queue, "task": task_name, "priority": priority, "args": json.dumps(args)},
        )


def procrastinate_schema_sql() -> str:
    """procrastinate's schema, applied by our Alembic migration (one migration tool)."""
    return resources.files("procrastinate.sql").joinpath("schema.sql").read_text("utf-8")


# A light description of procrastinate's jobs table, for housekeeping queries only.
JOBS_TABLE = Table(
    "procrastinate_jobs",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("task_name", String),
    Column("status", String),
    Column("args", JSONB),
)


def pending_job_exists(
    task_name: str, arg: str, id_column: ColumnElement[int] | InstrumentedAttribute[int]
) -> Exists:
    """SQL: a job of ``task_name`` whose ``args[arg]`` equals ``id_column`` is still to run."""
    return exists().where(
        JOBS_TABLE.c.task_name == task_name,
        cast(JOBS_TABLE.c.status, Text).in_(["todo", "doing"]),
        JOBS_TABLE.c.args[arg].astext == cast(id_column, Text),
    )
