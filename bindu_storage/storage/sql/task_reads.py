"""The statements that read tasks: load one (whole or owned), list, count, owner."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskReadStatements:
    """Reading tasks by id, by context, newest first."""

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
