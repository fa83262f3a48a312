"""Adopting a schema upstream Bindu made, and handing one back to upstream.

Upstream Bindu (the ``bindu`` package) makes the same four tables two ways: its own alembic
revisions in ``public`` (``alembic_version`` then holds one of ``UPSTREAM_REVISIONS``), and
``metadata.create_all`` in a per-agent ``did_…`` schema (no ``alembic_version`` at all).

**Adoption** (``adopt``, run by every ``upgrade`` inside the migration's locked transaction,
before alembic reads the version table) brings such a schema to the shape of our revision
``ADOPTED_AS`` with idempotent statements and records that revision; our later revisions then
run as usual (``0004`` logs each task's current state as its first event, ``0005`` numbers
rows in ``created_at, id`` order: the creation order backfilled from what upstream kept). It
adds what older upstream revisions lack (``owner_did``, ``webhook_configs``, the tasks →
contexts foreign key), makes ``owner_did`` ``TEXT`` (same bytes as upstream's
``VARCHAR(255)``, no rewrite), gives the shared index names our definitions (upstream's GIN
indexes use ``jsonb_ops``; ours ``jsonb_path_ops``), drops upstream's indexes that duplicate
ours or that nothing queries (``UPSTREAM_ONLY_INDEXES``) and names the foreign keys as ours
are named. Rows are never rewritten: tasks, contexts, feedback and webhook configs keep every
value, ``created_at`` and ``updated_at`` included. Upstream's alembic also made ``updated_at``
triggers (``UPSTREAM_TRIGGERS``); adoption drops them, since they would stamp ``now()`` on
every row a later revision touches (``0005`` numbers the rows with an ``UPDATE``), and both
libraries set ``updated_at`` in every statement anyway. Upstream's functions stay.

**Hand-back** (``HAND_BACK``, run by ``migrate.to_upstream`` after downgrading to
``ADOPTED_AS``) leaves a schema upstream's ``PostgresStorage`` runs on: ``seq``,
``request_key`` and ``task_events`` are gone (the tasks stay), the indexes upstream's metadata
declares exist again, and the version marker is upstream's (``public``: ``alembic_version`` =
``UPSTREAM_HEAD`` and, where upstream's trigger function is there, its triggers again; any
other schema: no ``alembic_version``, as upstream's ``did_…`` schemas).
``owner_did`` stays ``TEXT``: upstream's queries read and write it the same, and changing it
back would rewrite the tasks table.

All statements use plain table names: the migration transaction has ``SET LOCAL search_path``
pointing at the schema (see ``migrate.preamble``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bindu_storage.errors import MigrationError

log = logging.getLogger("bindu_storage.migrate")

__all__ = [
    "ADOPTED_AS",
    "UPSTREAM_HEAD",
    "UPSTREAM_REVISIONS",
    "Origin",
    "adopt",
    "hand_back",
    "origin",
    "prepare",
]

UPSTREAM_REVISIONS = ("20251207_0001", "ef0d61440935", "20250614_0001", "20260119_0001", "20260418_0001")
"""Upstream Bindu's alembic revisions, oldest first (its chain in ``alembic/versions``)."""

UPSTREAM_HEAD = UPSTREAM_REVISIONS[-1]
"""The revision upstream's alembic records in ``public`` at its newest schema."""

ADOPTED_AS = "0003"
"""Our revision an adopted schema is brought to (the last one upstream's tables have a match for)."""

# --- reading the schema ----------------------------------------------------------------------

HAS_TABLE = "SELECT to_regclass(quote_ident(:schema) || '.' || quote_ident(:table)) IS NOT NULL"
VERSION = "SELECT version_num FROM alembic_version"
COLUMN_TYPE = """
SELECT format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = to_regclass(quote_ident(:schema) || '.' || quote_ident(:table))
  AND a.attname = :column AND NOT a.attisdropped
"""
INDEX_DEFINITIONS = """
SELECT i.relname AS name,
       replace(pg_get_indexdef(i.oid), ' ON ' || quote_ident(n.nspname) || '.', ' ON ') AS definition
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = :schema
"""
FOREIGN_KEYS = """
SELECT k.conname AS name,
       replace(pg_get_constraintdef(k.oid), quote_ident(n.nspname) || '.', '') AS definition
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class t ON t.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = :schema AND t.relname = :table AND k.contype = 'f'
"""

# --- adoption: our revision 0003's shape -----------------------------------------------------

CREATE_FEEDBACK = """
CREATE TABLE IF NOT EXISTS task_feedback (
    id SERIAL PRIMARY KEY,
    task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    feedback_data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)
"""

CREATE_WEBHOOKS = """
CREATE TABLE IF NOT EXISTS webhook_configs (
    task_id UUID PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    config JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)
"""

ADD_OWNERS = (
    "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS owner_did TEXT",
    "ALTER TABLE contexts ADD COLUMN IF NOT EXISTS owner_did TEXT",
)

OWNER_AS_TEXT = "ALTER TABLE {table} ALTER COLUMN owner_did TYPE TEXT"
"""Upstream's ``VARCHAR(255)`` → ``TEXT``: binary-compatible, so no row is rewritten."""

KIND_DEFAULT = "ALTER TABLE tasks ALTER COLUMN kind SET DEFAULT 'task'"
"""Upstream's ``create_all`` leaves ``kind`` without a server default (its default is Python-side)."""

UPSTREAM_TRIGGERS = {
    "tasks": "update_tasks_updated_at",
    "contexts": "update_contexts_updated_at",
    "webhook_configs": "update_webhook_configs_updated_at",
}
"""The ``BEFORE UPDATE`` triggers upstream's alembic revisions create (table → trigger), calling
``update_updated_at_column()`` (a function they create in ``public``)."""

DROP_TRIGGER = "DROP TRIGGER IF EXISTS {trigger} ON {table}"
CREATE_TRIGGER = (
    "CREATE TRIGGER {trigger} BEFORE UPDATE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
)
HAS_TRIGGER_FUNCTION = "SELECT to_regprocedure('update_updated_at_column()') IS NOT NULL"

UPSTREAM_ONLY_INDEXES = (
    "idx_contexts_data_gin", "idx_contexts_history_gin", "idx_webhook_configs_created_at",
)
"""Upstream indexes adoption drops: the two ``jsonb_ops`` GIN indexes duplicate ours on the same
columns (every context write would update both), and no query orders webhook configs by time."""

INDEXES = {
    "idx_tasks_context_id": "CREATE INDEX idx_tasks_context_id ON tasks USING btree (context_id)",
    "idx_tasks_state": "CREATE INDEX idx_tasks_state ON tasks USING btree (state)",
    "idx_tasks_state_timestamp":
        "CREATE INDEX idx_tasks_state_timestamp ON tasks USING btree (state_timestamp)",
    "idx_tasks_created_at": "CREATE INDEX idx_tasks_created_at ON tasks USING btree (created_at)",
    "idx_tasks_updated_at": "CREATE INDEX idx_tasks_updated_at ON tasks USING btree (updated_at)",
    "idx_tasks_owner_did": "CREATE INDEX idx_tasks_owner_did ON tasks USING btree (owner_did)",
    "idx_tasks_history_gin": "CREATE INDEX idx_tasks_history_gin ON tasks USING gin (history jsonb_path_ops)",
    "idx_tasks_artifacts_gin":
        "CREATE INDEX idx_tasks_artifacts_gin ON tasks USING gin (artifacts jsonb_path_ops)",
    "idx_tasks_metadata_gin":
        "CREATE INDEX idx_tasks_metadata_gin ON tasks USING gin (metadata jsonb_path_ops)",
    "idx_contexts_created_at": "CREATE INDEX idx_contexts_created_at ON contexts USING btree (created_at)",
    "idx_contexts_updated_at": "CREATE INDEX idx_contexts_updated_at ON contexts USING btree (updated_at)",
    "idx_contexts_owner_did": "CREATE INDEX idx_contexts_owner_did ON contexts USING btree (owner_did)",
    "idx_contexts_context_data_gin":
        "CREATE INDEX idx_contexts_context_data_gin ON contexts USING gin (context_data jsonb_path_ops)",
    "idx_contexts_message_history_gin":
        "CREATE INDEX idx_contexts_message_history_gin ON contexts "
        "USING gin (message_history jsonb_path_ops)",
    "idx_task_feedback_task_id":
        "CREATE INDEX idx_task_feedback_task_id ON task_feedback USING btree (task_id)",
    "idx_task_feedback_created_at":
        "CREATE INDEX idx_task_feedback_created_at ON task_feedback USING btree (created_at)",
    "idx_task_feedback_data_gin":
        "CREATE INDEX idx_task_feedback_data_gin ON task_feedback USING gin (feedback_data jsonb_path_ops)",
}
"""Our secondary indexes at revision 0003, as ``pg_get_indexdef`` prints them (so an existing
index of the same name is compared with them as is; each is also the statement creating it)."""

BACKFILL_CONTEXTS = """
INSERT INTO contexts (id, created_at, updated_at)
SELECT context_id, min(created_at), max(updated_at) FROM tasks GROUP BY context_id
ON CONFLICT (id) DO NOTHING
"""
"""Revision 0003's backfill: a context row for every task whose context has none (upstream's
first revision had no foreign key)."""

FOREIGN_KEY_NAMES = {
    ("tasks", "FOREIGN KEY (context_id) REFERENCES contexts(id) ON DELETE CASCADE"): "fk_tasks_context_id",
    ("task_feedback", "FOREIGN KEY (task_id) REFERENCES tasks(id) ON DELETE CASCADE"):
        "task_feedback_task_id_fkey",
    ("webhook_configs", "FOREIGN KEY (task_id) REFERENCES tasks(id) ON DELETE CASCADE"):
        "webhook_configs_task_id_fkey",
}
"""Our foreign keys at 0003: (table, definition) → name. Upstream's have the same definitions
under other names (``tasks_context_id_fkey``, ``fk_tasks_context``...)."""

RENAME_CONSTRAINT = "ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}"
DROP_CONSTRAINT = "ALTER TABLE {table} DROP CONSTRAINT {name}"
ADD_CONSTRAINT = "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
DROP_INDEX = "DROP INDEX IF EXISTS {name}"

RECORD_VERSION = (
    "CREATE TABLE IF NOT EXISTS alembic_version ("
    "version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
    "DELETE FROM alembic_version",
    "INSERT INTO alembic_version (version_num) VALUES (:revision)",
)
"""Record one revision the way alembic's own version table holds it."""

# --- hand-back: what upstream's storage runs on ------------------------------------------------

RESTORE_UPSTREAM_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_contexts_data_gin ON contexts USING gin (context_data)",
    "CREATE INDEX IF NOT EXISTS idx_webhook_configs_created_at ON webhook_configs (created_at)",
)
"""The indexes upstream's metadata declares that adoption dropped (upstream's code needs none of
them; its own schema tooling expects them)."""

DROP_VERSION_TABLE = "DROP TABLE IF EXISTS alembic_version"


@dataclass(frozen=True)
class Origin:
    """Who made a schema, as its version table and tables tell.

    ``kind`` is ``ours`` (one of our revisions), ``upstream`` (an upstream revision, or Bindu
    tables without a version table), ``empty`` (no version table, no Bindu tables) or
    ``foreign`` (a revision neither we nor upstream wrote).
    """

    kind: str
    revision: str | None


def _has_table(connection: Connection, schema: str, table: str) -> bool:
    return bool(connection.execute(text(HAS_TABLE), {"schema": schema, "table": table}).scalar())


def origin(connection: Connection, schema: str, ours: Collection[str]) -> Origin:
    """Read who made ``schema`` (``ours``: the revision ids of our scripts)."""
    if _has_table(connection, schema, "alembic_version"):
        revision = connection.execute(text(VERSION)).scalar()
        if revision is None:  # an empty version table: alembic treats it as base
            kind = "upstream" if _has_table(connection, schema, "tasks") else "empty"
            return Origin(kind, None)
        if revision in ours:
            return Origin("ours", revision)
        if revision in UPSTREAM_REVISIONS:
            return Origin("upstream", revision)
        return Origin("foreign", revision)
    if _has_table(connection, schema, "tasks") and _has_table(connection, schema, "contexts"):
        return Origin("upstream", None)
    return Origin("empty", None)


def foreign_revision_error(schema: str, revision: str | None, ours: Collection[str]) -> MigrationError:
    """The error for a schema whose ``alembic_version`` neither we nor upstream wrote."""
    return MigrationError(
        f"schema {schema!r} is at revision {revision!r}, which is neither a bindu-storage revision "
        f"({', '.join(sorted(ours))}) nor an upstream Bindu revision ({', '.join(UPSTREAM_REVISIONS)}): "
        "a newer bindu-storage or another tool migrated it; nothing was changed"
    )


def _record(connection: Connection, revision: str) -> None:
    create, empty, insert = RECORD_VERSION
    connection.execute(text(create))
    connection.execute(text(empty))
    connection.execute(text(insert), {"revision": revision})


def _column_type(connection: Connection, schema: str, table: str, column: str) -> str | None:
    params = {"schema": schema, "table": table, "column": column}
    return connection.execute(text(COLUMN_TYPE), params).scalar()


def _indexes(connection: Connection, schema: str) -> dict[str, str]:
    rows = connection.execute(text(INDEX_DEFINITIONS), {"schema": schema})
    return {row.name: row.definition for row in rows}


def _align_indexes(connection: Connection, schema: str) -> None:
    for name in UPSTREAM_ONLY_INDEXES:
        connection.execute(text(DROP_INDEX.format(name=name)))
    existing = _indexes(connection, schema)
    for name, definition in INDEXES.items():
        if existing.get(name) == definition:
            continue
        if name in existing:  # same name, another definition (jsonb_ops, DESC): ours replaces it
            connection.execute(text(DROP_INDEX.format(name=name)))
        connection.execute(text(definition))


def _align_foreign_keys(connection: Connection, schema: str) -> None:
    for (table, definition), name in FOREIGN_KEY_NAMES.items():
        present = {
            row.name: row.definition
            for row in connection.execute(text(FOREIGN_KEYS), {"schema": schema, "table": table})
        }
        column = definition.split("(", 1)[1].split(")", 1)[0]
        same = [n for n, d in present.items() if d == definition]
        for other, other_definition in present.items():  # another rule on the same column
            if other not in same and other_definition.startswith(f"FOREIGN KEY ({column})"):
                connection.execute(text(DROP_CONSTRAINT.format(table=table, name=other)))
        if same:
            for extra in same[1:]:
                connection.execute(text(DROP_CONSTRAINT.format(table=table, name=extra)))
            if same[0] != name:
                connection.execute(text(RENAME_CONSTRAINT.format(table=table, old=same[0], new=name)))
            continue
        if table == "tasks":
            connection.execute(text(BACKFILL_CONTEXTS))
        connection.execute(text(ADD_CONSTRAINT.format(table=table, name=name, definition=definition)))


def adopt(connection: Connection, schema: str) -> None:
    """Bring an upstream-made ``schema`` to our revision ``ADOPTED_AS`` and record it.

    Idempotent; runs inside the caller's transaction (which holds the migration lock and has
    ``search_path`` set to ``schema``). No row of upstream's is changed, except that contexts
    missing for a task are created (as our revision 0003 does).
    """
    connection.execute(text(CREATE_FEEDBACK))
    for statement in ADD_OWNERS:
        connection.execute(text(statement))
    for table in ("tasks", "contexts"):
        if _column_type(connection, schema, table, "owner_did") != "text":
            connection.execute(text(OWNER_AS_TEXT.format(table=table)))
    connection.execute(text(KIND_DEFAULT))
    connection.execute(text(CREATE_WEBHOOKS))
    for table, trigger in UPSTREAM_TRIGGERS.items():
        connection.execute(text(DROP_TRIGGER.format(trigger=trigger, table=table)))
    _align_indexes(connection, schema)
    _align_foreign_keys(connection, schema)
    _record(connection, ADOPTED_AS)


def hand_back(connection: Connection, schema: str) -> str | None:
    """After a downgrade to ``ADOPTED_AS``: upstream's indexes, triggers and version marker.

    Returns the marker left behind: ``UPSTREAM_HEAD`` in ``public``, None (no version table)
    elsewhere.
    """
    for statement in RESTORE_UPSTREAM_INDEXES:
        connection.execute(text(statement))
    if schema == "public":
        if connection.execute(text(HAS_TRIGGER_FUNCTION)).scalar():  # upstream's alembic made it
            for table, trigger in UPSTREAM_TRIGGERS.items():
                connection.execute(text(DROP_TRIGGER.format(trigger=trigger, table=table)))
                connection.execute(text(CREATE_TRIGGER.format(trigger=trigger, table=table)))
        _record(connection, UPSTREAM_HEAD)
        return UPSTREAM_HEAD
    connection.execute(text(DROP_VERSION_TABLE))
    return None


def prepare(connection: Connection, schema: str, *, upgrading: bool, ours: Collection[str]) -> Origin:
    """What a migration does before alembic reads the version table: adopt or refuse.

    An upstream-made schema is adopted when upgrading and refused otherwise (there is nothing of
    ours to downgrade); a revision neither we nor upstream wrote is refused with a
    ``MigrationError`` naming it.
    """
    found = origin(connection, schema, ours)
    if found.kind == "foreign":
        raise foreign_revision_error(schema, found.revision, ours)
    if found.kind == "upstream":
        marker = f"revision {found.revision}" if found.revision else "no alembic_version"
        if not upgrading:
            raise MigrationError(
                f"schema {schema!r} was made by upstream Bindu ({marker}): an upgrade adopts it; "
                "there is nothing of bindu-storage's to downgrade"
            )
        log.info("adopting schema %r made by upstream Bindu (%s) as revision %s", schema, marker, ADOPTED_AS)
        adopt(connection, schema)
    return found
