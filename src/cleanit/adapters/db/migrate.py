"""Running the Alembic migrations programmatically."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    ini = resources.files("cleanit.adapters.db").joinpath("alembic.ini")
    cfg = Config(str(ini))
    cfg.set_main_option(
        "script_location", str(resources.files("cleanit.adapters.db").joinpath("migrations"))
    )
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    from sqlalchemy import create_engine, pool, text

    from cleanit.adapters.db.engine import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
            if not exists:
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
