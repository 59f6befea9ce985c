"""Wiring: builds every component from the settings and returns the aiohttp app."""

from __future__ import annotations

import logging

from aiohttp import web

from document_share.intake import Limits
from document_share.pages import PageRenderer
from document_share.sandbox import RenderSandbox
from document_share.storage import BlobStore
from media.peer import MediaHub
from media.recorder import RecordingDirectory
from media.vision.analyzer import FaceAnalyzer, VisionPool
from media.vision.models import ModelError, prepare
from sessions.accounts import AccountDirectory
from sessions.audit import AuditLog
from sessions.catalog import Catalog, ensure_catalog_file
from sessions.factory import create_store
from sessions.router import CallRouter
from signaling.app import create_app
from signaling.auth import TokenIssuer, load_or_create_secret
from signaling.services import Services, Vision
from signaling.signed_urls import UrlSigner

from .config import Settings

logger = logging.getLogger(__name__)


def load_vision(settings: Settings) -> Vision:
    """The face models, converted first if missing (unless turned off). A problem is
    logged with its fix and reported by /readyz; calls work without verification."""
    pool = VisionPool(settings.vision_workers)
    models_dir = settings.resolved_models_dir
    try:
        if settings.models_auto_prepare:
            prepare(models_dir)
        analyzer = FaceAnalyzer.load(
            models_dir, settings.antispoof_model, settings.inference_threads
        )
    except ModelError as exc:
        logger.error("identity verification is unavailable: %s", exc)
        return Vision(pool, None, str(exc), settings.verification)
    logger.info(
        "face models ready: %s", ", ".join(f"{m.name} {m.sha256[:12]}" for m in analyzer.models)
    )
    return Vision(pool, analyzer, None, settings.verification)


def build_app(settings: Settings) -> web.Application:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.load(ensure_catalog_file(settings.catalog_path))
    store = create_store(settings.store_kind, path=settings.store_path,
                         redis_url=settings.redis_url, prefix=settings.redis_prefix)
    secret = load_or_create_secret(settings.data_dir)
    audit = AuditLog(settings.audit_dir)
    services = Services(
        store=store,
        audit=audit,
        accounts=AccountDirectory(settings.data_dir),
        tokens=TokenIssuer(secret, settings.token_ttl_s),
        catalog=catalog,
        catalog_path=settings.catalog_path,
        hub=MediaHub(
            settings.ice_servers,
            settings.media_relay,
            RecordingDirectory(settings.recordings_dir) if settings.recording else None,
        ),
        ice_servers=settings.ice_servers,
        turn=settings.turn,
        ice_transport_policy=settings.ice_transport_policy,
        dashboard=settings.dashboard,
        login_policy=settings.login,
        events_per_minute=settings.events_per_minute,
        uploads_per_minute=settings.uploads_per_minute,
        metrics_token=settings.metrics_token,
        kiosk_token_ttl_s=settings.kiosk_token_ttl_s,
        ice_allowed_networks=settings.ice_allowed_networks,
        drain_timeout_s=settings.drain_timeout_s,
        redis_url=settings.redis_url,
        require_durable_store=settings.redis_durability == "require",
        redis_prefix=settings.redis_prefix,
        node_id=settings.node_id,
        media_address=settings.media_address,
        node_ttl_s=settings.node_ttl_s,
        blobs=BlobStore(settings.documents_dir),
        renderer=PageRenderer(settings.documents_dir / "pages", settings.max_upload_pixels,
                              RenderSandbox(settings.render)),
        signer=UrlSigner(secret),
        vision=load_vision(settings),
        upload_limits=Limits(
            settings.max_upload_bytes, settings.max_upload_pixels, settings.max_pdf_pages
        ),
        tick_interval_s=settings.tick_interval_s,
        heartbeat_interval_s=settings.heartbeat_interval_s,
    )

    def make_router(notifier) -> CallRouter:
        return CallRouter(store, catalog, audit, notifier, settings.routing)

    return create_app(services, make_router)
