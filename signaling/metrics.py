"""Prometheus metrics of one app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
