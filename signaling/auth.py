"""Bearer tokens for staff and supervisors (signed JWTs) and kiosk device tokens."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from sessions.accounts import AccountDirectory, StaffAccount

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a staff member or supervisor (from a login token) or a kiosk."""

    role: str  # "staff" | "supervisor" | "kiosk"
    id: str
    display_name: str
    departments: tuple[str, ...] = ()
    site: str = ""
    issued_at: float = 0.0  # sign-in tokens only
    token_sha256: str = ""  # kiosks: which token it connected with (rotation cuts it)


class TokenIssuer:
    def __init__(self, secret: bytes, ttl_s: float = 12 * 3600) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, account: StaffAccount) -> tuple[str, float]:
        expires_at = time.time() + self.ttl_s
        claims = {
            "sub": account.username,
            "role": account.role,
            "name": account.display_name,
            "departments": account.departments,
            "exp": int(expires_at),
            "iat": int(time.time()),
            # Millisecond issue time: a password reset revokes tokens issued before it.
            "iat_ms": int(time.time() * 1000),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at

    def verify(self, token: str) -> Principal | None:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "role", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        if claims["role"] not in ("staff", "supervisor"):
            return None
        return Principal(
            role=claims["role"],
            id=claims["sub"],
            display_name=claims.get("name") or claims["sub"],
            departments=tuple(claims.get("departments") or ()),
            issued_at=claims.get("iat_ms", 0) / 1000,
        )


def load_or_create_secret(data_dir: Path) -> bytes:
    """The token signing key: ``SMARTCOUNTER_SECRET_KEY`` if set (all nodes of a
    deployment must share it), otherwise a random key kept in the data dir."""
    env = os.environ.get("SMARTCOUNTER_SECRET_KEY")
    if env:
        return env.encode()
    path = data_dir / "secret.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def current_principal(accounts: AccountDirectory, who: Principal) -> Principal | None:
    """The caller as their account stands now, for HTTP and sockets alike: None when the
    account is gone, disabled or revoked, its role changed, or (a sign-in token) the
    token predates a password reset, a sign-out or a disabling; a staff member's name and
    departments come from the account, not from the token. Blocking (reads the file)."""
    if who.role == "kiosk":
        device = accounts.get_kiosk(who.id)
        if device is None or device.revoked or (
                who.token_sha256 and who.token_sha256 != device.token_sha256):
            return None
        return who
    account = accounts.get_staff(who.id)
    if (account is None or account.disabled or account.role != who.role
            or who.issued_at < account.tokens_valid_after):
        return None
    return Principal(who.role, account.username, account.display_name,
                     tuple(account.departments), issued_at=who.issued_at)
