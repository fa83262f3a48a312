"""``generate``: seeded tasks, contexts, events and feedback, in the order a storage creates them.

About 400 lines: one seeded pass whose steps (conversations, lifecycles, payments, feedback) share
the same random stream, so their order is part of the output; they stay together.
"""

from __future__ import annotations

import bisect
import gc
import math
import random
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from bindu_storage.errors import InvalidValueError
from bindu_storage.synthetic.catalog import (
    ABANDON_P,
    AGENTS,
    CANCEL_AT_INPUT_P,
    CHANNELS,
    COMMENTS,
    ERRORS,
    FEEDBACK_P,
    GAP_S,
    HOURLY,
    LOCALES,
    MODEL_PRICES,
    PLANS,
    PRIORITIES,
    QUEUE_S,
    STUCK_P,
    TAGS,
    THINK_S,
    WEEKDAY,
    AgentProfile,
    SkillProfile,
)
from bindu_storage.synthetic.records import DEFAULT_START, SyntheticData, SyntheticEvent, SyntheticFeedback
from bindu_storage.types import TERMINAL_STATES, Artifact, Message

_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)  # version and variant bits
_V4_SET = (4 << 76) | (0x8000 << 48)


def generate(
    n_tasks: int, seed: int = 0, start: datetime | None = None, days: float = 14.0
) -> SyntheticData:
    """Generate ``n_tasks`` tasks (with their contexts, events and feedback) from ``seed``.

    Conversations start over ``days`` days from ``start`` (default ``DEFAULT_START``), busier on
    weekdays and office hours. The same arguments always give equal data, ids included.
    """
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 0:
        raise InvalidValueError(f"n_tasks must be a non-negative integer, got {n_tasks!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidValueError(f"seed must be an integer, got {seed!r}")
    begin = DEFAULT_START if start is None else start
    if not isinstance(begin, datetime) or begin.tzinfo is None:
        raise InvalidValueError(f"start must be a timezone-aware datetime, got {start!r}")
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days < 3660:
        raise InvalidValueError(f"days must be a number of days between 0 and 3660, got {days!r}")
    # Only acyclic containers are built: the cyclic collector would just rescan them (it
    # made 200,000 tasks three times slower), so it pauses while they are made.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _Generator(seed, begin.astimezone(UTC), float(days)).run(n_tasks)
    finally:
        if paused:
            gc.enable()


def _weighted(pairs: Iterable[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    items, total, cum = [], 0.0, []
    for item, weight in pairs:
        total += weight
        items.append(item)
        cum.append(total)
    return items, cum


class _Task:
    """A task being generated; turned into records at the end."""

    __slots__ = (
        "artifacts",
        "context",
        "created",
        "events",
        "feedback",
        "history",
        "metadata",
        "now",
        "owner",
        "state",
    )

    def __init__(self, context: _Context, created: datetime) -> None:
        self.context = context
        self.created = created
        self.now = created
        self.state = "submitted"
        self.events: list[tuple[datetime, str | None, str]] = [(created, None, "submitted")]
        self.history: list[dict[str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.metadata: dict[str, Any] = {}
        self.feedback: tuple[datetime, dict[str, Any]] | None = None
        self.owner = context.owner

    def move(self, to_state: str, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)
        self.events.append((self.now, self.state, to_state))
        self.state = to_state


class _Context:
    __slots__ = ("data", "id", "owner", "tasks")

    def __init__(self, cid: uuid.UUID, owner: str | None, data: dict[str, Any]) -> None:
        self.id = cid
        self.owner = owner
        self.data = data
        self.tasks: list[_Task] = []


class _Generator:
    def __init__(self, seed: int, start: datetime, days: float) -> None:
        self.rng = random.Random(seed)
        self.ids = random.Random(f"bindu-synthetic-ids:{seed}")
        self.seed = seed
        self.start = start
        self.days = days
        self.agents, self.agent_cum = _weighted((a, a.share) for a in AGENTS)
        self.priorities, self.priority_cum = _weighted(PRIORITIES)
        self.channels, self.channel_cum = _weighted(CHANNELS)
        self.plans, self.plan_cum = _weighted(PLANS)
        # Hour bins over the window, weighted by hour of day and day of week.
        n_hours = max(1, math.ceil(days * 24))
        self.hour_cum: list[float] = []
        total = 0.0
        for h in range(n_hours):
            moment = start + timedelta(hours=h)
            total += HOURLY[moment.hour] * WEEKDAY[moment.weekday()]
            self.hour_cum.append(total)
        self.window_s = days * 86400.0

    # -- small helpers --

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.uuid_str())

    def uuid_str(self) -> str:
        """A random (version 4) UUID string from the id stream, without building a UUID."""
        h = "%032x" % ((self.ids.getrandbits(128) & _V4_CLEAR) | _V4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def pick(self, items: list[Any], cum: list[float]) -> Any:
        return items[bisect.bisect_right(cum, self.rng.random() * cum[-1])]

    def moment(self) -> datetime:
        hour = bisect.bisect_right(self.hour_cum, self.rng.random() * self.hour_cum[-1])
        offset = min((hour + self.rng.random()) * 3600.0, self.window_s - 1e-3)
        return self.start + timedelta(seconds=offset)

    def message(self, task: _Task, tid: str, role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        msg = {
            "message_id": self.uuid_str(), "context_id": str(task.context.id), "task_id": tid,
            "kind": "message", "role": role, "parts": parts,
        }
        task.history.append(msg)
        return msg

    @staticmethod
    def text(text: str) -> dict[str, Any]:
        return {"kind": "text", "text": text}

    # -- the world --

    def run(self, n_tasks: int) -> SyntheticData:
        n_users = max(20, n_tasks // 25)
        tasks: list[_Task] = []
        contexts: list[_Context] = []
        while len(tasks) < n_tasks:
            user = self.rng.randrange(n_users)
            owner = None if self.rng.random() < 0.08 else f"did:bindu:user:{user:06d}"
            data = {
                "user_id": f"u-{user:06d}",
                "channel": self.pick(self.channels, self.channel_cum),
                "locale": LOCALES[user % len(LOCALES)],
                "plan": self.plans[bisect.bisect_right(  # a user keeps their plan
                    self.plan_cum, (user * 2654435761 % 10007) / 10007 * self.plan_cum[-1])],
            }
            ctx = _Context(self.uuid(), owner, data)
            contexts.append(ctx)
            agent: AgentProfile = self.pick(self.agents, self.agent_cum)
            n_in_context = min(1 + int(self.rng.expovariate(0.75)), 8, n_tasks - len(tasks))
            at = self.moment()
            for _ in range(n_in_context):
                task = self.task(ctx, agent, at)
                tasks.append(task)
                ctx.tasks.append(task)
                if task.state not in TERMINAL_STATES:
                    break  # an unfinished task ends its conversation
                at = task.now + timedelta(seconds=self.lognormal(GAP_S, 1.0))
        return self.records(contexts, tasks)

    def task(self, ctx: _Context, agent: AgentProfile, created: datetime) -> _Task:
        rng = self.rng
        task = _Task(ctx, created)
        tid = self.uuid_str()
        skill: SkillProfile = agent.skills[rng.randrange(len(agent.skills))]
        priority = self.pick(self.priorities, self.priority_cum)
        models, model_cum = _weighted(agent.models)
        model = self.pick(models, model_cum)
        topic = agent.topics[rng.randrange(len(agent.topics))]
        meta: dict[str, Any] = {
            "agent": agent.name, "skill": skill.name, "priority": priority, "model": model,
        }
        task.metadata = meta

        parts = [self.text(rng.choice(skill.prompts).format(topic=topic))]
        if skill.name in ("summarize", "code-review") and rng.random() < 0.6:
            kind = "report.pdf" if skill.name == "summarize" else "change.diff"
            mime = "application/pdf" if skill.name == "summarize" else "text/x-diff"
            parts.append({"kind": "file", "file": {
                "uri": f"https://files.example.com/uploads/{self.uuid_str()}/{kind}", "mime_type": mime,
                "name": kind}})
        elif skill.name in ("flight-search", "book-trip", "sql-query") and rng.random() < 0.5:
            parts.append({"kind": "data", "data": {"topic": topic, "travellers": rng.randint(1, 4)}
                          if skill.name != "sql-query" else {"topic": topic, "limit": 10}})
        self.message(task, tid, "user", parts)

        queue = QUEUE_S[priority]
        if rng.random() < skill.reject_p:
            task.move("rejected", self.lognormal(queue, 0.6))
            self.message(task, tid, "agent", [self.text("Sorry, I can't help with that request.")])
            self.finish(task, agent, skill, model, work=0.0, rounds=0)
            return task

        task.move("working", self.lognormal(queue, 0.6))
        rounds = ["payment"] if skill.price_usdc else []
        if rng.random() < skill.clarify_p:
            rounds.append("clarify")
            if rng.random() < 0.15:
                rounds.append("clarify")
        work = 0.0
        for kind in rounds:
            step = self.lognormal(0.4, 0.5) if kind == "payment" else self.lognormal(skill.work_s * 0.25, 0.5)
            work += step
            task.move("input-required", step)
            if kind == "payment":
                meta.update({"x402.payment.status": "payment-required",
                             "x402.payment.amount": skill.price_usdc, "x402.payment.asset": "USDC",
                             "x402.payment.network": "base"})
                self.message(task, tid, "agent", [
                    self.text(f"This skill costs {skill.price_usdc} USDC. Please authorise the payment."),
                    {"kind": "data", "data": {"x402.payment.required": {
                        "scheme": "exact", "network": "base", "asset": "USDC",
                        "amount": skill.price_usdc, "pay_to": f"0x{self.ids.getrandbits(160):040x}"}}},
                ])
            else:
                self.message(task, tid, "agent", [self.text(rng.choice(skill.questions).format(topic=topic))])
            wait = self.lognormal(THINK_S, 1.0)
            roll = rng.random()
            if roll < ABANDON_P:
                self.finish(task, agent, skill, model, work, len(rounds))
                return task  # never answered: left in input-required
            if roll < ABANDON_P + CANCEL_AT_INPUT_P:
                task.move("canceled", wait)
                self.finish(task, agent, skill, model, work, len(rounds))
                return task
            task.move("submitted", wait)
            if kind == "payment":
                meta["x402.payment.status"] = "payment-submitted"
                signature = f"0x{self.ids.getrandbits(256):064x}"
                self.message(task, tid, "user", [self.text("Payment authorised."), {
                    "kind": "data", "data": {"x402.payment.payload": {
                        "scheme": "exact", "network": "base", "signature": signature}}}])
            else:
                self.message(task, tid, "user", [self.text(rng.choice(skill.replies))])
            task.move("working", self.lognormal(queue, 0.6))
            if kind == "payment":
                meta["x402.payment.status"] = "payment-verified"

        final = self.lognormal(skill.work_s, skill.spread)
        roll = rng.random()
        if roll < STUCK_P:
            self.finish(task, agent, skill, model, work + final / 2, len(rounds))
            return task  # the worker lost it: left in working
        if roll < STUCK_P + skill.cancel_p:
            final *= rng.uniform(0.2, 0.9)
            task.move("canceled", final)
            self.finish(task, agent, skill, model, work + final, len(rounds))
            return task
        slow = final > skill.work_s * math.exp(2 * skill.spread)
        if skill.price_usdc and rng.random() < 0.04:
            final = self.lognormal(1.0, 0.3)
            task.move("failed", final)
            meta.update({"x402.payment.status": "payment-failed", "error_type": "payment-failed"})
            self.message(task, tid, "agent", [self.text("The payment could not be settled.")])
        elif rng.random() < skill.fail_p + (0.25 if slow else 0.0):
            error = "timeout" if slow else ERRORS[rng.randrange(1, len(ERRORS))]
            task.move("failed", final)
            meta["error_type"] = error
            self.message(task, tid, "agent", [self.text(f"I could not finish the task ({error}).")])
        else:
            task.move("completed", final)
            if skill.price_usdc:
                meta["x402.payment.status"] = "payment-completed"
            self.message(task, tid, "agent", [self.text(rng.choice(skill.answers).format(topic=topic))])
            task.artifacts.append(self.artifact(skill, topic))
        self.finish(task, agent, skill, model, work + final, len(rounds))
        return task

    def artifact(self, skill: SkillProfile, topic: str) -> dict[str, Any]:
        aid = self.uuid_str()
        if skill.artifact == "data":
            rows = self.rng.randint(1, 12)
            part = {"kind": "data", "data": {"topic": topic, "rows": rows,
                                             "total": round(self.rng.uniform(10, 5000), 2)}}
        elif skill.artifact == "file":
            ext, mime = ("png", "image/png") if skill.name == "build-chart" else ("py", "text/x-python")
            part = {"kind": "file", "file": {"uri": f"https://files.example.com/artifacts/{aid}.{ext}",
                                             "mime_type": mime, "name": f"{skill.name}.{ext}"}}
        else:
            part = {"kind": "text", "text": f"{skill.name} result on {topic}: " + "lorem ipsum " * 6}
        return {"artifact_id": aid, "name": f"{skill.name}-result", "parts": [part]}

    def finish(self, task: _Task, agent: AgentProfile, skill: SkillProfile, model: str,
               work: float, rounds: int) -> None:
        rng = self.rng
        meta = task.metadata
        if task.state != "rejected":
            tokens_in = int(self.lognormal(skill.tokens_in, 0.5)) + 180 * rounds
            tokens_out = max(1, int(work * skill.tokens_out_per_s * math.exp(rng.gauss(0.0, 0.3))))
        else:
            tokens_in, tokens_out = int(self.lognormal(300, 0.3)), int(self.lognormal(25, 0.3))
        price_in, price_out = MODEL_PRICES[model]
        meta.update({"tokens_in": tokens_in, "tokens_out": tokens_out,
                     "cost_usd": round((tokens_in * price_in + tokens_out * price_out) / 1000, 6)})
        if task.state not in TERMINAL_STATES:
            return
        meta["duration_s"] = round((task.now - task.created).total_seconds(), 3)
        if rng.random() >= FEEDBACK_P[task.state]:
            return
        if task.state == "completed":
            z = math.log(max(work, 1e-3) / skill.work_s) / skill.spread
            mu = agent.rating + skill.rating_shift - 0.5 * max(z, 0.0) + 0.15 * min(max(-z, 0.0), 1.5)
            mu -= 0.15 * rounds
        else:
            mu = {"failed": 1.6, "canceled": 2.3, "rejected": 2.0}[task.state]
        rating = min(5, max(1, round(rng.gauss(mu, 0.8))))
        bucket = "low" if rating <= 2 else "mid" if rating == 3 else "high"
        data: dict[str, Any] = {"rating": rating, "channel": task.context.data["channel"]}
        if rng.random() < (0.5 if bucket == "low" else 0.3):
            data["comment"] = rng.choice(COMMENTS[bucket])
        if rng.random() < 0.6:
            data["tags"] = sorted(rng.sample(TAGS[bucket], rng.randint(1, 2)))
        task.feedback = (task.now + timedelta(seconds=self.lognormal(40.0, 1.0)), data)

    def records(self, contexts: list[_Context], tasks: list[_Task]) -> SyntheticData:
        # Creation order is the timeline's; the generation order breaks ties.
        order = sorted(range(len(tasks)), key=lambda i: (tasks[i].created, i))
        data = SyntheticData(seed=self.seed, start=self.start)
        rank = {id(tasks[i]): n for n, i in enumerate(order)}
        events: list[tuple[datetime, int, int, SyntheticEvent]] = []
        feedback: list[tuple[datetime, int, SyntheticFeedback]] = []
        for i in order:
            t = tasks[i]
            tid = uuid.UUID(t.history[0]["task_id"])
            last = t.events[-1][0]
            data.tasks.append({
                "task": {
                    "id": tid, "context_id": t.context.id, "kind": "task",
                    "status": {"state": t.state, "timestamp": last.isoformat(timespec="microseconds")},  # type: ignore[typeddict-item]
                    # the generator builds valid A2A messages and artifacts as plain dicts
                    "history": cast(list[Message], t.history),
                    "artifacts": cast(list[Artifact], t.artifacts), "metadata": t.metadata,
                },
                "owner_did": t.owner, "created_at": t.created, "updated_at": last,
            })
            r = rank[id(t)]
            for step, (at, old, new) in enumerate(t.events):
                events.append((at, r, step, {"task_id": tid, "from_state": old, "to_state": new, "at": at}))
            if t.feedback is not None:
                feedback.append((t.feedback[0], r, {
                    "task_id": tid, "feedback_data": t.feedback[1], "created_at": t.feedback[0]}))
        events.sort(key=lambda e: e[:3])
        feedback.sort(key=lambda f: f[:2])
        data.events = [e[3] for e in events]
        data.feedback = [f[2] for f in feedback]
        ctx_order = sorted(contexts, key=lambda c: rank[id(c.tasks[0])])
        for c in ctx_order:
            finished = [t for t in c.tasks if t.state in TERMINAL_STATES]
            touched = [t.created for t in c.tasks] + [t.events[-1][0] for t in finished]
            data.contexts.append({
                "context_id": c.id, "context_data": c.data,
                "message_history": [m for t in finished for m in t.history],
                "owner_did": c.owner, "created_at": c.tasks[0].created, "updated_at": max(touched),
            })
        return data
