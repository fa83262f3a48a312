"""The statements of deletion and retention: delete a task, preview and run a purge, clear all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetentionStatements:
    """Deleting a task, purging by policy (``storage.retention``), clearing every table."""

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

    clear_all: str = """
        TRUNCATE {schema}.task_feedback, {schema}.task_events, {schema}.webhook_configs,
                 {schema}.tasks, {schema}.contexts
    """
