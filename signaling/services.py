"""What the application is made of: the services its handlers and namespaces share,
kept in the app under :data:`signaling.keys.SERVICES`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from document_share.intake import Limits
from document_share.pages import PageRenderer
from document_share.storage import Blobs
from media.offer_check import Network
from media.peer import IceServer, MediaHub
from media.vision.analyzer import FaceAnalyzer, VisionPool
from sessions.accounts import AccountDirectory
from sessions.audit import AuditLog
from sessions.catalog import Catalog
from sessions.dashboard import DashboardConfig
from sessions.store import Store
from sessions.verification import VerificationPolicy

from .auth import TokenIssuer
from .login_guard import LoginPolicy
from .metrics import Metrics
from .signed_urls import UrlSigner
from .turn import TurnConfig


@dataclass
class Vision:
    """The face models as loaded at start: ``analyzer`` is None when they could not be,
    and ``problem`` says why (for /readyz and the ``unavailable`` answers)."""

    pool: VisionPool
    analyzer: FaceAnalyzer | None
    problem: str | None = None
    policy: VerificationPolicy = field(default_factory=VerificationPolicy)


@dataclass
class Services:
    store: Store
    audit: AuditLog
    accounts: AccountDirectory
    tokens: TokenIssuer
    catalog: Catalog
    hub: MediaHub
    ice_servers: list[IceServer]
    blobs: Blobs
    renderer: PageRenderer
    signer: UrlSigner
    vision: Vision
    upload_limits: Limits = field(default_factory=Limits)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    ice_ttl_s: int = 3600
    turn: TurnConfig = field(default_factory=TurnConfig)
    # "relay" makes browsers use TURN only (networks that must not expose addresses).
    ice_transport_policy: str = "all"
    tick_interval_s: float = 0.25
    heartbeat_interval_s: float = 10.0
    presence_sweep_interval_s: float = 5.0
    # How often live sockets are checked against their accounts (disabled, revoked).
    revocation_check_s: float = 2.0
    # On SIGTERM, how long calls on this node may go on before it closes them.
    drain_timeout_s: float = 60.0
    # Redis for socket.io's cross-node delivery and requests between nodes (None: one
    # node), and this node's name among them.
    redis_url: str | None = None
    redis_prefix: str = "sc"
    # Refuse to start on a shared store that could lose acknowledged writes.
    require_durable_store: bool = True
    node_id: str = "local"
    # What this node advertises (see signaling.candidates), and how long a silent node
    # is given before it is taken for dead (see signaling.nodes).
    media_address: str | None = None
    node_ttl_s: float = 15.0
    # The catalog file, checked for changes this often.
    catalog_path: Path | None = None
    catalog_check_s: float = 2.0
    # Socket events allowed per kiosk or account and minute, over all its sockets (a
    # tenth of it as a burst).
    events_per_minute: float = 600
    # Uploads allowed per kiosk and minute (two thirds of it as a burst).
    uploads_per_minute: float = 30
    # A kiosk token's life; kiosks in its last third get a new one when they connect.
    kiosk_token_ttl_s: float = 180 * 86400
    # /metrics: this bearer token required when set; otherwise loopback callers only.
    metrics_token: str | None = None
    # Networks offers' ICE candidates may point at (None: see media.offer_check).
    ice_allowed_networks: list[Network] | None = None
    metrics: Metrics = field(default_factory=Metrics)
