"""The statements of feedback: store an entry once, read a task's entries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedbackStatements:
    """Storing and reading task feedback."""

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
