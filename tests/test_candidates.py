"""The media address a node advertises: host candidates of an answer on that address
only, or rewritten to it (1:1 NAT); other candidates untouched."""

from __future__ import annotations

import pytest

from signaling.candidates import advertise

ANSWER = "\r\n".join([
    "v=0",
    "m=video 40001 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 10.0.0.5",
    "a=candidate:1 1 udp 2130706431 10.0.0.5 40001 typ host",
    "a=candidate:2 1 udp 2130706431 172.17.0.1 40002 typ host",
    "a=candidate:5 1 udp 2130706431 2001:db8::5 40003 typ host",
    "a=candidate:3 1 udp 1694498815 198.51.100.9 40001 typ srflx raddr 10.0.0.5 rport 40001",
    "a=candidate:4 1 udp 16777215 192.0.2.50 3478 typ relay raddr 0.0.0.0 rport 0",
    "a=end-of-candidates",
]) + "\r\n"


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_an_address_of_the_node_keeps_only_its_host_candidates():
    sdp = advertise(ANSWER, "10.0.0.5")
    assert candidates(sdp) == [
        "a=candidate:1 1 udp 2130706431 10.0.0.5 40001 typ host",
        "a=candidate:3 1 udp 1694498815 198.51.100.9 40001 typ srflx raddr 10.0.0.5 rport 40001",
        "a=candidate:4 1 udp 16777215 192.0.2.50 3478 typ relay raddr 0.0.0.0 rport 0",
    ]
    assert "c=IN IP4 10.0.0.5" in sdp.splitlines()


def test_an_address_mapped_onto_the_node_replaces_its_host_addresses():
    sdp = advertise(ANSWER, "203.0.113.7")
    hosts = [c for c in candidates(sdp) if "typ host" in c]
    assert hosts == [
        "a=candidate:1 1 udp 2130706431 203.0.113.7 40001 typ host",
        "a=candidate:2 1 udp 2130706431 203.0.113.7 40002 typ host",
    ]
    assert "c=IN IP4 203.0.113.7" in sdp.splitlines()
    assert sdp.endswith("a=end-of-candidates\r\n")


def test_a_malformed_address_is_refused():
    with pytest.raises(ValueError):
        advertise(ANSWER, "media.example")
