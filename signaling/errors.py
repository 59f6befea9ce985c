"""docs/protocol.md error codes and the ack / HTTP shapes that carry them."""

from __future__ import annotations

from typing import Any

CODES = (
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "unavailable",
    "internal",
)

HTTP_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


def error_ack(code: str, message: str) -> dict[str, Any]:
    assert code in CODES, code
    return {"ok": False, "error": {"code": code, "message": message}}
