"""Staff accounts and kiosk devices, durable under the data dir (one JSON file each,
written atomically), read on every lookup so the running server sees CLI additions.

Passwords are stored as argon2id hashes. Kiosk tokens are 256-bit random secrets, so a
sha256 of the secret is enough to store them (no KDF needed against guessing), and the
token names its kiosk (``KIOSK_ID.SECRET``) so a lookup reads one file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import BadRequest, Conflict, NotFound
from .files import write_atomic

ROLES = ("staff", "supervisor")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_hasher = PasswordHasher()
# Verified against when the username is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass
class StaffAccount:
    username: str
    display_name: str
    departments: list[str]
    role: str
    password_hash: str = field(repr=False)
    disabled: bool = False
    created_at: float = 0.0
    # Sign-in tokens issued before this time (a password reset) are no longer accepted.
    tokens_valid_after: float = 0.0


@dataclass
class KioskDevice:
    kiosk_id: str
    site: str
    token_sha256: str = field(repr=False)
    revoked: bool = False
    created_at: float = 0.0
    # When the token stops working (None: never, as kiosks registered before expiry).
    expires_at: float | None = None

    def remaining_s(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise BadRequest(
            f"{what} {value!r} is invalid: use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return value


class AccountDirectory:
    def __init__(self, data_dir: Path) -> None:
        self._staff_dir = data_dir / "accounts" / "staff"
        self._kiosk_dir = data_dir / "accounts" / "kiosks"
        for d in (self._staff_dir, self._kiosk_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- staff ---------------------------------------------------------------------------
    def add_staff(
        self,
        username: str,
        password: str,
        departments: list[str],
        role: str = "staff",
        display_name: str | None = None,
    ) -> StaffAccount:
        check_id(username, "username")
        if role not in ROLES:
            raise BadRequest(f"role must be one of {ROLES}, not {role!r}")
        if len(password) < 8:
            raise BadRequest("password must be at least 8 characters")
        if role == "staff" and not departments:
            raise BadRequest("a staff member needs at least one department")
        path = self._staff_dir / f"{username}.json"
        if path.exists():
            raise Conflict(f"staff account {username!r} already exists")
        account = StaffAccount(
            username=username,
            display_name=display_name or username,
            departments=sorted(set(departments)),
            role=role,
            password_hash=_hasher.hash(password),
            created_at=time.time(),
        )
        _write_json_atomic(path, asdict(account))
        return account

    def get_staff(self, username: str) -> StaffAccount | None:
        if not _ID.match(username):
            return None
        raw = _read_json(self._staff_dir / f"{username}.json")
        return StaffAccount(**raw) if raw is not None else None

    def _update_staff(self, username: str, **changes) -> StaffAccount:
        account = self.get_staff(username)
        if account is None:
            raise NotFound(f"no staff account {username!r}")
        updated = StaffAccount(**{**asdict(account), **changes})
        _write_json_atomic(self._staff_dir / f"{username}.json", asdict(updated))
        return updated

    def staff_usernames(self) -> list[str]:
        return sorted(p.stem for p in self._staff_dir.glob("*.json"))

    def set_staff_disabled(self, username: str, disabled: bool) -> StaffAccount:
        """A disabled account cannot sign in, and its live connections are cut; its
        sign-ins end for good (enabling it again does not revive them)."""
        if disabled:
            return self._update_staff(username, disabled=True, tokens_valid_after=time.time())
        return self._update_staff(username, disabled=False)

    def end_sign_ins(self, username: str) -> StaffAccount:
        """Sign out: every token issued to the account before now stops working."""
        return self._update_staff(username, tokens_valid_after=time.time())

    def set_departments(self, username: str, departments: list[str]) -> StaffAccount:
        """Move a staff member; their live connections reconnect with the new ones."""
        if not departments:
            raise BadRequest("a staff member needs at least one department")
        return self._update_staff(username, departments=list(departments))

    def reset_password(self, username: str, password: str) -> StaffAccount:
        """New password; every token issued before now stops working."""
        if len(password) < 8:
            raise BadRequest("password must be at least 8 characters")
        return self._update_staff(
            username, password_hash=_hasher.hash(password), tokens_valid_after=time.time()
        )

    def authenticate_staff(self, username: str, password: str) -> StaffAccount | None:
        """CPU-heavy (argon2): call from a worker thread."""
        account = self.get_staff(username)
        try:
            _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None or account.disabled:
            return None
        return account

    # -- kiosks --------------------------------------------------------------------------
    def add_kiosk(self, kiosk_id: str, site: str,
                  ttl_s: float | None = None) -> tuple[KioskDevice, str]:
        """Register a kiosk; returns it and its token (shown once, stored only hashed),
        valid ``ttl_s`` (None: without end)."""
        check_id(kiosk_id, "kiosk id")
        if not site.strip():
            raise BadRequest("site must not be empty")
        path = self._kiosk_dir / f"{kiosk_id}.json"
        if path.exists():
            raise Conflict(f"kiosk {kiosk_id!r} already exists")
        secret = secrets.token_urlsafe(32)
        device = KioskDevice(
            kiosk_id=kiosk_id,
            site=site.strip(),
            token_sha256=hashlib.sha256(secret.encode()).hexdigest(),
            created_at=time.time(),
            expires_at=time.time() + ttl_s if ttl_s else None,
        )
        _write_json_atomic(path, asdict(device))
        return device, f"{kiosk_id}.{secret}"

    def get_kiosk(self, kiosk_id: str) -> KioskDevice | None:
        if not _ID.match(kiosk_id):
            return None
        raw = _read_json(self._kiosk_dir / f"{kiosk_id}.json")
        return KioskDevice(**raw) if raw is not None else None

    def revoke_kiosk(self, kiosk_id: str) -> KioskDevice:
        """The kiosk's token stops working at once (its live connection is cut)."""
        device = self.get_kiosk(kiosk_id)
        if device is None:
            raise NotFound(f"no kiosk {kiosk_id!r}")
        device = KioskDevice(**{**asdict(device), "revoked": True})
        _write_json_atomic(self._kiosk_dir / f"{kiosk_id}.json", asdict(device))
        return device

    def rotate_kiosk(self, kiosk_id: str,
                     ttl_s: float | None = None) -> tuple[KioskDevice, str]:
        """A new token for the kiosk, valid ``ttl_s``: the device and the token (shown
        once); the old one stops working at once, and a revoked kiosk is reinstated."""
        device = self.get_kiosk(kiosk_id)
        if device is None:
            raise NotFound(f"no kiosk {kiosk_id!r}")
        secret = secrets.token_urlsafe(32)
        device = KioskDevice(**{**asdict(device), "revoked": False,
                                "token_sha256": hashlib.sha256(secret.encode()).hexdigest(),
                                "expires_at": time.time() + ttl_s if ttl_s else None})
        _write_json_atomic(self._kiosk_dir / f"{kiosk_id}.json", asdict(device))
        return device, f"{kiosk_id}.{secret}"

    def authenticate_kiosk(self, token: str) -> KioskDevice | None:
        kiosk_id, _, secret = token.rpartition(".")
        if not kiosk_id or not secret:
            return None
        device = self.get_kiosk(kiosk_id)
        if device is None or device.revoked or (
                device.expires_at is not None and device.expires_at <= time.time()):
            return None
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return device if hmac.compare_digest(digest, device.token_sha256) else None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _write_json_atomic(path: Path, payload: dict) -> None:
    write_atomic(path, json.dumps(payload, ensure_ascii=False, indent=2).encode(), mode=0o600)
