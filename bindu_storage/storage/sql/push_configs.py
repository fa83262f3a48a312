"""The statements of push-notification configs: upstream's single webhook config, and configs by id."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PushConfigStatements:
    """Push configs, as stored (secrets sealed by ``storage.push_configs`` before they get here)."""

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
