"""Short-lived signed URLs, for what a browser loads without headers (``<img src>``):
the path and an expiry time, signed with HMAC-SHA256 under a key derived from the
server's secret (so every node of a deployment accepts every node's URLs)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class UrlSigner:
    def __init__(self, secret: bytes, ttl_s: float = 600, clock=time.time) -> None:
        self._key = hmac.new(secret, b"smartcounter signed urls", hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self._clock = clock

    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, path: str, **params: int | str) -> str:
        """``path`` with its query: ``params``, ``exp`` and ``sig`` (the signature covers
        the path and every parameter)."""
        expires = int(self._clock() + self.ttl_s)
        query = urlencode(sorted({**params, "exp": expires}.items()))
        return f"{path}?{query}&sig={self._signature(f'{path}?{query}', expires)}"

    def verify(self, path: str, query: dict[str, str]) -> bool:
        params = {k: v for k, v in query.items() if k != "sig"}
        try:
            expires = int(params.get("exp", ""))
        except ValueError:
            return False
        if expires < self._clock():
            return False
        signed = f"{path}?{urlencode(sorted(params.items()))}"
        return hmac.compare_digest(self._signature(signed, expires), query.get("sig", ""))


def signed_url(signer: UrlSigner, kind: str, item_id: str) -> str:
    """The signed URL of a stored file the case desk hands out: ``document`` (the
    original), ``page`` (a page image) or ``signature`` (its image)."""
    if kind == "document":
        return signer.sign(f"/api/v1/documents/{item_id}")
    if kind == "signature":
        return signer.sign(f"/api/v1/signatures/{item_id}.png")
    if kind == "page":  # item_id: "DOCUMENT_ID/PAGE", printed at 1600 px
        document_id, page = item_id.rsplit("/", 1)
        return signer.sign(f"/api/v1/documents/{document_id}/pages/{page}.png", w=1600)
    raise ValueError(f"no signed URL for {kind}")
