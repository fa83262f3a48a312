"""Every SQL statement of the PostgreSQL backend: one whole statement per operation.

Each statement below reads top to bottom as the SQL the server runs. The only placeholder is
``{schema}``: ``Statements.for_schema(name)`` validates the schema name, quotes it once and puts
it in place with ``str.replace`` (never ``str.format``), so JSON literals such as ``'{}'`` and
paths such as ``'{parts}'`` are written as plain SQL. Every table is schema-qualified, so nothing
depends on a session ``search_path`` (which PgBouncer in transaction mode does not keep).

Parameters are positional (``$1``, ``$2``…); the comment heading each statement names them.
The terminal states are written out, ``('canceled', 'completed', 'failed', 'rejected')``; an
import-time check keeps that list equal to ``types.TERMINAL_STATES``.

Why writes are single statements: a write whose reply is lost is retried (``storage.retry``),
so each one must apply at most once. A data-modifying CTE locks the task (``FOR UPDATE``),
leaves out messages and artifacts already present (by ``message_id`` / ``artifact_id``),
updates and logs the state change to ``task_events`` in one atomic step.

This module is longer than 400 lines on purpose: it is the backend's SQL in one file, so a DBA
reviews every statement in one place, each written out whole.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

from bindu_storage.sqlnames import quote_ident, validate_schema_name
from bindu_storage.types import TERMINAL_STATES

__all__ = ["SCHEMA_PLACEHOLDER", "TASK_COLUMNS", "Statements", "quote_ident", "validate_schema_name"]

SCHEMA_PLACEHOLDER = "{schema}"
"""The token each statement names its schema with; ``Statements.for_schema`` replaces it."""

TASK_COLUMNS = (
    "t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata"
)
"""The columns that make up an A2A task (``t`` is the tasks table); analysis reuses them."""

_SPELLED_OUT_TERMINAL_STATES = frozenset({"canceled", "completed", "failed", "rejected"})
if TERMINAL_STATES != _SPELLED_OUT_TERMINAL_STATES:
    raise AssertionError("storage.sql spells out the terminal states: update it to TERMINAL_STATES")


@dataclass(frozen=True)
class Statements:
    """The backend's statements, one field per operation, rendered for one schema.

    The defaults are the templates (over ``{schema}``); ``for_schema`` gives the rendered set.
    """

    # --- tasks -----------------------------------------------------------------------------

    load_task: str = """
        -- $1 task id, $2 history length (NULL: the whole history; n: its last n messages)
        SELECT t.id, t.context_id, t.state, t.state_timestamp,
               CASE WHEN $2::int IS NULL THEN t.history
                    ELSE coalesce(
                           (SELECT jsonb_agg(e ORDER BY o)
                              FROM jsonb_array_elements(t.history) WITH ORDINALITY AS h(e, o)
                             WHERE o > jsonb_array_length(t.history) - $2::int),
                           '[]')
               END AS history,
               t.artifacts, t.metadata, t.status_message
          FROM {schema}.tasks t
         WHERE t.id = $1
    """

    submit_task: str = """
        -- $1 task id, $2 context id, $3 the first message, $4 the caller's DID (the owner)
        -- submit_task of a new task id, in one statement: create the context if it is new (owned
        -- by the caller), then, if the caller may use it, create the task, log its creation and
        -- touch the context. Writes nothing when the task id exists already or the context is
        -- someone else's; the caller then reads why from task_seen, context_seen and allowed
        -- (a context or task another transaction created after this statement's snapshot is
        -- not seen: the caller then takes the transaction of ensure_context … continue_task).
        WITH seen AS (
            SELECT EXISTS (SELECT 1 FROM {schema}.tasks WHERE id = $1) AS task
        ),
        new_ctx AS (
            INSERT INTO {schema}.contexts (id, owner_did)
            SELECT $2, $4 FROM seen WHERE NOT seen.task
            ON CONFLICT (id) DO NOTHING
            RETURNING owner_did
        ),
        ctx AS (
            SELECT owner_did FROM new_ctx
            UNION ALL
            SELECT owner_did FROM {schema}.contexts WHERE id = $2
            LIMIT 1
        ),
        allowed AS (
            SELECT true AS ok FROM ctx WHERE ctx.owner_did IS NULL OR ctx.owner_did = $4
        ),
        ins AS (
            INSERT INTO {schema}.tasks (id, context_id, state, state_timestamp, history, owner_did)
            SELECT $1, $2, 'submitted', now(), jsonb_build_array($3::jsonb), $4
              FROM allowed, seen
             WHERE NOT seen.task
            ON CONFLICT (id) DO NOTHING
            RETURNING id, context_id, state, state_timestamp, history, artifacts, metadata,
                      status_message
        ),
        ev AS (  -- the creation, with the first message (the change feed)
            INSERT INTO {schema}.task_events (task_id, from_state, to_state, at, messages)
            SELECT id, NULL, state, state_timestamp, history FROM ins
        ),
        touch AS (  -- a context this statement created already has updated_at = now()
            UPDATE {schema}.contexts
               SET updated_at = now()
             WHERE id = $2 AND EXISTS (SELECT 1 FROM ins)
        )
        SELECT seen.task AS task_seen,
               EXISTS (SELECT 1 FROM ctx) AS context_seen,
               EXISTS (SELECT 1 FROM allowed) AS allowed,
               ins.id, ins.context_id, ins.state, ins.state_timestamp,
               ins.history, ins.artifacts, ins.metadata, ins.status_message
          FROM seen LEFT JOIN ins ON true
    """

    ensure_context: str = """
        -- $1 context id, $2 the caller's DID
        -- submit_task, first step: create the context if it is new, then report its owner.
        WITH ins AS (
            INSERT INTO {schema}.contexts (id, owner_did)
            VALUES ($1, $2)
            ON CONFLICT (id) DO NOTHING
            RETURNING owner_did
        )
        SELECT owner_did FROM ins
        UNION ALL
        SELECT owner_did FROM {schema}.contexts WHERE id = $1
        LIMIT 1
    """

    context_owner: str = """
        -- $1 context id
        -- submit_task, when ensure_context saw no row (a concurrent transaction created the
        -- context after this statement's snapshot). No FOR SHARE: two submits each holding a
        -- share lock and then both updating the context's updated_at would deadlock. The owner
        -- never changes once set, and the task's foreign key keeps the context from vanishing.
        SELECT owner_did FROM {schema}.contexts WHERE id = $1
    """

    insert_task: str = """
        -- $1 task id, $2 context id, $3 the first message, $4 the caller's DID (the owner)
        -- submit_task of a new id: create the task, log its creation and touch its context.
        -- An id already there is left alone (no row comes back; submit_task continues it).
        WITH ins AS (
            INSERT INTO {schema}.tasks (id, context_id, state, state_timestamp, history, owner_did)
            VALUES ($1, $2, 'submitted', now(), jsonb_build_array($3::jsonb), $4)
            ON CONFLICT (id) DO NOTHING
            RETURNING *
        ),
        ev AS (  -- the creation, with the first message (the change feed)
            INSERT INTO {schema}.task_events (task_id, from_state, to_state, at, messages)
            SELECT id, NULL, state, state_timestamp, history FROM ins
        ),
        ctx AS (
            UPDATE {schema}.contexts
               SET updated_at = now()
             WHERE id = $2 AND EXISTS (SELECT 1 FROM ins)
        )
        SELECT id, context_id, state, state_timestamp, history, artifacts, metadata, status_message
          FROM ins t
    """

    continue_task: str = """
        -- $1 task id, $2 the message, $3 the context id the caller names
        -- submit_task of an existing id: append the message (unless its message_id is there:
        -- a replay changes nothing) and put the task back to 'submitted', unless it is terminal
        -- or belongs to another context; the new status has no status message. The caller
        -- reads why from prior_state, prior_context and replay when no task comes back.
        WITH cur AS (
            SELECT id, context_id, state, history
              FROM {schema}.tasks
             WHERE id = $1
               FOR UPDATE
        ),
        add AS (  -- the message to append: [message], or [] when already in the history
            SELECT CASE WHEN cur.history @> jsonb_build_array(
                                 jsonb_build_object('message_id', $2::jsonb -> 'message_id'))
                        THEN '[]'::jsonb
                        ELSE jsonb_build_array($2::jsonb)
                   END AS v
              FROM cur
        ),
        upd AS (
            UPDATE {schema}.tasks t
               SET history = t.history || add.v,
                   state = 'submitted',
                   state_timestamp = now(),
                   status_message = NULL,
                   updated_at = now()
              FROM cur, add
             WHERE t.id = cur.id
               AND t.context_id = $3
               AND add.v <> '[]'
               AND cur.state NOT IN ('canceled', 'completed', 'failed', 'rejected')
            RETURNING t.*
        ),
        ev AS (  -- the change: the message appended (and the state, if it moved)
            INSERT INTO {schema}.task_events (task_id, from_state, to_state, at, messages)
            SELECT upd.id, cur.state, upd.state, upd.state_timestamp, add.v
              FROM upd, cur, add
        )
        SELECT cur.state AS prior_state,
               cur.context_id AS prior_context,
               (SELECT v FROM add) = '[]'::jsonb AS replay,
               upd.id, upd.context_id, upd.state, upd.state_timestamp,
               upd.history, upd.artifacts, upd.metadata, upd.status_message
          FROM cur LEFT JOIN upd ON true
    """

    update_task: str = """
        -- $1 task id, $2 the new state, $3 messages, $4 artifacts, $5 metadata to merge,
        -- $6 the status message (NULL: none)
        -- Set the status (state and status message), append the messages and artifacts not
        -- there yet (by message_id / artifact_id, in the order given), merge the metadata
        -- (top-level keys) and log the change (the change feed). The first terminal state wins:
        -- a terminal task only takes metadata, keeping its status and growing nothing;
        -- otherwise no task comes back and the caller reads why from prior_state and grows.
        WITH cur AS (
            SELECT id, state, history, artifacts, status_message
              FROM {schema}.tasks
             WHERE id = $1
               FOR UPDATE
        ),
        add_h AS (  -- the new messages
            SELECT coalesce(jsonb_agg(m ORDER BY o), '[]'::jsonb) AS v
              FROM cur, jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(m, o)
             WHERE NOT cur.history @> jsonb_build_array(
                           jsonb_build_object('message_id', m -> 'message_id'))
        ),
        add_a AS (  -- the new artifacts
            SELECT coalesce(jsonb_agg(a ORDER BY o), '[]'::jsonb) AS v
              FROM cur, jsonb_array_elements($4::jsonb) WITH ORDINALITY AS x(a, o)
             WHERE NOT coalesce(cur.artifacts, '[]') @> jsonb_build_array(
                           jsonb_build_object('artifact_id', a -> 'artifact_id'))
        ),
        upd AS (
            UPDATE {schema}.tasks t
               SET state = $2,
                   state_timestamp = CASE  -- a terminal task keeps the time it ended
                       WHEN cur.state IN ('canceled', 'completed', 'failed', 'rejected')
                       THEN t.state_timestamp
                       ELSE now()
                   END,
                   status_message = CASE
                       WHEN cur.state IN ('canceled', 'completed', 'failed', 'rejected')
                       THEN t.status_message
                       ELSE $6::jsonb
                   END,
                   -- a document with nothing to add is kept as it is, not rebuilt (nor re-TOASTed)
                   history = CASE WHEN add_h.v = '[]' THEN t.history ELSE t.history || add_h.v END,
                   artifacts = CASE WHEN add_a.v = '[]' THEN coalesce(t.artifacts, '[]')
                                    ELSE coalesce(t.artifacts, '[]') || add_a.v END,
                   metadata = CASE WHEN $5::jsonb = '{}' THEN coalesce(t.metadata, '{}')
                                   ELSE coalesce(t.metadata, '{}') || $5::jsonb END,
                   updated_at = now()
              FROM cur, add_h, add_a
             WHERE t.id = cur.id
               AND (cur.state NOT IN ('canceled', 'completed', 'failed', 'rejected')
                    OR (cur.state = $2 AND add_h.v = '[]' AND add_a.v = '[]'
                        AND ($6::jsonb IS NULL OR $6::jsonb = cur.status_message)))
            RETURNING t.*
        ),
        ev AS (  -- one change: the new status and what was appended, when anything changed
            INSERT INTO {schema}.task_events
                   (task_id, from_state, to_state, at, status_message, messages, artifacts)
            SELECT upd.id, cur.state, upd.state, upd.state_timestamp, upd.status_message,
                   add_h.v, add_a.v
              FROM upd, cur, add_h, add_a
             WHERE cur.state <> upd.state
                OR upd.status_message IS DISTINCT FROM cur.status_message
                OR add_h.v <> '[]'
                OR add_a.v <> '[]'
        )
        SELECT cur.state AS prior_state,
               (SELECT v FROM add_h) <> '[]' OR (SELECT v FROM add_a) <> '[]' AS grows,
               upd.id, upd.context_id, upd.state, upd.state_timestamp,
               upd.history, upd.artifacts, upd.metadata, upd.status_message
          FROM cur LEFT JOIN upd ON true
    """

    append_artifact_chunk: str = """
        -- $1 task id, $2 the artifact chunk, $3 append (true: extend the parts of the artifact
        -- with the chunk's artifact_id; false: replace that artifact by the chunk)
        -- Streaming (A2A's artifact update event): a chunk with a new artifact_id is appended
        -- as a new artifact either way; the change is logged (the change feed). Refused
        -- (appended = false) on a terminal task.
        WITH cur AS (
            SELECT id, state, coalesce(artifacts, '[]') AS artifacts,
                   coalesce(artifacts, '[]') @> jsonb_build_array(
                       jsonb_build_object('artifact_id', $2::jsonb -> 'artifact_id')) AS known
              FROM {schema}.tasks
             WHERE id = $1
               FOR UPDATE
        ),
        upd AS (
            UPDATE {schema}.tasks t
               SET updated_at = now(),
                   artifacts = CASE
                       WHEN cur.known
                       THEN (SELECT jsonb_agg(CASE WHEN a -> 'artifact_id' <> $2::jsonb -> 'artifact_id'
                                                   THEN a
                                                   WHEN $3::bool
                                                   THEN jsonb_set(a, '{parts}',
                                                            coalesce(a -> 'parts', '[]')
                                                            || coalesce($2::jsonb -> 'parts', '[]'))
                                                   ELSE $2::jsonb
                                              END ORDER BY o)
                               FROM jsonb_array_elements(cur.artifacts) WITH ORDINALITY AS x(a, o))
                       ELSE cur.artifacts || jsonb_build_array($2::jsonb)
                   END
              FROM cur
             WHERE t.id = cur.id
               AND cur.state NOT IN ('canceled', 'completed', 'failed', 'rejected')
            RETURNING t.id, t.state, t.updated_at
        ),
        ev AS (
            INSERT INTO {schema}.task_events (task_id, kind, from_state, to_state, at, artifacts)
            SELECT upd.id,
                   CASE WHEN cur.known AND $3::bool THEN 'artifact-chunk' ELSE 'artifact' END,
                   upd.state, upd.state, upd.updated_at, jsonb_build_array($2::jsonb)
              FROM upd, cur
        )
        SELECT cur.state AS prior_state,
               EXISTS (SELECT 1 FROM upd) AS appended
          FROM cur
    """

    update_task_state_if: str = """
        -- $1 task id, $2 the state it must be in, $3 the state to move to, $4 the request key
        -- Compare-and-set of the state. $4 is the caller's request key, the same on every
        -- retry: a retry whose first attempt committed (its reply was lost) finds its own event
        -- in "mine" and answers moved = true again, without moving twice.
        WITH cur AS (
            SELECT id, state, status_message
              FROM {schema}.tasks
             WHERE id = $1
               FOR UPDATE
        ),
        mine AS (
            SELECT true AS done
              FROM {schema}.task_events
             WHERE task_id = $1 AND request_key = $4
             LIMIT 1
        ),
        upd AS (
            UPDATE {schema}.tasks t
               SET state = $3,
                   state_timestamp = now(),
                   status_message = NULL,
                   updated_at = now()
              FROM cur
             WHERE t.id = cur.id
               AND cur.state = $2
               AND cur.state NOT IN ('canceled', 'completed', 'failed', 'rejected')
               AND NOT EXISTS (SELECT FROM mine)
            RETURNING t.id, t.state, t.state_timestamp
        ),
        ev AS (
            INSERT INTO {schema}.task_events (task_id, from_state, to_state, at, request_key)
            SELECT upd.id, cur.state, upd.state, upd.state_timestamp, $4
              FROM upd, cur
             WHERE cur.state <> upd.state
                OR cur.status_message IS NOT NULL  -- the new status clears it: a change
        )
        -- a terminal task asked to stay where it is: moved = true and (as in update_task)
        -- nothing changes
        SELECT cur.state AS prior_state,
               upd.id IS NOT NULL
                 OR (cur.state = $2 AND cur.state = $3)
                 OR EXISTS (SELECT FROM mine) AS moved
          FROM cur LEFT JOIN upd ON true
    """

    list_tasks: str = """
        -- $1 limit (NULL: all), $2 offset, $3 owner DID (NULL: any); newest first
        SELECT t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata,
               t.status_message
          FROM {schema}.tasks t
         WHERE ($3::text IS NULL OR t.owner_did = $3)
         ORDER BY t.seq DESC
         LIMIT $1 OFFSET $2
    """

    count_tasks: str = """
        -- $1 state (NULL: every task)
        SELECT count(*) FROM {schema}.tasks WHERE ($1::text IS NULL OR state = $1)
    """

    list_tasks_by_context: str = """
        -- $1 context id, $2 limit (NULL: all), $3 offset, $4 owner DID (NULL: any); oldest first
        SELECT t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata,
               t.status_message
          FROM {schema}.tasks t
         WHERE t.context_id = $1
           AND ($4::text IS NULL OR t.owner_did = $4)
         ORDER BY t.seq
         LIMIT $2 OFFSET $3
    """

    get_task_owner: str = """
        -- $1 task id
        SELECT owner_did FROM {schema}.tasks WHERE id = $1
    """

    load_owned_task: str = """
        -- $1 task id, $2 history length (NULL: the whole history), $3 the owner's DID
        -- load_task(owner_did=...): the task only if that caller created it.
        SELECT t.id, t.context_id, t.state, t.state_timestamp,
               CASE WHEN $2::int IS NULL THEN t.history
                    ELSE coalesce(
                           (SELECT jsonb_agg(e ORDER BY o)
                              FROM jsonb_array_elements(t.history) WITH ORDINALITY AS h(e, o)
                             WHERE o > jsonb_array_length(t.history) - $2::int),
                           '[]')
               END AS history,
               t.artifacts, t.metadata, t.status_message
          FROM {schema}.tasks t
         WHERE t.id = $1
           AND t.owner_did = $3
    """

    list_tasks_page: str = """
        -- $1 context id, $2 states (text[]), $3 updated at or after, $4 owner DID (each NULL:
        -- any), $5 and $6 the updated_at and id of the previous page's last task (NULL: first
        -- page), $7 how many rows, $8 history length (NULL: whole), $9 include the artifacts
        -- A2A tasks/list: most recently updated first, ties by id; the keyset condition reads
        -- the tasks after the previous page through idx_tasks_updated_id (or, for one context or
        -- owner, idx_tasks_context_updated_id / idx_tasks_owner_updated_id).
        SELECT t.id, t.context_id, t.state, t.state_timestamp,
               CASE WHEN $8::int IS NULL THEN t.history
                    ELSE coalesce(
                           (SELECT jsonb_agg(e ORDER BY o)
                              FROM jsonb_array_elements(t.history) WITH ORDINALITY AS h(e, o)
                             WHERE o > jsonb_array_length(t.history) - $8::int),
                           '[]')
               END AS history,
               CASE WHEN $9::bool THEN t.artifacts END AS artifacts,
               t.metadata, t.status_message, t.updated_at
          FROM {schema}.tasks t
         WHERE ($1::uuid IS NULL OR t.context_id = $1)
           AND ($2::text[] IS NULL OR t.state = ANY ($2))
           AND ($3::timestamptz IS NULL OR t.updated_at >= $3)
           AND ($4::text IS NULL OR t.owner_did = $4)
           AND ($5::timestamptz IS NULL OR (t.updated_at, t.id) < ($5, $6::uuid))
         ORDER BY t.updated_at DESC, t.id DESC
         LIMIT $7
    """

    count_tasks_filtered: str = """
        -- $1 context id, $2 states (text[]), $3 updated at or after, $4 owner DID (each NULL:
        -- any); the total_size of list_tasks_page, and count_tasks with filters
        SELECT count(*)
          FROM {schema}.tasks t
         WHERE ($1::uuid IS NULL OR t.context_id = $1)
           AND ($2::text[] IS NULL OR t.state = ANY ($2))
           AND ($3::timestamptz IS NULL OR t.updated_at >= $3)
           AND ($4::text IS NULL OR t.owner_did = $4)
    """

    # --- contexts --------------------------------------------------------------------------

    load_context: str = """
        -- $1 context id
        SELECT context_data FROM {schema}.contexts WHERE id = $1
    """

    update_context: str = """
        -- $1 context id, $2 the context's data (replaces what was there)
        INSERT INTO {schema}.contexts (id, context_data)
        VALUES ($1, $2::jsonb)
        ON CONFLICT (id) DO UPDATE
           SET context_data = EXCLUDED.context_data,
               updated_at = now()
    """

    append_to_context: str = """
        -- $1 context id, $2 messages
        -- Append the messages whose message_id is not in the history yet, in the order given;
        -- a new context gets them all.
        INSERT INTO {schema}.contexts AS c (id, message_history)
        VALUES ($1, $2::jsonb)
        ON CONFLICT (id) DO UPDATE
           SET updated_at = now(),
               message_history = coalesce(c.message_history, '[]') || coalesce(
                   (SELECT jsonb_agg(m ORDER BY o)
                      FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(m, o)
                     WHERE NOT coalesce(c.message_history, '[]') @> jsonb_build_array(
                                   jsonb_build_object('message_id', m -> 'message_id'))),
                   '[]')
    """

    list_contexts: str = """
        -- $1 limit (NULL: all), $2 offset, $3 owner DID (NULL: any); newest first, each with
        -- its task count and task ids (oldest first)
        SELECT c.id AS context_id,
               c.context_data,
               (SELECT count(*) FROM {schema}.tasks t WHERE t.context_id = c.id) AS task_count,
               coalesce((SELECT array_agg(t.id ORDER BY t.seq)
                           FROM {schema}.tasks t
                          WHERE t.context_id = c.id),
                        '{}') AS task_ids
          FROM {schema}.contexts c
         WHERE ($3::text IS NULL OR c.owner_did = $3)
         ORDER BY c.seq DESC
         LIMIT $1 OFFSET $2
    """

    get_context_owner: str = """
        -- $1 context id
        SELECT owner_did FROM {schema}.contexts WHERE id = $1
    """

    clear_context: str = """
        -- $1 context id; the foreign keys cascade to its tasks and everything attached to them
        DELETE FROM {schema}.contexts WHERE id = $1
    """

    clear_all: str = """
        TRUNCATE {schema}.task_feedback, {schema}.task_events, {schema}.webhook_configs,
                 {schema}.tasks, {schema}.contexts
    """

    # --- feedback --------------------------------------------------------------------------

    store_feedback: str = """
        -- $1 task id, $2 the feedback, $3 the request key (the same on every retry, so the
        -- entry is stored once); no row comes back for an unknown task (or a retry)
        INSERT INTO {schema}.task_feedback (task_id, feedback_data, request_key)
        SELECT $1, $2::jsonb, $3
         WHERE EXISTS (SELECT 1 FROM {schema}.tasks WHERE id = $1)
        ON CONFLICT (request_key) DO NOTHING
        RETURNING id
    """

    task_exists: str = """
        -- $1 task id
        SELECT EXISTS (SELECT 1 FROM {schema}.tasks WHERE id = $1)
    """

    get_feedback: str = """
        -- $1 task id; oldest first
        SELECT feedback_data FROM {schema}.task_feedback WHERE task_id = $1 ORDER BY id
    """

    # --- webhook configs -------------------------------------------------------------------

    save_webhook: str = """
        -- $1 task id, $2 config id, $3 the config (as stored), $4 whether its secrets are encrypted
        -- upstream's single config: the task's other configs go, this one is added or replaced
        -- (keeping its place); no row comes back for an unknown task
        WITH others AS (
            DELETE FROM {schema}.webhook_configs
             WHERE task_id = $1 AND config_id <> $2
        )
        INSERT INTO {schema}.webhook_configs (task_id, config_id, config, encrypted)
        SELECT $1, $2, $3::jsonb, $4
         WHERE EXISTS (SELECT 1 FROM {schema}.tasks WHERE id = $1)
        ON CONFLICT (task_id, config_id) DO UPDATE
           SET config = EXCLUDED.config,
               encrypted = EXCLUDED.encrypted,
               updated_at = now()
        RETURNING task_id
    """

    load_webhook: str = """
        -- $1 task id; the config whose id is the task id, else the task's first one
        SELECT config_id, config, encrypted
          FROM {schema}.webhook_configs
         WHERE task_id = $1
         ORDER BY config_id = task_id::text DESC, seq
         LIMIT 1
    """

    delete_webhook: str = """
        -- $1 task id; every config of the task
        DELETE FROM {schema}.webhook_configs WHERE task_id = $1
    """

    load_all_webhooks: str = """
        -- one config per task, chosen as load_webhook chooses
        SELECT DISTINCT ON (task_id) task_id, config_id, config, encrypted
          FROM {schema}.webhook_configs
         ORDER BY task_id, config_id = task_id::text DESC, seq
    """

    # --- the analysis read API (oldest first) ----------------------------------------------

    task_records: str = """
        -- $1 limit (NULL: all), $2 offset, $3 updated since (NULL: any time)
        SELECT t.id, t.context_id, t.state, t.state_timestamp, t.history, t.artifacts, t.metadata,
               t.status_message, t.owner_did, t.created_at, t.updated_at
          FROM {schema}.tasks t
         WHERE ($3::timestamptz IS NULL OR t.updated_at >= $3)
         ORDER BY t.seq
         LIMIT $1 OFFSET $2
    """

    context_records: str = """
        -- $1 limit (NULL: all), $2 offset
        SELECT id AS context_id, context_data,
               coalesce(message_history, '[]') AS message_history,
               owner_did, created_at, updated_at
          FROM {schema}.contexts
         ORDER BY seq
         LIMIT $1 OFFSET $2
    """

    feedback_records: str = """
        -- $1 limit (NULL: all), $2 offset
        SELECT id, task_id, feedback_data, created_at
          FROM {schema}.task_feedback
         ORDER BY id
         LIMIT $1 OFFSET $2
    """

    task_events: str = """
        -- $1 task id (NULL: every task), $2 limit (NULL: all), $3 offset
        -- the state changes only (the other changes of the feed keep the state)
        SELECT id, task_id, from_state, to_state, at
          FROM {schema}.task_events
         WHERE ($1::uuid IS NULL OR task_id = $1)
           AND from_state IS DISTINCT FROM to_state
         ORDER BY id
         LIMIT $2 OFFSET $3
    """

    changes: str = """
        -- $1 and $2 the cursor: the transaction id (xid8, as text) and event id of the last
        -- change read ('0', 0: from the start), $3 task id, $4 owner DID (each NULL: any),
        -- $5 how many
        -- The change feed, in the order of (writing transaction, event id). An event id is
        -- drawn before its transaction commits, so ids alone could show id 12 while 11 is
        -- still uncommitted and skip 11 later. Instead a change shows only once its transaction
        -- is below the xmin of this statement's snapshot: then it and every transaction before
        -- it have ended, and every later write has a larger transaction id, so nothing can
        -- still land before the last change shown. Served by idx_task_events_feed.
        SELECT e.id, e.xact::text::bigint AS xact, e.task_id, e.kind, e.from_state, e.to_state,
               e.status_message, e.messages, e.artifacts, e.at
          FROM {schema}.task_events e
         WHERE (e.xact, e.id) > ($1::text::xid8, $2::bigint)
           AND e.xact < pg_snapshot_xmin(pg_current_snapshot())
           AND ($3::uuid IS NULL OR e.task_id = $3)
           AND ($4::text IS NULL OR EXISTS (SELECT 1
                                              FROM {schema}.tasks t
                                             WHERE t.id = e.task_id
                                               AND t.owner_did = $4))
         ORDER BY e.xact, e.id
         LIMIT $5
    """

    # --- push-notification configs by id ----------------------------------------------------

    set_push_config: str = """
        -- $1 task id, $2 config id, $3 the config (as stored), $4 whether its secrets are
        -- encrypted, $5 owner DID (NULL: any caller)
        -- Add the config or replace the one with its id (keeping its place); no row comes back
        -- for an unknown task or another caller's (the caller reads which from the task's owner)
        INSERT INTO {schema}.webhook_configs (task_id, config_id, config, encrypted)
        SELECT $1, $2, $3::jsonb, $4
         WHERE EXISTS (SELECT 1
                         FROM {schema}.tasks
                        WHERE id = $1
                          AND ($5::text IS NULL OR owner_did = $5))
        ON CONFLICT (task_id, config_id) DO UPDATE
           SET config = EXCLUDED.config,
               encrypted = EXCLUDED.encrypted,
               updated_at = now()
        RETURNING config_id
    """

    get_push_config: str = """
        -- $1 task id, $2 config id, $3 owner DID (NULL: any caller)
        SELECT w.config_id, w.config, w.encrypted
          FROM {schema}.webhook_configs w
          JOIN {schema}.tasks t ON t.id = w.task_id
         WHERE w.task_id = $1
           AND w.config_id = $2
           AND ($3::text IS NULL OR t.owner_did = $3)
    """

    list_push_configs: str = """
        -- $1 task id, $2 owner DID (NULL: any caller); in the order first set
        SELECT w.config_id, w.config, w.encrypted
          FROM {schema}.webhook_configs w
          JOIN {schema}.tasks t ON t.id = w.task_id
         WHERE w.task_id = $1
           AND ($2::text IS NULL OR t.owner_did = $2)
         ORDER BY w.seq
    """

    delete_push_config: str = """
        -- $1 task id, $2 config id, $3 owner DID (NULL: any caller)
        -- No row: unknown task. Otherwise the task's owner, and whether a config went (none
        -- goes when the task is another caller's: the caller raises then).
        WITH task AS (
            SELECT id, owner_did FROM {schema}.tasks WHERE id = $1
        ),
        gone AS (
            DELETE FROM {schema}.webhook_configs w
             USING task
             WHERE w.task_id = task.id
               AND w.config_id = $2
               AND ($3::text IS NULL OR task.owner_did = $3)
            RETURNING w.config_id
        )
        SELECT task.owner_did, EXISTS (SELECT FROM gone) AS deleted
          FROM task
    """

    push_config_records: str = """
        -- $1 limit (NULL: all), $2 offset; as stored (secrets never decrypted), in the order set
        SELECT task_id, config_id, config, encrypted, created_at, updated_at
          FROM {schema}.webhook_configs
         ORDER BY seq
         LIMIT $1 OFFSET $2
    """

    reencrypt_push_config: str = """
        -- $1 task id, $2 config id, $3 the config re-encrypted, $4 the config as read before
        -- (a config written since then is left alone: it was encrypted with the newest key)
        UPDATE {schema}.webhook_configs
           SET config = $3::jsonb,
               encrypted = true,
               updated_at = now()
         WHERE task_id = $1
           AND config_id = $2
           AND config = $4::jsonb
    """

    # --- deletion and retention ------------------------------------------------------------

    delete_task: str = """
        -- $1 task id, $2 owner DID (NULL: any caller)
        -- The foreign keys cascade to the task's feedback, events and push configs; the context
        -- stays. No row: unknown task. Otherwise its owner, and whether it went (not when it is
        -- another caller's: the caller raises then).
        WITH task AS (
            SELECT id, owner_did FROM {schema}.tasks WHERE id = $1 FOR UPDATE
        ),
        gone AS (
            DELETE FROM {schema}.tasks t
             USING task
             WHERE t.id = task.id
               AND ($2::text IS NULL OR task.owner_did = $2)
            RETURNING t.id
        )
        SELECT task.owner_did, EXISTS (SELECT FROM gone) AS deleted
          FROM task
    """

    purge_preview: str = """
        -- $1 cutoff (tasks updated before it; NULL: any age), $2 states (NULL: any),
        -- $3 owner DID (NULL: any owner)
        -- The rows purge_batch would remove, per table (storage.retention: the policy)
        WITH doomed AS (
            SELECT t.id, t.context_id
              FROM {schema}.tasks t
             WHERE ($1::timestamptz IS NULL OR t.updated_at < $1)
               AND ($2::text[] IS NULL OR t.state = ANY ($2))
               AND ($3::text IS NULL OR t.owner_did = $3)
        )
        SELECT (SELECT count(*) FROM doomed) AS tasks,
               (SELECT count(*) FROM {schema}.task_feedback f
                 WHERE f.task_id IN (SELECT id FROM doomed)) AS feedback,
               (SELECT count(*) FROM {schema}.task_events e
                 WHERE e.task_id IN (SELECT id FROM doomed)) AS events,
               (SELECT count(*) FROM {schema}.webhook_configs w
                 WHERE w.task_id IN (SELECT id FROM doomed)) AS push_configs,
               (SELECT count(*) FROM {schema}.contexts c
                 WHERE NOT EXISTS (SELECT 1 FROM {schema}.tasks t
                                    WHERE t.context_id = c.id
                                      AND t.id NOT IN (SELECT id FROM doomed))
                   AND ($1::timestamptz IS NULL OR c.updated_at < $1)
                   AND ($2::text[] IS NULL OR c.id IN (SELECT context_id FROM doomed))
                   AND ($3::text IS NULL OR c.owner_did = $3)) AS contexts
    """

    purge_batch: str = """
        -- $1 cutoff (tasks updated before it; NULL: any age), $2 states (NULL: any),
        -- $3 owner DID (NULL: any owner), $4 the most tasks to remove in this batch
        -- Remove up to $4 of the tasks the policy selects (oldest first) with their feedback,
        -- events and push configs, then the contexts left without tasks that the policy
        -- selects too; the rows removed per table come back. A context a concurrent submit
        -- touched after this statement's snapshot (its updated_at changed) is left alone, so a
        -- task created meanwhile never goes with it.
        WITH doomed AS (
            SELECT t.id, t.context_id
              FROM {schema}.tasks t
             WHERE ($1::timestamptz IS NULL OR t.updated_at < $1)
               AND ($2::text[] IS NULL OR t.state = ANY ($2))
               AND ($3::text IS NULL OR t.owner_did = $3)
             ORDER BY t.seq
             LIMIT $4
               FOR UPDATE
        ),
        gone_feedback AS (
            DELETE FROM {schema}.task_feedback f USING doomed d WHERE f.task_id = d.id RETURNING 1
        ),
        gone_events AS (
            DELETE FROM {schema}.task_events e USING doomed d WHERE e.task_id = d.id RETURNING 1
        ),
        gone_push_configs AS (
            DELETE FROM {schema}.webhook_configs w USING doomed d WHERE w.task_id = d.id RETURNING 1
        ),
        gone_tasks AS (
            DELETE FROM {schema}.tasks t USING doomed d WHERE t.id = d.id RETURNING 1
        ),
        emptied AS (
            SELECT c.id, c.updated_at
              FROM {schema}.contexts c
             WHERE NOT EXISTS (SELECT 1 FROM {schema}.tasks t
                                WHERE t.context_id = c.id
                                  AND t.id NOT IN (SELECT id FROM doomed))
               AND ($1::timestamptz IS NULL OR c.updated_at < $1)
               AND ($2::text[] IS NULL OR c.id IN (SELECT context_id FROM doomed))
               AND ($3::text IS NULL OR c.owner_did = $3)
        ),
        gone_contexts AS (
            DELETE FROM {schema}.contexts c
             USING emptied k
             WHERE c.id = k.id
               AND c.updated_at = k.updated_at
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone_tasks) AS tasks,
               (SELECT count(*) FROM gone_feedback) AS feedback,
               (SELECT count(*) FROM gone_events) AS events,
               (SELECT count(*) FROM gone_push_configs) AS push_configs,
               (SELECT count(*) FROM gone_contexts) AS contexts
    """

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        """Every statement with ``{schema}`` replaced by ``schema``, validated and quoted."""
        quoted = quote_ident(validate_schema_name(schema))
        templates = {f.name: f.default for f in fields(cls) if isinstance(f.default, str)}
        return cls(**{name: _render(template, quoted) for name, template in templates.items()})

    @cached_property
    def _names(self) -> dict[str, str]:
        return {getattr(self, f.name): f.name for f in fields(self)}

    def name_of(self, statement: str) -> str:
        """The name of one of these statements (for error messages and logs)."""
        return self._names.get(statement, "statement")


def _render(template: str, quoted_schema: str) -> str:
    """The statement of ``template`` for one schema, without the indentation of this file."""
    lines = [line.strip() and line for line in template.strip("\n").splitlines()]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line)
    text = "\n".join(line[indent:] for line in lines).rstrip()
    return text.replace(SCHEMA_PLACEHOLDER, quoted_schema)
