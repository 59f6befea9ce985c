"""Queue statistics on synthetic timelines."""

from __future__ import annotations

import pytest

from sessions.statistics import ABANDONED, ANSWERED, Outcome, summarize

HOUR = 3600.0


def test_answered_exactly_at_the_target_counts_as_within():
    outcomes = [Outcome(ANSWERED, 60.0, 100.0), Outcome(ANSWERED, 60.001, 110.0)]
    summary = summarize(outcomes, now=200.0, window_s=HOUR, target_s=60.0)
    assert summary.answered == 2
    assert summary.service_level == pytest.approx(0.5)
    assert summary.asa_s == pytest.approx(60.0005)


def test_abandoned_calls_count_as_abandoned_but_not_in_the_service_level():
    outcomes = [
        Outcome(ABANDONED, 5.0, 10.0),  # abandoned within the target
        Outcome(ABANDONED, 300.0, 20.0),  # abandoned after it
        Outcome(ANSWERED, 30.0, 30.0),
        Outcome(ANSWERED, 90.0, 40.0),
    ]
    summary = summarize(outcomes, now=50.0, window_s=HOUR, target_s=60.0)
    assert (summary.answered, summary.abandoned) == (2, 2)
    assert summary.service_level == pytest.approx(0.5)
    assert summary.asa_s == pytest.approx(60.0)


def test_the_window_rolls_over():
    outcomes = [Outcome(ANSWERED, 10.0, 0.0), Outcome(ANSWERED, 100.0, 1800.0),
                Outcome(ABANDONED, 50.0, 3599.0)]
    at_hour = summarize(outcomes, now=HOUR, window_s=HOUR, target_s=60.0)
    # The call that left at t=0 is exactly one window old: rolled out.
    assert (at_hour.answered, at_hour.abandoned) == (1, 1)
    assert at_hour.service_level == 0.0
    later = summarize(outcomes, now=1800.0 + HOUR, window_s=HOUR, target_s=60.0)
    assert (later.answered, later.abandoned) == (0, 1)
    assert later.service_level is None and later.asa_s is None
    empty = summarize(outcomes, now=10 * HOUR, window_s=HOUR, target_s=60.0)
    assert empty.public() == {"answered": 0, "abandoned": 0, "asa_s": None,
                              "service_level": None}


def test_outcomes_in_the_future_of_now_are_not_counted():
    summary = summarize([Outcome(ANSWERED, 1.0, 500.0)], now=400.0, window_s=HOUR,
                        target_s=60.0)
    assert summary.answered == 0


def test_buckets_count_at_or_under_each_bound_cumulatively():
    from sessions.statistics import Buckets

    buckets = Buckets((5, 60))
    for value in (1, 5, 5.01, 60, 61):
        buckets.observe(value)
    assert buckets.cumulative() == [("5", 2), ("60", 4), ("+Inf", 5)]
    assert buckets.total == 132.01
