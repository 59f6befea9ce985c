"""``serve --demo``: a demo kiosk and one staff account per department (plus a
supervisor), created once; their secrets are kept in ``DATA_DIR/demo-credentials.json``
(mode 0600) so every start can print them. Not for production."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sessions.accounts import AccountDirectory
from sessions.catalog import Catalog

DEMO_KIOSK = "demo-kiosk"


def ensure_demo_accounts(data_dir: Path, accounts: AccountDirectory, catalog: Catalog) -> dict:
    path = data_dir / "demo-credentials.json"
    creds: dict = json.loads(path.read_text()) if path.exists() else {"staff": {}}
    if accounts.get_kiosk(DEMO_KIOSK) is None or "kiosk_token" not in creds:
        if accounts.get_kiosk(DEMO_KIOSK) is None:
            _, creds["kiosk_token"] = accounts.add_kiosk(DEMO_KIOSK, "Demo site, Kwun Tong")
    wanted = {
        f"demo-{d.id}": ("staff", [d.id], f"{d.name['en']} (demo)") for d in catalog.departments
    }
    wanted["demo-supervisor"] = ("supervisor", [d.id for d in catalog.departments], "Supervisor")
    for username, (role, departments, display_name) in wanted.items():
        if accounts.get_staff(username) is None:
            password = secrets.token_urlsafe(9)
            accounts.add_staff(username, password, departments, role, display_name)
            creds["staff"][username] = password
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    return creds


def describe(creds: dict, base_url: str) -> str:
    lines = ["", "Smart Counter demo", "=================="]
    if creds.get("kiosk_token"):
        lines.append(f"Kiosk:   {base_url}/kiosk#token={creds['kiosk_token']}")
    else:
        lines.append(f"Kiosk:   {DEMO_KIOSK} exists but its token was not kept; add another kiosk")
    lines.append(f"Console: {base_url}/console")
    lines.append("Accounts (username / password):")
    for username, password in sorted(creds["staff"].items()):
        lines.append(f"  {username:<28} {password}")
    return "\n".join(lines) + "\n"
