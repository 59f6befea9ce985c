"""Queue statistics for the supervisors' dashboard, from the outcome of each call.

Every call that leaves the queue is counted once, by its department: ``answered`` (a
staff member accepted it; its wait is from the request to the first answer) or
``abandoned`` (the citizen left before any answer). Over a rolling window:

- ``answered``, ``abandoned``: counts;
- ``asa_s``: average speed of answer, the mean wait of the answered calls;
- ``service_level``: the share of answered calls answered within the target wait (at
  the target exactly counts as within), as docs/protocol.md defines it. Abandoned calls do
  not count either way. ``None`` when nothing was answered in the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANSWERED = "answered"
ABANDONED = "abandoned"


@dataclass(frozen=True)
class Outcome:
    kind: str  # ANSWERED | ABANDONED
    wait_s: float
    at: float  # when it left the queue


@dataclass(frozen=True)
class Summary:
    answered: int
    abandoned: int
    asa_s: float | None
    service_level: float | None

    def public(self) -> dict:
        return {
            "answered": self.answered,
            "abandoned": self.abandoned,
            "asa_s": None if self.asa_s is None else round(self.asa_s, 1),
            "service_level": None if self.service_level is None else round(self.service_level, 4),
        }


def summarize(
    outcomes: Iterable[Outcome], now: float, window_s: float, target_s: float
) -> Summary:
    """Over the window ``(now - window_s, now]``: an outcome exactly ``window_s`` old has
    rolled out."""
    since = now - window_s
    answered_waits: list[float] = []
    abandoned = 0
    for outcome in outcomes:
        if not since < outcome.at <= now:
            continue
        if outcome.kind == ANSWERED:
            answered_waits.append(outcome.wait_s)
        elif outcome.kind == ABANDONED:
            abandoned += 1
    if not answered_waits:
        return Summary(0, abandoned, None, None)
    within = sum(1 for wait in answered_waits if wait <= target_s)
    return Summary(
        answered=len(answered_waits),
        abandoned=abandoned,
        asa_s=sum(answered_waits) / len(answered_waits),
        service_level=within / len(answered_waits),
    )


class Buckets:
    """Counts of observations at or under each bound (a histogram, for metrics)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: over every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound),
                     len(self.bounds))
        self.counts[index] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out
