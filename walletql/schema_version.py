"""Is the database at the migrations this code was written for?

serve, worker and the Lambda check at start: one query on ``alembic_version`` against the
heads of the migration scripts. Behind: refuse (or migrate when asked). Ahead, at a
revision these scripts do not know (the code was rolled back): always refuse, since
nothing here can tell whether the newer schema still fits this code.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.url import DatabaseUrl
from walletql.migrate import MIGRATIONS_DIR
from walletql.startup import StartupError

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)


async def database_revisions(
    url: DatabaseUrl, connection: asyncpg.Connection | None = None
) -> set[str]:
    """The revisions recorded in the database; empty when it was never migrated. Read on
    ``connection`` when given (it stays open), else on a connection of its own."""
    import asyncpg

    own = connection is None
    if connection is None:
        try:
            connection = await asyncpg.connect(**url.asyncpg_kwargs())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StartupError(
                f"cannot connect to the database at {url.host}:{url.port}/{url.database} "
                f"(WALLETQL_DATABASE_URL): {reason}"
            ) from None
    try:
        rows = await connection.fetch("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return set()
    finally:
        if own:
            await connection.close()
    return {row[0] for row in rows}


def script_revisions() -> tuple[set[str], set[str]]:
    """(heads, every known revision) of the migration scripts shipped with this code.

    Read from the scripts' ``revision``/``down_revision`` lines rather than through
    Alembic's ScriptDirectory, which costs ~0.26 s of imports at every start (a test
    checks both agree)."""
    parents: dict[str, set[str]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values = _module_constants(path)
        revision = values.get("revision")
        if isinstance(revision, str):
            down = values.get("down_revision")
            parents[revision] = {down} if isinstance(down, str) else set(down or ())
    children = set().union(*parents.values()) if parents else set()
    return set(parents) - children, set(parents)


# ``revision: str = '0002'``, ``down_revision = None`` or a merge's tuple (over lines); the
# last assignment wins, as when the module runs.
_CONSTANT = re.compile(
    r"""^(revision|down_revision)\b[^=\n]*=[ \t]*(None|'[^']*'|"[^"]*"|\([^)]*\))""", re.MULTILINE
)


def _module_constants(path: Path) -> dict[str, Any]:
    """The script's top-level ``revision``/``down_revision`` values, by a scan of its lines
    (parsing every script with ``ast`` cost ~5 ms of each start, this well under 1)."""
    return {name: ast.literal_eval(value) for name, value in _CONSTANT.findall(path.read_text())}


async def ensure_schema(
    url: DatabaseUrl, *, migrate: bool, connection: asyncpg.Connection | None = None
) -> None:
    """Return when the database is at the head; migrate first if ``migrate``; else refuse.
    The revisions are read on ``connection`` when given."""
    current = await database_revisions(url, connection)
    heads, known = script_revisions()
    if current == heads:
        return
    unknown = sorted(current - known)
    if unknown:
        raise StartupError(
            f"the database is at migration {', '.join(unknown)}, which this walletql does not "
            "know (newer code migrated it): deploy that code again, or downgrade the database "
            "with it first"
        )
    if not migrate:
        at = ", ".join(sorted(current)) or "no migration"
        raise StartupError(
            f"the database is not at the latest migration (it is at {at}; this walletql needs "
            f"{', '.join(sorted(heads))}): run `walletql migrate`, or set "
            "WALLETQL_MIGRATE_ON_START=true"
        )
    from walletql.migrate import upgrade

    log.info("migrating the database to %s", ", ".join(sorted(heads)))
    await asyncio.to_thread(upgrade, url)
