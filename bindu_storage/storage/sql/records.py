"""The statements of the analysis read API: every record of a table, oldest first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordStatements:
    """Task, context, feedback and state-change records, oldest first, windowed."""

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
