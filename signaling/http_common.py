"""What every HTTP handler needs: the caller from the bearer token, and error bodies."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from sessions.log_context import bind_session
from sessions.session import Session

from .auth import Principal, current_principal
from .errors import HTTP_STATUS
from .keys import SERVICES

logger = logging.getLogger(__name__)


def json_error(code: str, message: str, status: int | None = None) -> web.Response:
    """The one error body of the HTTP API: a docs/protocol.md code and a message, with the
    code's status unless another fits better (410 for a purged file, 413, 415, 422)."""
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status or HTTP_STATUS[code]
    )


class ApiError(Exception):
    """Raised by a handler (or what it calls) to answer with :func:`json_error`."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> web.Response:
        return json_error(self.code, self.message, self.status)


async def authenticate(request: web.Request) -> Principal | None:
    """The caller of an API request from its bearer token: a staff/supervisor login
    token or a kiosk device token."""
    services = request.app[SERVICES]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    principal = services.tokens.verify(token)
    if principal is not None:
        return await asyncio.to_thread(current_principal, services.accounts, principal)
    device = await asyncio.to_thread(services.accounts.authenticate_kiosk, token)
    if device is None:
        return None
    return Principal("kiosk", device.kiosk_id, device.kiosk_id, site=device.site,
                          token_sha256=device.token_sha256)


@web.middleware
async def api_errors_as_json(request: web.Request, handler) -> web.StreamResponse:
    """Under ``/api/`` every answer is JSON, aiohttp's own too (no such route, wrong
    method, a body too large)."""
    bind_session(request.match_info.get("sid"))
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_request",
                413: "bad_request", 429: "rate_limited"}.get(
            exc.status, "internal" if exc.status >= 500 else "bad_request")
        message = exc.reason if exc.status != 404 else "no such resource"
        response = json_error(code, message, exc.status)
        if "Allow" in exc.headers:  # 405
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (RecursionError, BadHttpMessage) as exc:  # JSON nested 100,000 deep; a NUL
        if not request.path.startswith("/api/"):  # in a multipart header
            raise
        what = "nested too deeply" if isinstance(exc, RecursionError) else "malformed"
        return json_error("bad_request", f"the request body is {what}")
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        logger.exception("%s %s failed", request.method, request.path)
        return json_error("internal", "something went wrong on the server; it was logged")


def may_see(who: Principal, session: Session) -> bool:
    """Whether the caller may see the session: its own kiosk, or staff and supervisors of
    its department (a supervisor's scope is their departments too)."""
    if who.role == "kiosk":
        return session.kiosk_id == who.id
    return who.role in ("staff", "supervisor") and session.department_id in who.departments


async def require(request: web.Request, *roles: str) -> Principal:
    """The authenticated caller if their role is one of ``roles`` (any role when none
    are given); else :class:`ApiError` (401 / 403)."""
    who = await authenticate(request)
    if who is None:
        raise ApiError("unauthorized", "a valid bearer token is required")
    if roles and who.role not in roles:
        raise ApiError("forbidden", f"only {' and '.join(r + 's' for r in roles)} may do this")
    return who


async def signed_or_required(request: web.Request) -> Principal | None:
    """For files a browser may load by ``<img>``: ``None`` when this very URL carries a
    valid signature, else the authenticated caller, else :class:`ApiError` (401)."""
    services = request.app[SERVICES]
    if "sig" in request.query and services.signer.verify(request.path, dict(request.query)):
        return None
    who = await authenticate(request)
    if who is None:
        raise ApiError("unauthorized", "a valid bearer token or signed URL is required")
    return who
