"""Wiring: builds every component from the settings and returns the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from media.peer import MediaHub
from sessions.accounts import AccountDirectory
from sessions.audit import AuditLog
from sessions.catalog import Catalog, ensure_catalog_file
from sessions.factory import create_store
from sessions.router import CallRouter
from signaling.app import Services, create_app
from signaling.auth import TokenIssuer, load_or_create_secret

from .config import Settings


def build_app(settings: Settings) -> web.Application:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.load(ensure_catalog_file(settings.catalog_path))
    store = create_store(settings.redis_url, settings.redis_prefix)
    services = Services(
        store=store,
        accounts=AccountDirectory(settings.data_dir),
        tokens=TokenIssuer(load_or_create_secret(settings.data_dir), settings.token_ttl_s),
        catalog=catalog,
        hub=MediaHub(
            settings.ice_servers,
            settings.media_relay,
            settings.recordings_dir if settings.recording else None,
        ),
        ice_servers=settings.ice_servers,
        tick_interval_s=settings.tick_interval_s,
        heartbeat_interval_s=settings.heartbeat_interval_s,
    )
    audit = AuditLog(settings.audit_dir)

    def make_router(notifier) -> CallRouter:
        return CallRouter(store, catalog, audit, notifier, settings.routing)

    return create_app(services, make_router)
