"""Settings: defaults, overridden by ``SMARTCOUNTER_*`` environment variables, overridden
by command-line options."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from media.peer import IceServer
from sessions.router import RoutingConfig


class ConfigError(ValueError):
    pass


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    redis_url: str | None = None
    redis_prefix: str = "sc"
    node_id: str = field(default_factory=socket.gethostname)
    # STUN/TURN servers handed to browsers and used by the server's peer connections.
    # None by default: on one machine or LAN host candidates are enough, and no traffic
    # goes to a third party.
    ice_servers: list[IceServer] = field(default_factory=list)
    token_ttl_s: float = 12 * 3600
    # "forward" passes encoded frames between participants (cheap); "transcode" lets
    # aiortc decode and re-encode them (the old relay, kept as the benchmark baseline).
    media_relay: str = "forward"
    # Record both directions of every call (forwarding relay only) under DATA_DIR/recordings.
    recording: bool = True
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    tick_interval_s: float = 0.25
    heartbeat_interval_s: float = 10.0

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.json"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"


def _parse_ice_servers(raw: str) -> list[IceServer]:
    """``SMARTCOUNTER_ICE_SERVERS``: JSON list of ``{"urls": [...], "username"?,
    "credential"?}``."""
    try:
        items = json.loads(raw)
        return [
            IceServer(
                urls=[item["urls"]] if isinstance(item["urls"], str) else list(item["urls"]),
                username=item.get("username"),
                credential=item.get("credential"),
            )
            for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"SMARTCOUNTER_ICE_SERVERS is not a JSON list of servers: {exc}") from exc


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    s = Settings()
    s.host = env.get("SMARTCOUNTER_HOST", s.host)
    s.port = int(_float_env(env, "SMARTCOUNTER_PORT", s.port))
    s.data_dir = Path(env.get("SMARTCOUNTER_DATA_DIR", str(s.data_dir)))
    s.redis_url = env.get("SMARTCOUNTER_REDIS_URL") or None
    s.node_id = env.get("SMARTCOUNTER_NODE_ID", s.node_id)
    if env.get("SMARTCOUNTER_ICE_SERVERS"):
        s.ice_servers = _parse_ice_servers(env["SMARTCOUNTER_ICE_SERVERS"])
    s.token_ttl_s = _float_env(env, "SMARTCOUNTER_TOKEN_TTL_S", s.token_ttl_s)
    s.media_relay = env.get("SMARTCOUNTER_MEDIA_RELAY", s.media_relay)
    s.recording = env.get("SMARTCOUNTER_RECORDING", "on").lower() not in ("0", "off", "false", "no")
    if s.media_relay not in ("forward", "transcode"):
        raise ConfigError(
            f"SMARTCOUNTER_MEDIA_RELAY must be 'forward' or 'transcode', not {s.media_relay!r}"
        )
    r = s.routing
    r.offer_timeout_s = _float_env(env, "SMARTCOUNTER_OFFER_TIMEOUT_S", r.offer_timeout_s)
    r.staff_lost_grace_s = _float_env(env, "SMARTCOUNTER_STAFF_GRACE_S", r.staff_lost_grace_s)
    r.kiosk_lost_grace_s = _float_env(env, "SMARTCOUNTER_KIOSK_GRACE_S", r.kiosk_lost_grace_s)
    r.average_handle_s = _float_env(env, "SMARTCOUNTER_AVERAGE_HANDLE_S", r.average_handle_s)
    return s
