"""The statements that write a task: submit, continue, update, append a chunk, compare-and-set.

Each write is one statement (see the package docstring): it locks the task, leaves out what
is already there and logs the change to ``task_events`` in one atomic step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskWriteStatements:
    """Creating and changing tasks (and the contexts a submit creates)."""

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
