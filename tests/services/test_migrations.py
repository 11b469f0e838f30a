"""The Alembic migrations build exactly the schema the models describe, and are re-runnable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text

from cleanit.adapters.db import migrate
from cleanit.adapters.db.engine import sqlalchemy_url
from cleanit.adapters.db.models import Base
from tests.conftest import _with_db


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """procrastinate's tables come from its own schema file; alembic_version is Alembic's."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", "")
    return not (str(table_name).startswith("procrastinate_") or table_name == "alembic_version")


def schema_diff(url: str) -> list[Any]:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": _ours,
                },
            )
            return list(compare_metadata(mc, Base.metadata))
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, Any]:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables = {
                t: (
                    [
                        (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                        for c in insp.get_columns(t)
                    ],
                    sorted(str(sorted(i.items())) for i in insp.get_indexes(t)),
                    sorted(str(sorted(u.items())) for u in insp.get_unique_constraints(t)),
                    sorted(str(sorted(f.items())) for f in insp.get_foreign_keys(t)),
                )
                for t in insp.get_table_names()
            }
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            functions = conn.execute(
                text(
                    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'public'"
                )
            ).scalar()
            return {"tables": tables, "versions": versions, "functions": functions}
    finally:
        engine.dispose()


@pytest.fixture
def fresh_url(server_url: str) -> Iterator[str]:
    """An empty database of its own (not the shared test database)."""
    name = f"cleanit_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    diff = schema_diff(database_url)
    assert diff == [], "models and migrations drifted apart; write a migration:\n" + "\n".join(
        map(str, diff)
    )


def test_every_model_table_exists_after_migrating(database_url: str) -> None:
    tables = set(snapshot(database_url)["tables"])
    assert set(Base.metadata.tables) <= tables
    assert {"procrastinate_jobs", "procrastinate_events", "alembic_version"} <= tables


def test_the_comparison_would_notice_drift(database_url: str) -> None:
    """The drift check is not vacuous: a model change shows up as a difference."""
    from sqlalchemy import Column, Integer, MetaData, String, Table

    meta = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(meta)
    meta.tables["notices"].append_column(Column("extra", String(10)))
    Table("not_migrated", meta, Column("id", Integer, primary_key=True))
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _ours}
            )
            diff = compare_metadata(mc, meta)
    finally:
        engine.dispose()
    ops = {(d[0], getattr(d[-1], "name", None)) for d in diff if isinstance(d, tuple)}
    assert ("add_table", "not_migrated") in ops
    assert any(
        d[0] == "add_column" and d[2] == "notices" and d[3].name == "extra"
        for d in diff
        if isinstance(d, tuple)
    )


def test_there_is_one_head_and_the_database_is_at_it(database_url: str) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(database_url))
    heads = script.get_heads()
    assert len(heads) == 1, f"branched migrations: {heads}"
    assert migrate.current(database_url) == heads[0]


def test_upgrading_twice_is_a_no_op(fresh_url: str) -> None:
    assert migrate.current(fresh_url) is None
    migrate.upgrade(fresh_url)
    first = snapshot(fresh_url)
    migrate.upgrade(fresh_url)
    second = snapshot(fresh_url)
    assert first == second
    assert len(second["versions"]) == 1
    assert schema_diff(fresh_url) == []
