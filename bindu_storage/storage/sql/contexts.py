"""The statements of contexts: load, update, append messages, list, owner, clear."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContextStatements:
    """Reading and writing contexts."""

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
