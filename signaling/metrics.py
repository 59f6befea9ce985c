"""Prometheus metrics of one app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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


class ForwardingCollector(Collector):
    """Forwarding relay figures computed when scraped (nothing is added per packet):
    receive → hand-to-sender delay quantiles over each consumer's recent frames, and the
    frames forwarded and dropped."""

    def __init__(self, consumers: Callable[[], Iterable]) -> None:
        self._consumers = consumers

    def collect(self):
        delays: list[float] = []
        forwarded = dropped = 0
        for consumer in self._consumers():
            delays.extend(consumer.delays)
            forwarded += consumer.forwarded
            dropped += consumer.dropped
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


class VerificationCollector(Collector):
    """Identity verification figures, read from the verifier when scraped."""

    def __init__(self, verifier) -> None:
        self._verifier = verifier

    def collect(self):
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
