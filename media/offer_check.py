"""What an SDP offer may ask of the server, checked on its text before aiortc sees it.

aiortc builds a transceiver for every media section of an offer before anything is
validated: 7,000 ``m=`` lines (63 KB) cost a second of event-loop time per offer. A call
needs one audio and one video section (a supervisor's monitor the same), so an offer is
refused, with the reason, unless it has at most :data:`MAX_SECTIONS` sections, each
audio or video over (S)RTP with a codec the server forwards, and a bounded number of
payload types and candidates. The check reads each line once: it costs microseconds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from sessions.errors import BadRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_SECTIONS = 4  # audio + video, with room for a client that sends one of each twice
MAX_PAYLOAD_TYPES = 64  # per section (Chromium offers ~20 for video)
MAX_CANDIDATES = 64  # per section
CODECS = {"audio": {"opus"}, "video": {"vp8", "h264"}}


def check_offer(sdp: str) -> None:
    """:class:`BadRequest` naming what is wrong, or None for an offer worth negotiating."""
    lines = sdp.splitlines()
    if not lines or lines[0].strip() != "v=0":
        raise BadRequest("sdp: not a session description (it must start with v=0)")
    sections: list[dict] = []
    for line in lines:
        if line.startswith("m="):
            if len(sections) == MAX_SECTIONS:
                raise BadRequest(f"sdp: more than {MAX_SECTIONS} media sections")
            parts = line[2:].split()
            if len(parts) < 4:
                raise BadRequest(f"sdp: malformed media line {line[:60]!r}")
            kind, proto, formats = parts[0], parts[2], parts[3:]
            if kind not in CODECS:
                raise BadRequest(f"sdp: media {kind!r} is not audio or video")
            if "RTP" not in proto:
                raise BadRequest(f"sdp: transport {proto!r} is not RTP")
            if len(formats) > MAX_PAYLOAD_TYPES:
                raise BadRequest(f"sdp: more than {MAX_PAYLOAD_TYPES} payload types")
            sections.append({"kind": kind, "codecs": set(), "candidates": 0})
        elif sections and line.startswith("a=rtpmap:"):
            _, _, encoding = line.partition(" ")
            sections[-1]["codecs"].add(encoding.split("/", 1)[0].lower())
        elif sections and line.startswith("a=candidate:"):
            sections[-1]["candidates"] += 1
            if sections[-1]["candidates"] > MAX_CANDIDATES:
                raise BadRequest(f"sdp: more than {MAX_CANDIDATES} candidates in a section")
    if not sections:
        raise BadRequest("sdp: no media section")
    for section in sections:
        if not section["codecs"] & CODECS[section["kind"]]:
            wanted = " or ".join(sorted(CODECS[section["kind"]]))
            raise BadRequest(f"sdp: the {section['kind']} section offers no {wanted}")


def _reachable_only_here(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_unspecified)


def screen_candidates(sdp: str, peer_is_local: bool,
                      allowed: Sequence[Network] | None = None) -> str:
    """The offer without the ICE candidates the server must not send connectivity checks
    to: with ``allowed`` networks, any address outside them; without, loopback,
    link-local, multicast and unspecified addresses, unless the peer itself is on this
    machine (a kiosk or officer must not make the server probe its own or its LAN's
    private ports). Host names (mDNS ``.local``) are left alone: they resolve to nothing
    here."""
    kept = []
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            parts = line.split()
            try:
                address = ipaddress.ip_address(parts[4])
            except (IndexError, ValueError):
                address = None
            if address is not None and (
                    not any(address in net for net in allowed) if allowed
                    else _reachable_only_here(address) and not peer_is_local):
                continue
        kept.append(line)
    return "".join(kept)
