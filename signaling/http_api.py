"""The HTTP API of docs/protocol.md (``/api/v1``), health endpoints and the web client pages."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from sessions.audit_export import read_trail

from . import openapi
from .cases_api import add_case_routes, public_case
from .documents_api import add_document_routes, public_document
from .http_common import json_error, may_see, require
from .keys import DRAIN, NODE, SERVICES
from .payloads import Login, describe
from .turn import turn_credentials

STATIC_DIR = Path(__file__).resolve().parent.parent / "web_client" / "static"


async def login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error("bad_request", "the body must be JSON")
    try:
        creds = Login.model_validate(body)
    except ValidationError as exc:
        return json_error("bad_request", describe(exc))
    guard = request.app[NODE].login_guard
    address = request.remote or "unknown"
    if not guard.address_allowed(address):
        return json_error("rate_limited", "too many sign-in attempts from here; wait a minute")
    attempt, wait_s = await guard.admit(creds.username, address)
    if wait_s:
        minutes = max(1, round(wait_s / 60))
        response = json_error(
            "rate_limited",
            f"too many sign-in attempts for this account or from here; try again in "
            f"{minutes} minute(s)",
        )
        response.headers["Retry-After"] = str(round(wait_s))
        return response
    account = await asyncio.to_thread(
        services.accounts.authenticate_staff, creds.username, creds.password
    )
    if account is None:
        await guard.failed(creds.username, address, attempt)
        return json_error("unauthorized", "wrong username or password")
    await guard.succeeded(creds.username)
    token, expires_at = services.tokens.issue(account)
    return web.json_response(
        {
            "token": token,
            "role": account.role,
            "departments": account.departments,
            "display_name": account.display_name,
            "expires_at": expires_at,
        }
    )


async def logout(request: web.Request) -> web.Response:
    """Every token of the caller's account stops working (on every node: the account
    file is shared), and their live connections are cut within seconds."""
    who = await require(request, "staff", "supervisor")
    await asyncio.to_thread(request.app[SERVICES].accounts.end_sign_ins, who.id)
    return web.json_response({"ok": True})


async def catalog(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICES].catalog.to_dict())


async def ice_servers(request: web.Request) -> web.Response:
    who = await require(request)
    services = request.app[SERVICES]
    servers = []
    turn = services.turn
    if turn.enabled:
        assert turn.secret is not None, "TURN is enabled only with a shared secret"
        username, credential = turn_credentials(
            turn.secret, f"{who.role}-{who.id}", turn.ttl_s, time.time()
        )
        servers.append({"urls": turn.urls, "username": username, "credential": credential})
    for s in services.ice_servers:
        entry: dict[str, Any] = {"urls": s.urls}
        if s.username is not None:
            entry["username"] = s.username
        if s.credential is not None:
            entry["credential"] = s.credential
        servers.append(entry)
    ttl_s = turn.ttl_s if turn.enabled else services.ice_ttl_s
    return web.json_response({
        "ice_servers": servers,
        "ttl_s": ttl_s,
        "ice_transport_policy": services.ice_transport_policy,
    })


async def get_session(request: web.Request) -> web.Response:
    """The session record for its staff and supervisors; for its own kiosk (a page
    reloaded mid-call) only what the citizen has seen: state, documents, receipt."""
    principal = await require(request, "staff", "supervisor", "kiosk")
    services = request.app[SERVICES]
    session = await services.store.get_session(request.match_info["sid"])
    if session is None:
        return json_error("not_found", "no such session")
    if not may_see(principal, session):
        return json_error("forbidden", f"this session belongs to another "
                          f"{'kiosk' if principal.role == 'kiosk' else 'department'}")
    documents = await services.store.session_documents(session.id)
    cases = await services.store.session_cases(session.id)
    if principal.role == "kiosk":
        return web.json_response({
            "session_id": session.id,
            "state": session.state,
            "documents": [public_document(d) for d in documents],
            "case": ({"receipt_no": cases[0].receipt_no, "state": cases[0].state}
                     if cases else None),
        })
    record = session.public()
    record["documents"] = [public_document(d) for d in documents]
    record["verification"] = await services.store.get_verification(session.id)
    record["case"] = public_case(cases[0]) if cases else None
    return web.json_response(record)


async def list_calls(request: web.Request) -> web.Response:
    """Live sessions (queued, ringing, connected), oldest first: what a supervisor can
    watch."""
    who = await require(request, "supervisor")
    sessions = [s for s in await request.app[SERVICES].store.live_sessions()
                if may_see(who, s)]
    sessions.sort(key=lambda s: s.created_at)
    return web.json_response({"calls": [s.public() for s in sessions]})


async def list_recordings(request: web.Request) -> web.Response:
    who = await require(request, "supervisor")
    services = request.app[SERVICES]
    sid = request.match_info["sid"]
    if (problem := await _supervised(request, who, sid)) is not None:
        return problem
    recordings = []
    stored = services.hub.recordings
    for path in stored.files(sid) if stored else []:
        direction, _, part = path.stem.partition("-")
        recordings.append(
            {
                "name": path.name,
                "direction": direction,
                "part": int(part) if part.isdigit() else 1,
                "bytes": path.stat().st_size,
                "url": f"/api/v1/sessions/{sid}/recordings/{path.name}",
            }
        )
    return web.json_response({"session_id": sid, "recordings": recordings})


async def get_audit(request: web.Request) -> web.Response:
    """docs/protocol.md: the session's audit trail, and whether it verifies (its chain, and its
    end against the anchor ledger: a trail cut short or deleted is a break too)."""
    who = await require(request, "supervisor")
    services = request.app[SERVICES]
    sid = request.match_info["sid"]
    if (problem := await _supervised(request, who, sid)) is not None:
        return problem
    events, broken = await asyncio.to_thread(read_trail, services.audit, sid)
    return web.json_response({"session_id": sid, "events": events,
                              "verified": broken is None and bool(events), "break": broken})


async def get_recording(request: web.Request) -> web.StreamResponse:
    who = await require(request, "supervisor")
    stored = request.app[SERVICES].hub.recordings
    sid, name = request.match_info["sid"], request.match_info["name"]
    if (problem := await _supervised(request, who, sid)) is not None:
        return problem
    for path in stored.files(sid) if stored else []:
        if path.name == name:
            kind = "video/webm" if path.suffix == ".webm" else "video/mp2t"
            return web.FileResponse(path, headers={"Content-Type": kind})
    return json_error("not_found", "no such recording")


async def _supervised(request: web.Request, who, sid: str) -> web.Response | None:
    """The answer refusing a supervisor this session (none: or another department's)."""
    session = await request.app[SERVICES].store.get_session(sid)
    if session is None:
        return json_error("not_found", "no such session")
    if not may_see(who, session):
        return json_error("forbidden", "this session belongs to another department")
    return None


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks = {"store": "ok", "models": "ok", "node": "ok"}
    if request.app[DRAIN].draining:
        checks["node"] = "shutting down: calls in progress are ending here"
    try:
        await asyncio.wait_for(services.store.ping(), timeout=2)
    except Exception as exc:
        checks["store"] = f"unreachable: {exc}"
    if services.vision.problem is not None:
        checks["models"] = services.vision.problem
    ready = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "unready", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """For Prometheus: with ``SMARTCOUNTER_METRICS_TOKEN`` set, only with that bearer
    token; without it, only from this machine (a scraper beside the node)."""
    services = request.app[SERVICES]
    if services.metrics_token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), services.metrics_token.encode()):
            return json_error("unauthorized", "the metrics token is required")
    elif not _loopback(request.remote):
        return json_error("forbidden", "metrics are served to this machine only (or set "
                          "SMARTCOUNTER_METRICS_TOKEN)")
    body = generate_latest(services.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def page(name: str):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / name)

    return handler


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console")


async def favicon(request: web.Request) -> web.Response:
    raise web.HTTPFound("/static/favicon.svg")


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_document)
    add_document_routes(app)
    add_case_routes(app)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/catalog", catalog)
    app.router.add_get("/api/v1/ice-servers", ice_servers)
    app.router.add_get("/api/v1/calls", list_calls)
    app.router.add_get("/api/v1/sessions/{sid}", get_session)
    app.router.add_get("/api/v1/sessions/{sid}/recordings", list_recordings)
    app.router.add_get("/api/v1/sessions/{sid}/audit", get_audit)
    app.router.add_get("/api/v1/sessions/{sid}/recordings/{name}", get_recording)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/kiosk", page("kiosk/kiosk.html"))
    app.router.add_get("/console", page("console/console.html"))
    app.router.add_get("/supervisor", page("supervisor/supervisor.html"))
    app.router.add_get("/print", page("print/print.html"))
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
