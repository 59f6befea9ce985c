"""Finding 11: the server sent STUN checks wherever an offer's candidates pointed
(``127.0.0.1:19999``), so a kiosk or officer could make it probe internal UDP ports.
Now candidates at loopback, link-local, multicast or unspecified addresses are dropped
from a peer that is not on this machine, and an allow-list can narrow them further."""

from __future__ import annotations

import ipaddress

from media.offer_check import screen_candidates

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=candidate:1 1 udp 2122260223 127.0.0.1 19999 typ host\r\n"
    "a=candidate:2 1 udp 2122260223 169.254.7.7 5000 typ host\r\n"
    "a=candidate:3 1 udp 2122260223 ::1 5001 typ host\r\n"
    "a=candidate:4 1 udp 2122260223 203.0.113.9 5002 typ host\r\n"
    "a=candidate:5 1 udp 1686052607 198.51.100.4 6000 typ srflx raddr 0.0.0.0 rport 0\r\n"
    "a=candidate:6 1 udp 2122260223 4b1c.local 5003 typ host\r\n"
    "a=end-of-candidates\r\n"
)


def candidates(sdp: str) -> list[str]:
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_a_remote_peer_cannot_point_the_server_at_loopback_or_link_local():
    kept = screen_candidates(OFFER, peer_is_local=False)
    assert candidates(kept) == ["203.0.113.9", "198.51.100.4", "4b1c.local"]
    assert "a=end-of-candidates" in kept and "m=audio" in kept


def test_a_peer_on_this_machine_keeps_its_loopback_candidates():
    assert candidates(screen_candidates(OFFER, peer_is_local=True)) == candidates(OFFER)


def test_an_allow_list_keeps_only_its_networks():
    allowed = [ipaddress.ip_network("198.51.100.0/24")]
    assert candidates(screen_candidates(OFFER, peer_is_local=True, allowed=allowed)) == [
        "198.51.100.4", "4b1c.local"]
