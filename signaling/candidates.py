"""The media address a node advertises in its answers (``SMARTCOUNTER_MEDIA_ADDRESS``).

aiortc gathers a host candidate on every interface of the machine and has no setting to
choose one (mediasoup's ``announcedIp``, LiveKit's ``node_ip``). A node that browsers
reach on one address, a private one among several, or a public one mapped 1:1 onto the
node (NAT), offers just that: host candidates on that address are kept and the others
dropped; when no interface has it (NAT), the host candidates are rewritten to it. Server
reflexive and relay candidates are left alone.
"""

from __future__ import annotations

import ipaddress


def _candidate_fields(line: str) -> list[str] | None:
    """The fields of an ``a=candidate:`` line of a host candidate, or None."""
    if not line.startswith("a=candidate:"):
        return None
    fields = line.split()
    if len(fields) < 8 or fields[6] != "typ" or fields[7] != "host":
        return None
    return fields


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None  # a hostname (mDNS): not an address of this node


def advertise(sdp: str, address: str) -> str:
    """``sdp`` with its host candidates on ``address`` only (see the module)."""
    family = ipaddress.ip_address(address).version  # a malformed setting fails loudly
    lines = sdp.splitlines()
    host = [f for f in map(_candidate_fields, lines) if f is not None]
    on_address = any(f[4] == address for f in host)
    out: list[str] = []
    seen: set[tuple[str, str, str]] = set()  # (component, transport, port) rewritten
    for line in lines:
        fields = _candidate_fields(line)
        if fields is not None:
            if on_address:
                if fields[4] != address:
                    continue
            else:
                if _family(fields[4]) != family:
                    continue  # a candidate of the other family cannot be the address
                key = (fields[1], fields[2].lower(), fields[5])
                if key in seen:
                    continue
                seen.add(key)
                fields[4] = address
                line = " ".join(fields)
        elif line.startswith("c=IN IP"):
            line = f"c=IN {'IP6' if family == 6 else 'IP4'} {address}"
        out.append(line)
    return "\r\n".join(out) + "\r\n"
