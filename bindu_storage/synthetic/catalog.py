"""The synthetic world: agents, their skills and the odds that shape every generated task.

Durations are log-normal (a median and a spread per skill); traffic follows office hours and
weekdays; paid skills take an x402 payment first. Change the numbers here to change the world.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SkillProfile:
    """How one skill of an agent behaves: durations, outcome odds, tokens and texts."""

    name: str
    work_s: float  # median seconds of agent work for the final answer
    spread: float  # log-normal sigma of that work
    clarify_p: float  # chance that the agent asks the user something first
    fail_p: float
    cancel_p: float
    reject_p: float
    tokens_in: int  # median prompt tokens
    tokens_out_per_s: float
    prompts: tuple[str, ...]
    questions: tuple[str, ...]
    replies: tuple[str, ...]
    answers: tuple[str, ...]
    artifact: str = "text"  # "text", "data" or "file"
    price_usdc: str | None = None  # x402 price of one call when the skill is paid
    rating_shift: float = 0.0


@dataclass(frozen=True)
class AgentProfile:
    """An agent: its share of the traffic, its baseline rating, its models and its skills."""

    name: str
    share: float
    rating: float
    models: tuple[tuple[str, float], ...]
    topics: tuple[str, ...]  # what its users ask about ({topic} in the texts)
    skills: tuple[SkillProfile, ...]


AGENTS: tuple[AgentProfile, ...] = (
    AgentProfile("research-agent", 0.22, 4.0, (("gpt-4o", 0.7), ("gpt-4o-mini", 0.3)), (
        "battery recycling", "heat pumps", "protein folding", "urban cycling", "solar storage",
        "sleep and memory"), (
        SkillProfile(
            "web-research", 38.0, 0.55, 0.18, 0.05, 0.03, 0.01, 1800, 14.0,
            ("Find recent studies on {topic} and list the main findings.",
             "What changed in {topic} over the last two years?",
             "Collect three reliable sources about {topic}."),
            ("Should I focus on peer-reviewed work only, or include industry reports?",
             "Which region matters most to you for {topic}?"),
            ("Peer-reviewed only, please.", "Europe and North America.", "Include both."),
            ("Here are the main findings on {topic}, with sources.",
             "Summary ready: four sources agree on the overall trend in {topic}."),
        ),
        SkillProfile(
            "summarize", 9.0, 0.45, 0.04, 0.02, 0.01, 0.005, 3200, 22.0,
            ("Summarise the attached report on {topic} in five bullet points.",
             "Give me a one-paragraph summary of this article about {topic}."),
            ("Do you want a technical or a plain-language summary?",),
            ("Plain language.", "Technical is fine."),
            ("Five-bullet summary of the {topic} report is attached.",),
            rating_shift=0.25,
        ),
        SkillProfile(
            "deep-research", 140.0, 0.6, 0.25, 0.09, 0.04, 0.01, 4200, 11.0,
            ("Write a literature review on {topic} with citations.",
             "Compare the leading approaches to {topic} in depth."),
            ("How long should the review be?", "Any sources I must include?"),
            ("About three pages.", "Nothing specific, use your judgement."),
            ("The review of {topic} is ready: twelve sources, three open questions.",),
            price_usdc="0.25", rating_shift=0.1,
        ),
    )),
    AgentProfile("code-agent", 0.20, 4.2, (("claude-3-5-sonnet", 0.8), ("claude-3-5-haiku", 0.2)), (
        "invoice parser", "rate limiter", "CSV importer", "retry policy", "date formatting",
        "auth middleware"), (
        SkillProfile(
            "code-review", 55.0, 0.5, 0.12, 0.06, 0.04, 0.01, 5200, 9.0,
            ("Review the attached diff of the {topic} module for bugs.",
             "Is this change to {topic} safe to merge?"),
            ("Which Python version does the project target?", "Should I check the tests as well?"),
            ("Python 3.11.", "Yes, tests too."),
            ("Review done: two likely bugs and one style issue in {topic}.",
             "Looks safe to merge; one suggestion about error handling in {topic}."),
            artifact="text",
        ),
        SkillProfile(
            "write-tests", 70.0, 0.5, 0.15, 0.07, 0.05, 0.01, 4100, 16.0,
            ("Write unit tests for the {topic} helpers.",
             "Add property-based tests for {topic}."),
            ("pytest or unittest?",),
            ("pytest, please.",),
            ("Added nine tests for {topic}; all pass locally.",),
            artifact="file",
        ),
        SkillProfile(
            "explain-code", 12.0, 0.45, 0.03, 0.02, 0.02, 0.005, 2600, 20.0,
            ("Explain what this {topic} function does.",),
            ("Line by line, or the big picture?",),
            ("The big picture.",),
            ("In short, the {topic} function normalises its input and caches the result.",),
            rating_shift=0.2,
        ),
    )),
    AgentProfile("travel-agent", 0.12, 3.8, (("gpt-4o", 0.5), ("llama-3.1-70b", 0.5)), (
        "Lisbon", "Tokyo", "Nairobi", "Berlin", "São Paulo", "Reykjavík"), (
        SkillProfile(
            "flight-search", 6.0, 0.5, 0.35, 0.04, 0.06, 0.01, 900, 30.0,
            ("Find flights to {topic} next month.", "Cheapest flight to {topic} this weekend?"),
            ("From which airport are you leaving?", "Any preferred airline?"),
            ("From Bengaluru.", "No preference.", "From Amsterdam, morning flights."),
            ("Found six options to {topic}; the cheapest is listed first.",),
            artifact="data",
        ),
        SkillProfile(
            "book-trip", 20.0, 0.55, 0.45, 0.07, 0.08, 0.02, 1400, 12.0,
            ("Book the 9:40 flight to {topic} and a hotel near the centre.",
             "Book a return trip to {topic} for two."),
            ("Please confirm the traveller names as on the passports.",),
            ("Confirmed, names as in my profile.", "Yes, same as last time."),
            ("Booked: flight and hotel in {topic}, confirmation attached.",),
            artifact="data", price_usdc="1.50", rating_shift=-0.2,
        ),
    )),
    AgentProfile("support-agent", 0.20, 3.6, (("gpt-4o-mini", 0.85), ("gpt-4o", 0.15)), (
        "subscription", "annual plan", "team plan", "storage add-on", "gift card"), (
        SkillProfile(
            "faq", 2.5, 0.4, 0.05, 0.01, 0.02, 0.01, 700, 35.0,
            ("How do I cancel my {topic}?", "Where can I change my {topic} settings?"),
            ("Are you on the web app or the mobile app?",),
            ("The web app.", "Mobile."),
            ("You can manage your {topic} under Settings → Billing.",),
            rating_shift=0.3,
        ),
        SkillProfile(
            "refund-request", 8.0, 0.6, 0.55, 0.03, 0.05, 0.06, 1100, 15.0,
            ("I want a refund for my {topic}.", "I was charged twice for my {topic}."),
            ("Could you share the order number?", "Which payment method did you use?"),
            ("Order 48213.", "The card ending in 4242.", "Sent it in the attachment."),
            ("Your refund for the {topic} is approved; expect it within five days.",),
            artifact="data", rating_shift=-0.5,
        ),
    )),
    AgentProfile("data-agent", 0.16, 3.9, (("gpt-4o", 0.6), ("claude-3-5-sonnet", 0.4)), (
        "new customers", "active users", "churned accounts", "quarterly sales", "support tickets"), (
        SkillProfile(
            "sql-query", 4.0, 0.6, 0.12, 0.08, 0.02, 0.02, 1500, 25.0,
            ("How many {topic} signed up last week?", "Top ten {topic} by revenue this quarter?"),
            ("Which table holds the {topic} data?",),
            ("The analytics warehouse.", "Use the events table."),
            ("Query done: results attached for {topic}.",),
            artifact="data",
        ),
        SkillProfile(
            "build-chart", 15.0, 0.5, 0.1, 0.04, 0.03, 0.01, 1900, 10.0,
            ("Plot weekly {topic} for the last quarter.", "Chart {topic} by region."),
            ("Line chart or bar chart?",),
            ("Line chart.", "Bars, please."),
            ("Here is the chart of {topic}.",),
            artifact="file", rating_shift=0.15,
        ),
    )),
    AgentProfile("translator", 0.10, 4.5, (("gpt-4o-mini", 1.0),), (
        "product launch", "holiday schedule", "price change", "office move"), (
        SkillProfile(
            "translate", 3.0, 0.45, 0.02, 0.015, 0.01, 0.005, 800, 40.0,
            ("Translate this note about {topic} into German.",
             "Translate the {topic} announcement into Spanish and French."),
            ("Formal or informal register?",),
            ("Formal.",),
            ("Translation of the {topic} text is attached.",),
        ),
    )),
)
"""The agents of the synthetic world (traffic shares add up to 1)."""

MODEL_PRICES = {  # USD per 1,000 tokens (input, output), list prices of the time
    "gpt-4o": (0.0025, 0.01), "gpt-4o-mini": (0.00015, 0.0006),
    "claude-3-5-sonnet": (0.003, 0.015), "claude-3-5-haiku": (0.0008, 0.004),
    "llama-3.1-70b": (0.0009, 0.0009),
}
PRIORITIES = (("normal", 0.65), ("low", 0.2), ("high", 0.15))
QUEUE_S = {"high": 0.2, "normal": 0.4, "low": 1.2}  # median seconds from submitted to working
CHANNELS = (("web", 0.55), ("api", 0.25), ("slack", 0.2))
LOCALES = ("en-US", "en-GB", "de-DE", "es-ES", "fr-FR", "hi-IN", "pt-BR", "ja-JP")
PLANS = (("free", 0.6), ("pro", 0.3), ("enterprise", 0.1))
ERRORS = ("timeout", "tool-error", "rate-limited", "model-error", "upstream-unavailable")
FEEDBACK_P = {"completed": 0.4, "failed": 0.55, "canceled": 0.1, "rejected": 0.25}
COMMENTS = {
    "low": ("Took far too long.", "The answer was wrong.", "It ignored half of my request.",
            "Failed again, very frustrating.", "Not what I asked for."),
    "mid": ("Okay, but I had to fix a few things.", "Useful, a bit slow.", "Mostly right.",
            "Fine for a first draft."),
    "high": ("Exactly what I needed.", "Fast and accurate, thanks!", "Great, saved me an hour.",
             "Clear and well sourced.", "Perfect."),
}
TAGS = {
    "low": ("slow", "wrong-answer", "incomplete", "hallucination", "unhelpful"),
    "mid": ("partially-correct", "slow", "verbose", "helpful"),
    "high": ("accurate", "fast", "helpful", "well-formatted"),
}
# Relative traffic per hour of the day (UTC) and per weekday (Monday first).
HOURLY = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 13, 12, 12, 13, 13, 12, 10, 8, 7, 6, 5, 4, 3)
WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.45, 0.35)
ABANDON_P = 0.04  # a user never answers the agent's question
CANCEL_AT_INPUT_P = 0.05  # a user cancels instead of answering
STUCK_P = 0.003  # the worker lost the task: it stays in `working`
THINK_S = 75.0  # median seconds a user takes to answer the agent
GAP_S = 45.0  # median seconds between two tasks of one conversation
