"""What every HTTP handler needs: the caller from the bearer token, and error bodies."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .auth import Principal, account_allows
from .errors import HTTP_STATUS
from .keys import SERVICES


def json_error(code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=HTTP_STATUS[code]
    )


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
        allowed = await asyncio.to_thread(account_allows, services.accounts, principal)
        return principal if allowed else None
    device = await asyncio.to_thread(services.accounts.authenticate_kiosk, token)
    if device is None:
        return None
    return Principal("kiosk", device.kiosk_id, device.kiosk_id, site=device.site)
