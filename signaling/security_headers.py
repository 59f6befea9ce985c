"""Security headers on every response: pages may run only the server's own scripts and
styles (no inline code), load media and images from the server (and ``data:``/``blob:``
URLs the pages make), connect only back to the server, and be framed only by its own
pages; nothing is sniffed and no referrer leaves."""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# Sent over HTTPS only: browsers then refuse plain HTTP to this host for a year.
HSTS = "max-age=31536000; includeSubDomains"


async def identify(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no software versions in ``Server``; HSTS over TLS."""
    response.headers["Server"] = "smartcounter"
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def security_headers(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and errors carry them too
        for name, value in HEADERS.items():
            exc.headers.setdefault(name, value)
        raise
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
