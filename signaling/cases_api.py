"""Cases and printing over HTTP: the staff's list of applications awaiting a decision,
a signature's image, and the Citizen's Window lookup by receipt number."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from sessions.errors import DomainError
from sessions.records import Case, CaseState, Signature

from .http_common import json_error, may_see, require, signed_or_required
from .keys import NODE, SERVICES
from .payloads import PrintLookup, describe
from .rate_limit import RateLimiter

LOOKUP_LIMIT: web.AppKey[RateLimiter] = web.AppKey("print_lookup_limit")


def public_case(case: Case) -> dict[str, Any]:
    record = case.to_dict()
    return {
        key: record[key]
        for key in ("receipt_no", "session_id", "department_id", "service_id", "kiosk_id",
                    "staff_id", "state", "submitted_at", "documents", "decision",
                    "result_document_ids")
    }


async def list_cases(request: web.Request) -> web.Response:
    who = await require(request, "staff", "supervisor")
    state = request.query.get("state", "submitted")
    if state not in set(CaseState):
        return json_error("bad_request", f"state must be one of {', '.join(CaseState)}")
    cases = [c for c in await request.app[SERVICES].store.cases(state)
             if c.department_id in who.departments]
    return web.json_response({"cases": [public_case(c) for c in cases]})


async def get_case(request: web.Request) -> web.Response:
    who = await require(request, "staff", "supervisor")
    try:
        case = await request.app[NODE].desk.case_for(
            request.match_info["receipt_no"], who.departments
        )
    except DomainError as exc:
        return json_error(exc.code, str(exc))
    return web.json_response(public_case(case))


async def get_signature_image(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    who = await signed_or_required(request)
    raw = await services.store.get_record("signature", request.match_info["signature_id"])
    signature = Signature.from_dict(raw) if raw is not None else None
    if signature is None or not signature.png_sha256:
        return json_error("not_found", "no such signature image")
    session = await services.store.get_session(signature.session_id)
    if who is not None and (session is None or not may_see(who, session)):
        return json_error("forbidden", "this signature belongs to another session")
    return web.FileResponse(
        services.blobs.path_of(signature.png_sha256),
        headers={"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, no-store"},
    )


async def print_lookup(request: web.Request) -> web.Response:
    """Anyone at a Citizen's Window may look up a receipt number: limited per address,
    so that numbers cannot be guessed (they carry 50 random bits as well)."""
    if not request.app[LOOKUP_LIMIT].allow(request.remote or "unknown"):
        return json_error("rate_limited", "too many lookups; wait a minute and try again")
    try:
        body = PrintLookup.model_validate(await request.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error("bad_request", "the body must be JSON")
    except ValidationError as exc:
        return json_error("bad_request", describe(exc))
    try:
        answer = await request.app[NODE].desk.lookup(body.receipt_no)
    except DomainError as exc:
        return json_error(exc.code, str(exc))
    return web.json_response(answer)


def add_case_routes(app: web.Application, lookups_per_minute: float = 10) -> None:
    app[LOOKUP_LIMIT] = RateLimiter(lookups_per_minute, burst=5)
    app.router.add_get("/api/v1/cases", list_cases)
    app.router.add_get("/api/v1/cases/{receipt_no}", get_case)
    app.router.add_get("/api/v1/signatures/{signature_id}.png", get_signature_image)
    app.router.add_post("/api/v1/print/lookup", print_lookup)
