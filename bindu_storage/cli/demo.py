"""``bindu-storage demo``: the main job in one command.

Seeds the configured backend (in memory by default) with synthetic data, runs one task through
its whole lifecycle live, then reads everything back through the analysis toolkit: tasks by
state, feedback by agent, time spent in each state, and JSONB containment filters.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bindu_storage.cli.common import announce, resolve, settings
from bindu_storage.cli.table import fmt_int, fmt_seconds, render
from bindu_storage.dsn import describe_target
from bindu_storage.storage.base import Storage
from bindu_storage.storage.factory import create_storage
from bindu_storage.storage.memory import InMemoryStorage
from bindu_storage.storage.read import sql_readable
from bindu_storage.types import Message

DEMO_SCHEMA = "bindu_demo"
"""The PostgreSQL schema the demo owns (emptied at every run)."""

_FILTERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("high-priority tasks", {"metadata": {"priority": "high"}}),
    ("paid and settled (x402)",
     {"metadata": {"agent": "travel-agent", "x402.payment.status": "payment-completed"}}),
    ("failed on a timeout", {"metadata": {"error_type": "timeout"}, "states": "failed"}),
    ("a user attached a file", {"history": [{"role": "user", "parts": [{"kind": "file"}]}]}),
)


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _open(args: argparse.Namespace) -> tuple[Storage, str]:
    cfg = settings()
    target = resolve(args, cfg, default_schema=DEMO_SCHEMA)
    announce(args, target)
    if target.backend == "memory":
        return InMemoryStorage(), "in-memory backend (STORAGE_BACKEND=memory)"
    schema = target.schema or DEMO_SCHEMA
    storage = await create_storage(target.backend, settings=cfg, schema=schema, run_migrations=True)
    readable = sql_readable(storage)
    assert readable is not None  # the postgres and embedded backends keep their rows in PostgreSQL
    await storage.clear_all()
    where = describe_target(readable.connection_dsn)  # host, port and database: never the password
    return storage, f"{cfg.backend} backend, {where}, schema {schema} (emptied)"


def _message(task_id: uuid.UUID, context_id: uuid.UUID, role: str, text: str) -> Message:
    return {
        "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id),
        "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}],  # type: ignore[typeddict-item]
    }


async def _live_lifecycle(storage: Storage) -> tuple[list[list[str]], str]:
    """One task end to end, as an agent server would drive the storage."""
    cid, tid = uuid.uuid4(), uuid.uuid4()
    rows: list[list[str]] = []

    async def step(call: str, what: str, action: Any) -> None:
        started = time.perf_counter()
        result = await action
        took = time.perf_counter() - started
        state = result["status"]["state"] if isinstance(result, dict) and "status" in result else "-"
        rows.append([call, what, state, f"{took * 1e6:,.0f} µs" if took < 1e-3 else fmt_seconds(took)])

    user = "did:bindu:user:demo"
    await step("submit_task", "user asks for a table for two", storage.submit_task(
        cid, _message(tid, cid, "user", "Book a table for two in Lisbon on Friday."), caller_did=user))
    await step("update_task", "agent picks it up", storage.update_task(
        tid, "working", metadata={"agent": "travel-agent", "skill": "book-trip", "priority": "high",
                                  "model": "gpt-4o"}))
    await step("update_task", "agent asks: which time?", storage.update_task(
        tid, "input-required", new_messages=[_message(tid, cid, "agent", "Which time on Friday?")]))
    await step("submit_task", "user answers: 8 pm", storage.submit_task(
        cid, _message(tid, cid, "user", "8 pm, please."), caller_did=user))
    await step("update_task", "agent resumes", storage.update_task(tid, "working"))
    artifact = {"artifact_id": str(uuid.uuid4()), "name": "booking",
                "parts": [{"kind": "data", "data": {"restaurant": "Taberna", "time": "20:00", "guests": 2}}]}
    await step("update_task", "agent books it, attaches the booking", storage.update_task(
        tid, "completed", new_artifacts=[artifact],  # type: ignore[list-item]
        new_messages=[_message(tid, cid, "agent", "Booked: Friday 20:00, table for two.")],
        metadata={"tokens_in": 812, "tokens_out": 164}))
    await step("store_task_feedback", "user rates it 5", storage.store_task_feedback(
        tid, {"rating": 5, "comment": "Perfect.", "tags": ["fast"]}))
    events = await storage.task_events(tid)
    return rows, " → ".join(e["to_state"] for e in events)


async def _state_table(storage: Storage) -> str:
    from bindu_storage.analysis.frames import tasks_frame

    tasks = await tasks_frame(storage, metadata_columns=["agent"])
    counts = tasks["state"].value_counts()
    counts = counts[counts > 0]
    total = int(counts.sum())
    rows = [[str(state), fmt_int(n), f"{100 * n / total:.1f} %"] for state, n in counts.items()]
    return render(["state", "tasks", "share"], rows)


async def _feedback_table(storage: Storage) -> str:
    from bindu_storage.analysis.frames import feedback_frame

    fb = await feedback_frame(storage, task_metadata_columns=["agent"])
    fb = fb.dropna(subset=["rating"])
    grouped = fb.groupby("metadata.agent")["rating"]
    summary = grouped.agg(["count", "mean"])
    summary["happy"] = grouped.apply(lambda r: float((r >= 4).mean()))
    summary = summary.sort_values("mean", ascending=False)
    rows = [
        [str(agent), fmt_int(row["count"]), f"{row['mean']:.2f}", f"{100 * row['happy']:.0f} %"]
        for agent, row in summary.iterrows()
    ]
    return render(["agent", "ratings", "mean", "rated 4-5"], rows)


async def _timing_table(storage: Storage) -> str:
    from bindu_storage.analysis.frames import events_frame

    events = await events_frame(storage)
    spent = events.dropna(subset=["from_state", "duration_s"])
    grouped = spent.groupby("from_state", observed=True)["duration_s"]
    summary = grouped.agg(["count", "median"])
    summary["p90"] = grouped.quantile(0.9)
    stats: dict[Any, dict[Any, Any]] = summary.to_dict("index")
    order = ["submitted", "working", "input-required", "auth-required"]
    rows = [
        [state, fmt_int(stats[state]["count"]), fmt_seconds(stats[state]["median"]),
         fmt_seconds(stats[state]["p90"])]
        for state in order if state in stats
    ]
    return render(["state", "visits", "median", "p90"], rows)


async def _filter_table(storage: Storage) -> str:
    from bindu_storage.analysis.filters import find_tasks

    rows = []
    for label, where in _FILTERS:
        found = await find_tasks(storage, **where)
        shown = ", ".join(f"{k}={v}" if k == "states" else f"{k} @> {_compact(v)}" for k, v in where.items())
        rows.append([label, shown, fmt_int(len(found))])
    return render(["question", "filter", "tasks"], rows)


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


async def run_demo(args: argparse.Namespace) -> int:
    """The ``demo`` command."""
    from bindu_storage.synthetic import generate, load

    storage, label = await _open(args)
    try:
        _say(f"bindu-storage demo: {label}")
        _say()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        started = time.perf_counter()
        data = generate(args.tasks, seed=args.seed, start=today - timedelta(days=14))
        result = await load(storage, data)
        _say(
            f"Seeded {fmt_int(result.tasks)} synthetic tasks in {fmt_int(result.contexts)} conversations "
            f"(seed {args.seed}, the last 14 days): {fmt_int(result.events)} state changes, "
            f"{fmt_int(result.feedback)} ratings, in {time.perf_counter() - started:.1f} s."
        )
        _say()
        _say("One task, live: submitted → working → input-required → continued → completed → feedback")
        rows, path = await _live_lifecycle(storage)
        _say(render(["call", "what happens", "state", "took"], rows))
        _say(f"  task_events recorded: {path}")
        _say()
        _say("Tasks by state")
        _say(await _state_table(storage))
        _say()
        _say("Feedback by agent")
        _say(await _feedback_table(storage))
        _say()
        _say("Lifecycle timings: time spent in each state")
        _say(await _timing_table(storage))
        _say()
        where = "PostgreSQL @> on the GIN-indexed JSONB column" if sql_readable(storage) is not None \
            else "the same @> rules as PostgreSQL, in Python"
        _say(f"JSONB containment filters ({where})")
        _say(await _filter_table(storage))
        _say()
        _say("Next: `bindu-storage seed --tasks 200000` into PostgreSQL (STORAGE_BACKEND=postgres or "
             "embedded), the notebooks in notebooks/, `bindu-storage diagnose` for a health report.")
    finally:
        await storage.close()
    return 0
