"""Alembic environment. The URL comes from the caller (``cleanit db upgrade``), never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from cleanit.adapters.db.engine import sqlalchemy_url
from cleanit.adapters.db.models import Base

config = context.config
url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL given to the migrations")

engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        # Serialise concurrent upgrades (several processes starting at once).
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7266355001)")
        context.run_migrations()
engine.dispose()
