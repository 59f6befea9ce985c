"""Prometheus metrics of one app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.max_lag_seen = 0.0
        self.socket_events = Counter(
            "smartcounter_socket_events_total",
            "Client events handled, by namespace, event and result code",
            ["namespace", "event", "code"],
            registry=self.registry,
        )
        self.connections = Gauge(
            "smartcounter_socket_connections",
            "Connected sockets on this node",
            ["namespace"],
            registry=self.registry,
        )
        self.media_sessions = Gauge(
            "smartcounter_media_sessions",
            "Sessions with media on this node",
            registry=self.registry,
        )
        self.rtc_answer_seconds = Histogram(
            "smartcounter_rtc_answer_seconds",
            "Time to answer an SDP offer (ICE gathering included)",
            registry=self.registry,
        )
        self.call_setup_seconds = Histogram(
            "smartcounter_call_setup_seconds",
            "From a staff member's accept to both sides' media answered",
            buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30),
            registry=self.registry,
        )
        self.upload_bytes = Histogram(
            "smartcounter_upload_bytes",
            "Sizes of accepted document uploads",
            buckets=(64e3, 256e3, 1e6, 2e6, 5e6, 10e6, 20e6),
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "smartcounter_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 50 ms): time something "
            "held the loop",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "smartcounter_event_loop_lag_max_seconds",
            "The longest event-loop lag seen since the node started",
            registry=self.registry,
        )
        self.uploads = Counter(
            "smartcounter_uploads_total", "Document uploads by HTTP status", ["status"],
            registry=self.registry,
        )

    def observe_loop_lag(self, lag_s: float) -> None:
        self.loop_lag.observe(lag_s)
        if lag_s > self.max_lag_seen:
            self.max_lag_seen = lag_s
            self.loop_lag_max.set(lag_s)


class ForwardingCollector(Collector):
    """Forwarding relay figures computed when scraped (nothing is added per packet):
    receive → hand-to-sender delay quantiles over each consumer's recent frames, and the
    frames forwarded and dropped."""

    def __init__(self, consumers: Callable[[], Iterable]) -> None:
        self._consumers = consumers

    def collect(self) -> Iterator[Metric]:
        delays: list[float] = []
        forwarded = dropped = forwarded_bytes = 0
        for consumer in self._consumers():
            delays.extend(consumer.delays)
            forwarded += consumer.forwarded
            dropped += consumer.dropped
            forwarded_bytes += consumer.forwarded_bytes
        delay = GaugeMetricFamily(
            "smartcounter_forward_delay_seconds",
            "Receive to send hand-over delay of recently forwarded frames (live consumers)",
            labels=["quantile"],
        )
        if delays:
            delays.sort()
            for q in (0.5, 0.95, 0.99):
                delay.add_metric([str(q)], delays[min(len(delays) - 1, int(q * len(delays)))])
        yield delay
        yield GaugeMetricFamily(
            "smartcounter_forwarded_frames", "Frames forwarded by live consumers", forwarded
        )
        yield GaugeMetricFamily(
            "smartcounter_forward_dropped_frames", "Frames dropped by live consumers", dropped
        )
        yield GaugeMetricFamily(
            "smartcounter_forwarded_bytes", "Bytes of media forwarded by live consumers",
            forwarded_bytes,
        )


class VerificationCollector(Collector):
    """Identity verification figures, read from the verifier when scraped."""

    def __init__(self, verifier) -> None:
        self._verifier = verifier

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "smartcounter_verifications",
            "Identity verifications finished, by status and reason",
            labels=["status", "reason"],
        )
        for (status, reason), count in sorted(self._verifier.outcomes.items()):
            outcomes.add_metric([status, reason], count)
        yield outcomes
        latency = GaugeMetricFamily(
            "smartcounter_face_analysis_seconds",
            "Time to analyse one video frame (detection, embedding, anti-spoofing), recent frames",
            labels=["quantile"],
        )
        samples = sorted(self._verifier.analysis_seconds)
        for q in (0.5, 0.95, 0.99):
            if samples:
                latency.add_metric([str(q)], samples[min(len(samples) - 1, int(q * len(samples)))])
        yield latency
        yield GaugeMetricFamily(
            "smartcounter_face_models_loaded",
            "1 when the face models are loaded, 0 when verification is unavailable",
            1 if self._verifier.available else 0,
        )


class CallCollector(Collector):
    """Calls by outcome and queue waits, read from the router's counters when scraped."""

    def __init__(self, router) -> None:
        self._router = router

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "smartcounter_calls", "Calls leaving the queue or ending, by outcome",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._router.outcome_counts.items()):
            calls.add_metric([outcome], count)
        yield calls
        wait = self._router.queue_waits
        histogram = HistogramMetricFamily(
            "smartcounter_queue_wait_seconds", "Waits from request to answer or abandonment"
        )
        histogram.add_metric([], wait.cumulative(), wait.total)
        yield histogram
