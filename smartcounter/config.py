"""Settings: defaults, overridden by ``SMARTCOUNTER_*`` environment variables, overridden
by command-line options."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from document_share.sandbox import SandboxLimits
from media.peer import IceServer
from media.vision.models import DEFAULT_ANTISPOOF
from sessions.dashboard import DashboardConfig
from sessions.router import RoutingConfig
from sessions.verification import VerificationPolicy
from signaling.login_guard import LoginPolicy
from signaling.turn import TurnConfig


class ConfigError(ValueError):
    pass


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    redis_url: str | None = None
    redis_prefix: str = "sc"
    # "sqlite" (DATA_DIR/store.sqlite3, the default without a Redis URL), "redis" (the
    # default with one) or "memory" (nothing survives a restart: demos and trials only).
    store: str | None = None
    # "require": a node refuses to start on a Redis that could lose acknowledged writes
    # (see RedisStore.durability_problem); "warn": it starts and says so.
    redis_durability: str = "require"
    node_id: str = field(default_factory=socket.gethostname)
    # The address browsers reach this node's media on, when not every interface's
    # (several interfaces, or a public address mapped 1:1 onto the node).
    media_address: str | None = None
    # A node whose beat is older than this is dead; another node recovers its sockets.
    node_ttl_s: float = 15.0
    # STUN/TURN servers handed to browsers and used by the server's peer connections.
    # None by default: on one machine or LAN host candidates are enough, and no traffic
    # goes to a third party.
    ice_servers: list[IceServer] = field(default_factory=list)
    # TURN with short-lived credentials from a shared secret (coturn's use-auth-secret).
    turn: TurnConfig = field(default_factory=TurnConfig)
    ice_transport_policy: str = "all"
    token_ttl_s: float = 12 * 3600
    # A kiosk's token lasts this long; in its last third the kiosk gets a new one, in
    # passing, when it connects.
    kiosk_token_ttl_s: float = 180 * 86400
    # "forward" passes encoded frames between participants (cheap); "transcode" lets
    # aiortc decode and re-encode them (the old relay, kept as the benchmark baseline).
    media_relay: str = "forward"
    # Record both directions of every call (forwarding relay only) under DATA_DIR/recordings.
    recording: bool = True
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    tick_interval_s: float = 0.25
    heartbeat_interval_s: float = 10.0
    # Face models: converted ones live here (default DATA_DIR/models); converted on
    # start when missing unless models_auto_prepare is off.
    models_dir: Path | None = None
    models_auto_prepare: bool = True
    antispoof_model: Path = DEFAULT_ANTISPOOF
    # Worker threads running models, and onnxruntime threads per model run.
    vision_workers: int = 2
    inference_threads: int = 1
    verification: VerificationPolicy = field(default_factory=VerificationPolicy)
    max_upload_bytes: int = 20 * 1024 * 1024
    max_upload_pixels: int = 40_000_000
    max_pdf_pages: int = 50
    # PDFs are read and drawn in worker processes, each job within these limits.
    render: SandboxLimits = field(default_factory=SandboxLimits)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    login: LoginPolicy = field(default_factory=LoginPolicy)
    # "json": one object per line with node and session ids; "text" for a terminal.
    log_format: str = "json"
    events_per_minute: float = 600
    uploads_per_minute: float = 30
    metrics_token: str | None = None
    # A connection must send its first request's headers within this, and one address
    # may hold this many connections (see signaling.connections).
    # Networks an offer's ICE candidates may point at (None: anywhere but loopback and
    # link-local addresses, unless the peer is on this machine).
    ice_allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    header_timeout_s: float = 10.0
    max_connections_per_address: int = 256
    drain_timeout_s: float = 60.0
    # HTTPS: a PEM certificate (chain) and its key; browsers need HTTPS for cameras
    # anywhere but localhost.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def store_kind(self) -> str:
        return self.store or ("redis" if self.redis_url else "sqlite")

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite3"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.json"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"


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


def file_values(path: Path) -> dict[str, str]:
    """A TOML configuration file as the environment variables it stands for: each key is
    a ``SMARTCOUNTER_*`` name without the prefix, in any case (``redis_url = "..."``);
    lists are written as the variable expects them (JSON for ``ice_servers``, commas for
    ``turn_urls``)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from exc
    values = {}
    for key, value in raw.items():
        name = f"SMARTCOUNTER_{key.upper()}"
        if isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a value, not a table")
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, list):
            value = json.dumps(value) if name == "SMARTCOUNTER_ICE_SERVERS" else ",".join(
                map(str, value))
        values[name] = str(value)
    unknown = sorted(set(values) - KNOWN_VARIABLES - {
        n for n in values if n.startswith("SMARTCOUNTER_VERIFY_")})
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    return values


def load(config_file: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, then the configuration file (``config_file`` or
    ``SMARTCOUNTER_CONFIG``), then the environment."""
    env = dict(os.environ if env is None else env)
    path = config_file or (Path(env["SMARTCOUNTER_CONFIG"]) if env.get("SMARTCOUNTER_CONFIG")
                           else None)
    merged = {**(file_values(path) if path else {}), **env}
    return from_env(merged)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    s = Settings()
    s.host = env.get("SMARTCOUNTER_HOST", s.host)
    s.port = int(_float_env(env, "SMARTCOUNTER_PORT", s.port))
    s.data_dir = Path(env.get("SMARTCOUNTER_DATA_DIR", str(s.data_dir)))
    s.redis_url = env.get("SMARTCOUNTER_REDIS_URL") or None
    s.redis_prefix = env.get("SMARTCOUNTER_REDIS_PREFIX") or s.redis_prefix
    s.node_id = env.get("SMARTCOUNTER_NODE_ID", s.node_id)
    s.store = env.get("SMARTCOUNTER_STORE") or None
    s.redis_durability = env.get("SMARTCOUNTER_REDIS_DURABILITY") or s.redis_durability
    if s.redis_durability not in ("require", "warn"):
        raise ConfigError("SMARTCOUNTER_REDIS_DURABILITY must be 'require' or 'warn'")
    check_store(s)
    s.media_address = env.get("SMARTCOUNTER_MEDIA_ADDRESS") or None
    if s.media_address is not None:
        try:
            ipaddress.ip_address(s.media_address)
        except ValueError as exc:
            raise ConfigError(
                f"SMARTCOUNTER_MEDIA_ADDRESS must be an IP address, not {s.media_address!r}"
            ) from exc
    s.node_ttl_s = _float_env(env, "SMARTCOUNTER_NODE_TTL_S", s.node_ttl_s)
    if env.get("SMARTCOUNTER_ICE_SERVERS"):
        s.ice_servers = _parse_ice_servers(env["SMARTCOUNTER_ICE_SERVERS"])
    s.token_ttl_s = _float_env(env, "SMARTCOUNTER_TOKEN_TTL_S", s.token_ttl_s)
    s.kiosk_token_ttl_s = _float_env(env, "SMARTCOUNTER_KIOSK_TOKEN_TTL_DAYS",
                                     s.kiosk_token_ttl_s / 86400) * 86400
    turn_urls = [u.strip() for u in env.get("SMARTCOUNTER_TURN_URLS", "").split(",") if u.strip()]
    s.turn = TurnConfig(
        urls=turn_urls,
        secret=env.get("SMARTCOUNTER_TURN_SECRET") or None,
        ttl_s=int(_float_env(env, "SMARTCOUNTER_TURN_TTL_S", s.turn.ttl_s)),
    )
    if bool(s.turn.urls) != bool(s.turn.secret):
        raise ConfigError(
            "set both SMARTCOUNTER_TURN_URLS and SMARTCOUNTER_TURN_SECRET, or neither"
        )
    s.tls_cert = Path(env["SMARTCOUNTER_TLS_CERT"]) if env.get("SMARTCOUNTER_TLS_CERT") else None
    s.tls_key = Path(env["SMARTCOUNTER_TLS_KEY"]) if env.get("SMARTCOUNTER_TLS_KEY") else None
    if bool(s.tls_cert) != bool(s.tls_key):
        raise ConfigError("set both SMARTCOUNTER_TLS_CERT and SMARTCOUNTER_TLS_KEY, or neither")
    s.drain_timeout_s = _float_env(env, "SMARTCOUNTER_DRAIN_TIMEOUT_S", s.drain_timeout_s)
    s.events_per_minute = _float_env(env, "SMARTCOUNTER_EVENTS_PER_MINUTE", s.events_per_minute)
    s.uploads_per_minute = _float_env(env, "SMARTCOUNTER_UPLOADS_PER_MINUTE",
                                      s.uploads_per_minute)
    if s.events_per_minute <= 0 or s.uploads_per_minute <= 0:
        raise ConfigError("SMARTCOUNTER_EVENTS_PER_MINUTE and _UPLOADS_PER_MINUTE must be > 0")
    s.metrics_token = env.get("SMARTCOUNTER_METRICS_TOKEN") or None
    if env.get("SMARTCOUNTER_ICE_ALLOWED_NETWORKS"):
        try:
            s.ice_allowed_networks = [
                ipaddress.ip_network(n.strip(), strict=False)
                for n in env["SMARTCOUNTER_ICE_ALLOWED_NETWORKS"].split(",") if n.strip()]
        except ValueError as exc:
            raise ConfigError(f"SMARTCOUNTER_ICE_ALLOWED_NETWORKS: {exc}") from exc
    s.header_timeout_s = _float_env(env, "SMARTCOUNTER_HEADER_TIMEOUT_S", s.header_timeout_s)
    s.max_connections_per_address = int(_float_env(
        env, "SMARTCOUNTER_MAX_CONNECTIONS_PER_ADDRESS", s.max_connections_per_address))
    s.log_format = env.get("SMARTCOUNTER_LOG_FORMAT", s.log_format)
    if s.log_format not in ("json", "text"):
        raise ConfigError("SMARTCOUNTER_LOG_FORMAT must be 'json' or 'text'")
    s.ice_transport_policy = env.get("SMARTCOUNTER_ICE_TRANSPORT_POLICY", s.ice_transport_policy)
    if s.ice_transport_policy not in ("all", "relay"):
        raise ConfigError("SMARTCOUNTER_ICE_TRANSPORT_POLICY must be 'all' or 'relay'")
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
    if env.get("SMARTCOUNTER_MODELS_DIR"):
        s.models_dir = Path(env["SMARTCOUNTER_MODELS_DIR"])
    s.models_auto_prepare = _flag(env, "SMARTCOUNTER_MODELS_AUTO_PREPARE", True)
    if env.get("SMARTCOUNTER_ANTISPOOF_MODEL"):
        s.antispoof_model = Path(env["SMARTCOUNTER_ANTISPOOF_MODEL"])
    s.vision_workers = int(_float_env(env, "SMARTCOUNTER_VISION_WORKERS", s.vision_workers))
    s.inference_threads = int(
        _float_env(env, "SMARTCOUNTER_INFERENCE_THREADS", s.inference_threads)
    )
    if s.vision_workers < 1 or s.inference_threads < 1:
        raise ConfigError("SMARTCOUNTER_VISION_WORKERS and _INFERENCE_THREADS must be >= 1")
    s.verification = _verification_policy(env, s.verification)
    s.max_upload_bytes = int(_float_env(env, "SMARTCOUNTER_MAX_UPLOAD_BYTES", s.max_upload_bytes))
    s.max_upload_pixels = int(
        _float_env(env, "SMARTCOUNTER_MAX_UPLOAD_PIXELS", s.max_upload_pixels)
    )
    s.max_pdf_pages = int(_float_env(env, "SMARTCOUNTER_MAX_PDF_PAGES", s.max_pdf_pages))
    render = s.render
    s.render = SandboxLimits(
        workers=int(_float_env(env, "SMARTCOUNTER_RENDER_WORKERS", render.workers)),
        memory_bytes=int(_float_env(env, "SMARTCOUNTER_RENDER_MEMORY_MB",
                                    render.memory_bytes / 2**20) * 2**20),
        cpu_s=int(_float_env(env, "SMARTCOUNTER_RENDER_CPU_S", render.cpu_s)),
        wall_s=_float_env(env, "SMARTCOUNTER_RENDER_TIMEOUT_S", render.wall_s),
    )
    if s.render.workers < 1 or s.render.memory_bytes < 64 * 2**20 or s.render.wall_s <= 0:
        raise ConfigError("SMARTCOUNTER_RENDER_WORKERS must be >= 1, _MEMORY_MB >= 64 and "
                          "_TIMEOUT_S > 0")
    s.login = LoginPolicy(
        max_failures=int(_float_env(env, "SMARTCOUNTER_LOGIN_MAX_FAILURES", s.login.max_failures)),
        lockout_s=_float_env(env, "SMARTCOUNTER_LOGIN_LOCKOUT_S", s.login.lockout_s),
    )
    s.dashboard = DashboardConfig(
        window_s=_float_env(env, "SMARTCOUNTER_STATS_WINDOW_S", s.dashboard.window_s),
        target_s=_float_env(env, "SMARTCOUNTER_SERVICE_LEVEL_TARGET_S", s.dashboard.target_s),
    )
    return s


def check_store(s: Settings) -> None:
    """The store named fits the Redis URL given (or not given)."""
    if s.store not in (None, "sqlite", "redis", "memory"):
        raise ConfigError(
            f"SMARTCOUNTER_STORE must be 'sqlite', 'redis' or 'memory', not {s.store!r}")
    if s.store_kind == "redis" and not s.redis_url:
        raise ConfigError("the Redis store needs SMARTCOUNTER_REDIS_URL (or --redis-url)")
    if s.store_kind != "redis" and s.redis_url:
        raise ConfigError(
            f"a Redis URL is set but the store is {s.store_kind!r}: several nodes share "
            "Redis; drop the URL to run one node on the embedded store")


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() not in ("0", "off", "false", "no")


# SMARTCOUNTER_VERIFY_<FIELD> for each number of VerificationPolicy, e.g.
# SMARTCOUNTER_VERIFY_MATCH_THRESHOLD=0.4; SMARTCOUNTER_VERIFY_CHALLENGE_MODE=staff.
def _verification_policy(env: dict[str, str], policy: VerificationPolicy) -> VerificationPolicy:
    # Each value has its own field's type (str, int or float), checked as it is read.
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(policy):
        name = f"SMARTCOUNTER_VERIFY_{f.name.upper()}"
        if name not in env or env[name] == "":
            continue
        default = getattr(policy, f.name)
        if isinstance(default, str):
            changes[f.name] = env[name]
        elif isinstance(default, int):
            changes[f.name] = int(_float_env(env, name, default))
        else:
            changes[f.name] = _float_env(env, name, default)
    if changes.get("challenge_mode", policy.challenge_mode) not in ("auto", "staff"):
        raise ConfigError("SMARTCOUNTER_VERIFY_CHALLENGE_MODE must be 'auto' or 'staff'")
    return dataclasses.replace(policy, **changes)


# Every variable a configuration file may set (as its key without the prefix): what
# from_env reads, and the signing key read by signaling.auth; SMARTCOUNTER_VERIFY_* are
# VerificationPolicy's fields. tests/test_config.py checks this against the code and
# docs/configuration.md.
KNOWN_VARIABLES = frozenset("SMARTCOUNTER_" + name for name in (
    "ANTISPOOF_MODEL", "AVERAGE_HANDLE_S", "DATA_DIR", "DRAIN_TIMEOUT_S",
    "EVENTS_PER_MINUTE", "HEADER_TIMEOUT_S", "HOST", "ICE_ALLOWED_NETWORKS", "ICE_SERVERS",
    "ICE_TRANSPORT_POLICY", "INFERENCE_THREADS", "KIOSK_GRACE_S", "KIOSK_TOKEN_TTL_DAYS",
    "LOGIN_LOCKOUT_S", "LOGIN_MAX_FAILURES", "LOG_FORMAT", "MAX_CONNECTIONS_PER_ADDRESS",
    "MAX_PDF_PAGES", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "MEDIA_ADDRESS",
    "MEDIA_RELAY", "METRICS_TOKEN", "MODELS_AUTO_PREPARE", "MODELS_DIR", "NODE_ID",
    "NODE_TTL_S", "OFFER_TIMEOUT_S", "PORT", "RECORDING", "REDIS_DURABILITY",
    "REDIS_PREFIX", "REDIS_URL", "RENDER_CPU_S", "RENDER_MEMORY_MB", "RENDER_TIMEOUT_S",
    "RENDER_WORKERS", "SECRET_KEY", "SERVICE_LEVEL_TARGET_S", "STAFF_GRACE_S",
    "STATS_WINDOW_S", "STORE", "TLS_CERT", "TLS_KEY", "TOKEN_TTL_S", "TURN_SECRET",
    "TURN_TTL_S", "TURN_URLS", "UPLOADS_PER_MINUTE", "VISION_WORKERS",
))
