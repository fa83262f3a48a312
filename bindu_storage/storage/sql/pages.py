"""The statements of A2A ``tasks/list``: one keyset page of tasks and the filtered count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageStatements:
    """A page of tasks (``storage.pages``) and the total it reports."""

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
