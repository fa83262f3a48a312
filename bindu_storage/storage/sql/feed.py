"""The statement of the change feed (``storage.feed``): the changes after a cursor, in commit order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedStatements:
    """The change feed."""

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
