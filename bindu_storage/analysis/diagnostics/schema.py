"""Migration status (the schema's alembic revision vs head) and drift (declared vs existing).

Both are computed in Python (from the revision scripts and ``bindu_storage.storage.schema``), so
their columns are declared here: ``MIGRATION_STATUS_COLUMNS`` and ``SCHEMA_DRIFT_COLUMNS``.
``status`` is ``up to date``, ``behind head`` (older revision: run the migrations),
``upstream Bindu`` (made by upstream Bindu: an upstream revision, or its tables without an
``alembic_version``; running the migrations adopts it, see ``bindu_storage.storage.adopt``),
``unknown revision`` (neither ours nor upstream's: written by a newer bindu-storage) or
``not migrated`` (no ``alembic_version`` table, no Bindu tables). ``schema_drift`` has one row per difference
between what the migrations declare (``bindu_storage.storage.schema.EXPECTED``) and what the
catalog shows: ``kind`` is ``missing``, ``unexpected`` or ``different``; ``object_type`` is
``table``, ``column``, ``index`` or ``constraint``. Drift is only meaningful once the schema is
at the revision ``EXPECTED`` describes; otherwise ``attrs["note"]`` says so.
"""

from __future__ import annotations

from functools import lru_cache

import asyncpg
import pandas as pd
from alembic.script import ScriptDirectory

from bindu_storage.analysis.diagnostics.query import diagnostic
from bindu_storage.analysis.diagnostics.session import Session
from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.storage import migrate
from bindu_storage.storage import schema as declared
from bindu_storage.storage.adopt import UPSTREAM_REVISIONS

MIGRATION_STATUS_COLUMNS = ("schema_name", "database_revision", "head_revision", "status")
SCHEMA_DRIFT_COLUMNS = ("kind", "object_type", "table_name", "name", "expected", "actual")

HAS_VERSION_TABLE = "SELECT to_regclass($1) IS NOT NULL"
"""Whether a (schema-qualified) table exists: ``alembic_version``, or upstream's tables."""
DATABASE_REVISION = "SELECT version_num FROM {schema}.alembic_version"


@lru_cache(maxsize=1)
def _known_revisions() -> frozenset[str]:
    scripts = ScriptDirectory(str(migrate.script_location()))
    return frozenset(script.revision for script in scripts.walk_revisions())


async def database_revision(conn: asyncpg.Connection, schema: str = "public") -> str | None:
    """The alembic revision recorded in ``schema``, or None when it was never migrated."""
    table = f"{quote_ident(validate_schema_name(schema))}.alembic_version"
    if not await conn.fetchval(HAS_VERSION_TABLE, table):
        return None
    return await conn.fetchval(DATABASE_REVISION.format(schema=quote_ident(schema)))


class SchemaTopic(Session):
    """Migration status and drift from the declared schema."""

    @diagnostic(columns=MIGRATION_STATUS_COLUMNS)
    async def migration_status(self, schema: str | None = None) -> pd.DataFrame:
        """One row: the schema's revision, the newest revision of the scripts, and the verdict."""
        schema = self._schema(schema)
        conn = await self._open_connection()
        current = await database_revision(conn, schema)
        head = migrate.head_revision()
        if current is None:
            made_by_upstream = all([
                await conn.fetchval(HAS_VERSION_TABLE, f"{quote_ident(schema)}.{table}")
                for table in ("tasks", "contexts")
            ])
            status = "upstream Bindu" if made_by_upstream else "not migrated"
        elif current == head:
            status = "up to date"
        elif current in _known_revisions():
            status = "behind head"
        elif current in UPSTREAM_REVISIONS:
            status = "upstream Bindu"
        else:
            status = "unknown revision"
        return self._records([(schema, current, head, status)], MIGRATION_STATUS_COLUMNS, ("text",) * 4)

    @diagnostic(columns=SCHEMA_DRIFT_COLUMNS)
    async def schema_drift(self, schema: str | None = None) -> pd.DataFrame:
        """Every difference between the schema the migrations declare and ``schema`` as it is."""
        schema = self._schema(schema)
        conn = await self._open_connection()
        actual = await declared.introspect(conn, schema)
        drifts = declared.diff(declared.EXPECTED, actual)
        rows = [(d.kind, d.object_type, d.table, d.name, d.expected, d.actual) for d in drifts]
        frame = self._records(rows, SCHEMA_DRIFT_COLUMNS, ("text",) * 6)
        current = await database_revision(conn, schema)
        if current != declared.EXPECTED_REVISION:
            frame.attrs["note"] = (
                f"schema {schema!r} is at revision {current or 'none'}, the declared schema describes "
                f"{declared.EXPECTED_REVISION}: migrate first, then read the drift"
            )
        return frame
