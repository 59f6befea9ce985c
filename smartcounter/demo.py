"""``serve --demo``: a demo kiosk and one staff account per department (plus a
supervisor). Every demo start gives them fresh secrets (the kiosk's token rotated, the
passwords reset) and prints them; none is kept on disk. A start without ``--demo``
switches them off (staff disabled, the kiosk revoked), so demo accounts never outlive
the demo. Not for production."""

from __future__ import annotations

import secrets
from pathlib import Path

from sessions.accounts import AccountDirectory
from sessions.catalog import Catalog

DEMO_KIOSK = "demo-kiosk"
DEMO_PREFIX = "demo-"
# Where earlier releases kept the demo passwords in plain text.
LEGACY_CREDENTIALS = "demo-credentials.json"


def ensure_demo_accounts(data_dir: Path, accounts: AccountDirectory, catalog: Catalog) -> dict:
    (data_dir / LEGACY_CREDENTIALS).unlink(missing_ok=True)
    if accounts.get_kiosk(DEMO_KIOSK) is None:
        _, kiosk_token = accounts.add_kiosk(DEMO_KIOSK, "Demo site, Kwun Tong")
    else:
        _, kiosk_token = accounts.rotate_kiosk(DEMO_KIOSK)
    wanted = {
        f"{DEMO_PREFIX}{d.id}": ("staff", [d.id], f"{d.name['en']} (demo)")
        for d in catalog.departments
    }
    wanted[f"{DEMO_PREFIX}supervisor"] = (
        "supervisor", [d.id for d in catalog.departments], "Supervisor")
    creds: dict = {"kiosk_token": kiosk_token, "staff": {}}
    for username, (role, departments, display_name) in wanted.items():
        password = secrets.token_urlsafe(12)
        if accounts.get_staff(username) is None:
            accounts.add_staff(username, password, departments, role, display_name)
        else:
            accounts.reset_password(username, password)
            accounts.set_staff_disabled(username, False)
        creds["staff"][username] = password
    return creds


def switch_off_demo_accounts(data_dir: Path, accounts: AccountDirectory) -> list[str]:
    """For a start without ``--demo``: the demo accounts that were switched off."""
    (data_dir / LEGACY_CREDENTIALS).unlink(missing_ok=True)
    off = []
    for username in accounts.staff_usernames():
        account = accounts.get_staff(username)
        if username.startswith(DEMO_PREFIX) and account is not None and not account.disabled:
            accounts.set_staff_disabled(username, True)
            off.append(username)
    kiosk = accounts.get_kiosk(DEMO_KIOSK)
    if kiosk is not None and not kiosk.revoked:
        accounts.revoke_kiosk(DEMO_KIOSK)
        off.append(DEMO_KIOSK)
    return off


def describe(creds: dict, base_url: str) -> str:
    lines = ["", "Smart Counter demo (new secrets at every demo start; none kept on disk)",
             "======================================================================="]
    lines.append(f"Kiosk:   {base_url}/kiosk#token={creds['kiosk_token']}")
    lines.append(f"Console: {base_url}/console")
    lines.append("Accounts (username / password):")
    for username, password in sorted(creds["staff"].items()):
        lines.append(f"  {username:<28} {password}")
    return "\n".join(lines) + "\n"
