"""Prometheus metrics of one server process (`GET /metrics`). Each app has its own registry, so several apps in
one process (tests, a UI and an API) never mix their counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest

from recchat.models import RecommendationList

disable_created_metrics()  # the *_created series only say when the process started

TURN_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40)
"""From a search-only turn (tens of ms) to a CPU model's answer (seconds)."""


class Metrics:
    def __init__(self, model_off: bool = False) -> None:
        """`model_off`: no LLM is configured, so no turn is a fallback (each is answered from retrieval by design)."""
        self.model_off = model_off
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "recchat_turns", "Chat turns answered, by where the reply came from ('llm' or 'retrieval').", ["source"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "recchat_turn_seconds", "Time to answer a chat turn, streamed or not.", buckets=TURN_SECONDS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "recchat_fallbacks",
            "Turns the LLM was meant to answer but search did (down, slow or unusable); none while it is off.",
            registry=self.registry,
        )
        self.feedback = Counter(
            "recchat_feedback_events", "Feedback events recorded (repeats of a key not counted), by kind.", ["kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "recchat_errors", "Requests answered with an error, by error type.", ["type"], registry=self.registry
        )

    def turn(self, reply: RecommendationList, seconds: float) -> None:
        self.turns.labels(reply.metadata.source).inc()
        self.turn_seconds.observe(seconds)
        if reply.metadata.fallback_reason and not self.model_off:
            self.fallbacks.inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
