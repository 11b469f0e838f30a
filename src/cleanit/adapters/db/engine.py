"""Engine and session factory. Built by the composition root, never at import time."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def sqlalchemy_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as operators write them) and pick psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(
        "CLEANIT_DATABASE_URL must be a PostgreSQL URL such as "
        "postgresql://user:password@host:5432/cleanit"
    )


def libpq_url(url: str) -> str:
    """The same database as a libpq connection string (for psycopg and procrastinate)."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    # pre_ping lets the process recover by itself after the database comes back.
    return create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
