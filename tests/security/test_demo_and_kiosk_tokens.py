"""Finding 6: demo accounts (a supervisor of every department) outlived ``--demo``, with
their passwords in plain text on disk. Finding 12 (part): a kiosk's token could not be
rotated. Now a start without ``--demo`` switches demo accounts off, no demo secret is
kept, and ``smartcounter kiosk rotate`` replaces a token, cutting what used the old."""

from __future__ import annotations

import asyncio
import time

from sessions.accounts import AccountDirectory
from sessions.catalog import Catalog
from smartcounter.demo import DEMO_KIOSK, ensure_demo_accounts
from tests.harness import Client, ServeProcess, run_cli, running_server


def files_hold(data_dir, secret: str) -> list[str]:
    return [str(p) for p in data_dir.rglob("*") if p.is_file()
            and secret.encode() in p.read_bytes()]


async def test_demo_accounts_live_only_with_demo_and_leave_no_secret_on_disk(tmp_path):
    data_dir = tmp_path / "data"
    accounts = AccountDirectory(data_dir)
    creds = ensure_demo_accounts(data_dir, accounts, Catalog.default())
    password = creds["staff"]["demo-supervisor"]
    assert accounts.authenticate_staff("demo-supervisor", password) is not None
    assert accounts.authenticate_kiosk(creds["kiosk_token"]) is not None
    secret = creds["kiosk_token"].rpartition(".")[2]
    assert files_hold(data_dir, password) == [] and files_hold(data_dir, secret) == []

    server = ServeProcess(data_dir, tmp_path / "server.log")  # no --demo
    try:
        await server.start()
    finally:
        await server.stop()
    assert "demo accounts switched off" in server.log()
    assert accounts.authenticate_staff("demo-supervisor", password) is None
    assert accounts.authenticate_kiosk(creds["kiosk_token"]) is None
    assert accounts.get_kiosk(DEMO_KIOSK).revoked

    again = ensure_demo_accounts(data_dir, accounts, Catalog.default())  # --demo again
    assert again["staff"]["demo-supervisor"] != password  # fresh secrets each time
    assert accounts.authenticate_staff("demo-supervisor", again["staff"]["demo-supervisor"])
    assert accounts.authenticate_kiosk(again["kiosk_token"]) is not None


async def test_a_rotated_kiosk_token_stops_working_and_its_socket_is_cut(tmp_path):
    async with running_server(tmp_path) as server:
        old = server.kiosk_tokens["k1"]
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, old)
        done = await asyncio.to_thread(run_cli, tmp_path, "kiosk", "rotate", "k1")
        assert done.returncode == 0, done.stderr
        new = done.stdout.strip().splitlines()[-1]
        accounts = AccountDirectory(tmp_path)
        assert accounts.authenticate_kiosk(old) is None
        assert accounts.authenticate_kiosk(new).kiosk_id == "k1"
        async with asyncio.timeout(10):  # the revocation check runs every 2 s
            while kiosk.sio.connected:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        fresh = Client("/kiosk")
        await fresh.connect(server.url, new)
        await fresh.close()


async def test_a_kiosk_token_expires_and_is_renewed_in_its_last_third(tmp_path):
    accounts = AccountDirectory(tmp_path)
    _, expired = accounts.add_kiosk("old", "Site", ttl_s=0.01)
    _, ageing = accounts.add_kiosk("ageing", "Site", ttl_s=100)

    def configure(settings):
        settings.kiosk_token_ttl_s = 400  # so 100 s left is in the last third

    async with running_server(tmp_path, configure=configure) as server:
        await asyncio.sleep(0.05)
        assert accounts.authenticate_kiosk(expired) is None
        refused = Client("/kiosk")
        try:
            await refused.connect(server.url, expired)
        except Exception:
            pass
        assert not refused.sio.connected
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, ageing)
        try:
            renewed = (await kiosk.wait_for("kiosk.token"))["token"]
            assert accounts.authenticate_kiosk(ageing) is None
            device = accounts.authenticate_kiosk(renewed)
            assert device.kiosk_id == "ageing" and device.remaining_s(time.time()) > 390
            await asyncio.sleep(2.5)  # a revocation check has run: this socket stays
            assert kiosk.sio.connected
            assert (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["ok"]
        finally:
            await kiosk.close()
