"""Apply Alembic migrations. The app never calls ``create_all``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from db.url import DatabaseUrl, as_database_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: DatabaseUrl | str) -> Config:
    """Alembic's config; ``migrations/env.py`` connects with the parsed URL it carries."""
    from alembic.config import Config  # ~0.1 s: only the processes that migrate pay for it

    database = as_database_url(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # For offline mode and messages only, so without the password.
    config.set_main_option(
        "sqlalchemy.url", database.render(scheme="postgresql+asyncpg").replace("%", "%%")
    )
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database
    return config


def upgrade(url: DatabaseUrl | str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Blocking: call it from a thread."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
