"""Every SQL statement of the PostgreSQL backend, in one place.

Statements are templates over ``{s}``, the quoted schema; ``Statements(schema)`` renders them
once per storage, so every statement is schema-qualified and nothing depends on a session
``search_path`` (which PgBouncer in transaction mode does not keep). The analysis module reuses
``TASK_COLUMNS`` and friends rather than re-writing them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.types import TERMINAL_STATES

_TERMINAL = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATES))

TASK_COLUMNS = (
    "t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata"
)
"""The columns that make up an A2A task (``t`` is the tasks table)."""

TASK_HISTORY_SLICE = (
    "CASE WHEN $2::int IS NULL THEN t.history "
    "ELSE coalesce((SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements(t.history) "
    "WITH ORDINALITY AS h(e, o) WHERE o > jsonb_array_length(t.history) - $2::int), '[]') END"
)


@dataclass(frozen=True)
class Statements:
    """The backend's statements rendered for one schema."""

    load_task: str = (
        "SELECT t.id, t.context_id, t.state, t.state_timestamp, "
        f"{TASK_HISTORY_SLICE} AS history, t.artifacts, t.metadata "
        "FROM {s}.tasks t WHERE t.id = $1"
    )
    # submit: make sure the context exists, then report its owner.
    ensure_context: str = (
        "WITH ins AS (INSERT INTO {s}.contexts (id, owner_did) VALUES ($1, $2) "
        "ON CONFLICT (id) DO NOTHING RETURNING owner_did) "
        "SELECT owner_did FROM ins UNION ALL "
        "SELECT owner_did FROM {s}.contexts WHERE id = $1 LIMIT 1"
    )
    # No FOR SHARE here: two submits holding a share lock and then both updating the context's
    # updated_at deadlock. The owner never changes once set, and the task's foreign key check
    # keeps the context from vanishing under the insert.
    context_owner: str = "SELECT owner_did FROM {s}.contexts WHERE id = $1"
    insert_task: str = (
        "WITH ins AS ("
        " INSERT INTO {s}.tasks (id, context_id, state, state_timestamp, history, owner_did)"
        " VALUES ($1, $2, 'submitted', now(), jsonb_build_array($3::jsonb), $4)"
        " ON CONFLICT (id) DO NOTHING RETURNING *),"
        " ev AS (INSERT INTO {s}.task_events (task_id, from_state, to_state, at)"
        " SELECT id, NULL, state, state_timestamp FROM ins),"
        " ctx AS (UPDATE {s}.contexts SET updated_at = now() WHERE id = $2 AND EXISTS (SELECT 1 FROM ins))"
        " SELECT " + TASK_COLUMNS.replace("t.", "") + " FROM ins t"
    )
    # continue an existing task with a message: one statement, atomic, idempotent.
    continue_task: str = (
        "WITH cur AS (SELECT id, context_id, state, history FROM {s}.tasks WHERE id = $1 FOR UPDATE),"
        " add AS (SELECT CASE WHEN cur.history @> jsonb_build_array("
        "   jsonb_build_object('message_id', $2::jsonb->'message_id'))"
        "   THEN '[]'::jsonb ELSE jsonb_build_array($2::jsonb) END AS v FROM cur),"
        " upd AS (UPDATE {s}.tasks t SET history = t.history || add.v,"
        "   state = 'submitted', state_timestamp = now(), updated_at = now()"
        "   FROM cur, add WHERE t.id = cur.id AND t.context_id = $3 AND add.v <> '[]'"
        f"   AND cur.state NOT IN ({_TERMINAL})"
        "   RETURNING t.*),"
        " ev AS (INSERT INTO {s}.task_events (task_id, from_state, to_state, at)"
        "   SELECT upd.id, cur.state, upd.state, upd.state_timestamp FROM upd, cur"
        "   WHERE cur.state <> upd.state)"
        " SELECT cur.state AS prior_state, cur.context_id AS prior_context,"
        "   (SELECT v FROM add) = '[]'::jsonb AS replay,"
        "   upd.id, upd.context_id, upd.state, upd.state_timestamp, upd.history, upd.artifacts,"
        "   upd.metadata FROM cur LEFT JOIN upd ON true"
    )
    update_task: str = (
        "WITH cur AS (SELECT id, state, history, artifacts FROM {s}.tasks WHERE id = $1 FOR UPDATE),"
        " add_h AS (SELECT coalesce(jsonb_agg(m ORDER BY o), '[]'::jsonb) AS v"
        "   FROM cur, jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(m, o)"
        "   WHERE NOT cur.history @> jsonb_build_array(jsonb_build_object('message_id', m->'message_id'))),"
        " add_a AS (SELECT coalesce(jsonb_agg(a ORDER BY o), '[]'::jsonb) AS v"
        "   FROM cur, jsonb_array_elements($4::jsonb) WITH ORDINALITY AS x(a, o)"
        "   WHERE NOT coalesce(cur.artifacts, '[]') @> jsonb_build_array("
        "     jsonb_build_object('artifact_id', a->'artifact_id'))),"
        " upd AS (UPDATE {s}.tasks t SET"
        f"   state = $2, state_timestamp = CASE WHEN cur.state IN ({_TERMINAL})"
        "     THEN t.state_timestamp ELSE now() END,"
        "   history = t.history || add_h.v,"
        "   artifacts = coalesce(t.artifacts, '[]') || add_a.v,"
        "   metadata = coalesce(t.metadata, '{{}}') || $5::jsonb,"
        "   updated_at = now()"
        "   FROM cur, add_h, add_a WHERE t.id = cur.id"
        f"   AND (cur.state NOT IN ({_TERMINAL})"
        "     OR (cur.state = $2 AND add_h.v = '[]' AND add_a.v = '[]'))"
        "   RETURNING t.*),"
        " ev AS (INSERT INTO {s}.task_events (task_id, from_state, to_state, at)"
        "   SELECT upd.id, cur.state, upd.state, upd.state_timestamp FROM upd, cur"
        "   WHERE cur.state <> upd.state)"
        " SELECT cur.state AS prior_state, (SELECT v FROM add_h) <> '[]' OR (SELECT v FROM add_a) <> '[]'"
        "   AS grows, upd.id, upd.context_id, upd.state, upd.state_timestamp, upd.history,"
        "   upd.artifacts, upd.metadata FROM cur LEFT JOIN upd ON true"
    )
    append_artifact_chunk: str = (
        "WITH cur AS (SELECT id, state, coalesce(artifacts, '[]') AS artifacts FROM {s}.tasks"
        "   WHERE id = $1 FOR UPDATE),"
        " upd AS (UPDATE {s}.tasks t SET updated_at = now(), artifacts = CASE"
        "   WHEN cur.artifacts @> jsonb_build_array("
        "     jsonb_build_object('artifact_id', $2::jsonb->'artifact_id'))"
        "   THEN (SELECT jsonb_agg(CASE WHEN a->'artifact_id' = $2::jsonb->'artifact_id'"
        "     THEN jsonb_set(a, '{{parts}}',"
        "       coalesce(a->'parts', '[]') || coalesce($2::jsonb->'parts', '[]'))"
        "     ELSE a END ORDER BY o) FROM jsonb_array_elements(cur.artifacts) WITH ORDINALITY AS x(a, o))"
        "   ELSE cur.artifacts || jsonb_build_array($2::jsonb) END"
        f"   FROM cur WHERE t.id = cur.id AND cur.state NOT IN ({_TERMINAL}) RETURNING t.id)"
        " SELECT cur.state AS prior_state, EXISTS (SELECT 1 FROM upd) AS appended FROM cur"
    )
    update_task_state_if: str = (
        # $4 is the caller's request key, the same on every retry: a retry whose first attempt
        # committed (the reply was lost) finds its own event and answers True again
        "WITH cur AS (SELECT id, state FROM {s}.tasks WHERE id = $1 FOR UPDATE),"
        " mine AS (SELECT true AS done FROM {s}.task_events"
        "   WHERE task_id = $1 AND request_key = $4 LIMIT 1),"
        " upd AS (UPDATE {s}.tasks t SET state = $3, state_timestamp = now(), updated_at = now()"
        f"   FROM cur WHERE t.id = cur.id AND cur.state = $2 AND cur.state NOT IN ({_TERMINAL})"
        "   AND NOT EXISTS (SELECT FROM mine)"
        "   RETURNING t.id, t.state, t.state_timestamp),"
        " ev AS (INSERT INTO {s}.task_events (task_id, from_state, to_state, at, request_key)"
        "   SELECT upd.id, cur.state, upd.state, upd.state_timestamp, $4 FROM upd, cur"
        "   WHERE cur.state <> upd.state)"
        # a terminal task asked to stay where it is: True, and (like update_task) nothing changes
        " SELECT cur.state AS prior_state, upd.id IS NOT NULL OR (cur.state = $2 AND cur.state = $3)"
        "   OR EXISTS (SELECT FROM mine) AS moved FROM cur LEFT JOIN upd ON true"
    )
    list_tasks: str = (
        "SELECT " + TASK_COLUMNS + " FROM {s}.tasks t"
        " WHERE ($3::text IS NULL OR t.owner_did = $3) ORDER BY t.seq DESC LIMIT $1 OFFSET $2"
    )
    count_tasks: str = "SELECT count(*) FROM {s}.tasks WHERE ($1::text IS NULL OR state = $1)"
    list_tasks_by_context: str = (
        "SELECT " + TASK_COLUMNS + " FROM {s}.tasks t WHERE t.context_id = $1"
        " AND ($4::text IS NULL OR t.owner_did = $4) ORDER BY t.seq LIMIT $2 OFFSET $3"
    )
    get_task_owner: str = "SELECT owner_did FROM {s}.tasks WHERE id = $1"
    load_context: str = "SELECT context_data FROM {s}.contexts WHERE id = $1"
    update_context: str = (
        "INSERT INTO {s}.contexts (id, context_data) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET context_data = EXCLUDED.context_data, updated_at = now()"
    )
    append_to_context: str = (
        "INSERT INTO {s}.contexts AS c (id, message_history) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET updated_at = now(), message_history ="
        "  coalesce(c.message_history, '[]') || coalesce((SELECT jsonb_agg(m ORDER BY o)"
        "   FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(m, o)"
        "   WHERE NOT coalesce(c.message_history, '[]') @> jsonb_build_array("
        "     jsonb_build_object('message_id', m->'message_id'))), '[]')"
    )
    list_contexts: str = (
        "SELECT c.id AS context_id, c.context_data,"
        " (SELECT count(*) FROM {s}.tasks t WHERE t.context_id = c.id) AS task_count,"
        " coalesce((SELECT array_agg(t.id ORDER BY t.seq) FROM {s}.tasks t"
        "   WHERE t.context_id = c.id), '{{}}') AS task_ids"
        " FROM {s}.contexts c WHERE ($3::text IS NULL OR c.owner_did = $3)"
        " ORDER BY c.seq DESC LIMIT $1 OFFSET $2"
    )
    get_context_owner: str = "SELECT owner_did FROM {s}.contexts WHERE id = $1"
    clear_context: str = "DELETE FROM {s}.contexts WHERE id = $1"  # cascades to tasks and theirs
    clear_all: str = (
        "TRUNCATE {s}.task_feedback, {s}.task_events, {s}.webhook_configs, {s}.tasks, {s}.contexts"
    )
    store_feedback: str = (
        "INSERT INTO {s}.task_feedback (task_id, feedback_data, request_key)"
        " SELECT $1, $2::jsonb, $3 WHERE EXISTS (SELECT 1 FROM {s}.tasks WHERE id = $1)"
        " ON CONFLICT (request_key) DO NOTHING RETURNING id"
    )
    task_exists: str = "SELECT EXISTS (SELECT 1 FROM {s}.tasks WHERE id = $1)"
    get_feedback: str = (
        "SELECT feedback_data FROM {s}.task_feedback WHERE task_id = $1 ORDER BY id"
    )
    save_webhook: str = (
        "INSERT INTO {s}.webhook_configs (task_id, config)"
        " SELECT $1, $2::jsonb WHERE EXISTS (SELECT 1 FROM {s}.tasks WHERE id = $1)"
        " ON CONFLICT (task_id) DO UPDATE SET config = EXCLUDED.config, updated_at = now()"
        " RETURNING task_id"
    )
    load_webhook: str = "SELECT config FROM {s}.webhook_configs WHERE task_id = $1"
    delete_webhook: str = "DELETE FROM {s}.webhook_configs WHERE task_id = $1"
    load_all_webhooks: str = "SELECT task_id, config FROM {s}.webhook_configs ORDER BY created_at"
    task_records: str = (
        "SELECT " + TASK_COLUMNS + ", t.owner_did, t.created_at, t.updated_at FROM {s}.tasks t"
        " WHERE ($3::timestamptz IS NULL OR t.updated_at >= $3) ORDER BY t.seq LIMIT $1 OFFSET $2"
    )
    context_records: str = (
        "SELECT id AS context_id, context_data, coalesce(message_history, '[]') AS message_history,"
        " owner_did, created_at, updated_at FROM {s}.contexts ORDER BY seq LIMIT $1 OFFSET $2"
    )
    feedback_records: str = (
        "SELECT id, task_id, feedback_data, created_at FROM {s}.task_feedback"
        " ORDER BY id LIMIT $1 OFFSET $2"
    )
    task_events: str = (
        "SELECT id, task_id, from_state, to_state, at FROM {s}.task_events"
        " WHERE ($1::uuid IS NULL OR task_id = $1) ORDER BY id LIMIT $2 OFFSET $3"
    )

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        """Render every statement for ``schema``."""
        s = quote_ident(validate_schema_name(schema))
        return cls(**{f.name: f.default.format(s=s) for f in fields(cls)})  # type: ignore[union-attr]

    @cached_property
    def _names(self) -> dict[str, str]:
        return {getattr(self, f.name): f.name for f in fields(self)}

    def name_of(self, statement: str) -> str:
        """The name of one of these statements (for error messages and logs)."""
        return self._names.get(statement, "statement")
