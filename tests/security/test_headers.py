"""Finding 12: ``Server: Python/3.11 aiohttp/…`` told attackers the versions, there was
no HSTS with TLS on, and ``/metrics`` was open on the public port."""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import aiohttp

from tests.harness import ServeProcess, running_server


async def test_no_versions_are_disclosed_and_metrics_need_their_token(tmp_path):
    token = "metrics-secret-1"

    def configure(settings):
        settings.metrics_token = token

    async with running_server(tmp_path, configure=configure) as server:
        async with aiohttp.ClientSession() as http:
            for path in ("/healthz", "/api/v1/nope", "/kiosk"):
                async with http.get(server.url + path) as resp:
                    assert resp.headers["Server"] == "smartcounter", path
                    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP
            async with http.get(f"{server.url}/metrics") as resp:
                assert resp.status == 401
            async with http.get(f"{server.url}/metrics",
                                headers={"Authorization": "Bearer wrong"}) as resp:
                assert resp.status == 401
            async with http.get(f"{server.url}/metrics",
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                assert "smartcounter_event_loop_lag_seconds" in await resp.text()


async def test_hsts_over_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert await made.wait() == 0
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log",
                          SMARTCOUNTER_TLS_CERT=str(cert), SMARTCOUNTER_TLS_KEY=str(key))
    server.url = server.url.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        await server.start(ssl=context)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/healthz", ssl=context) as resp:
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                assert resp.headers["Server"] == "smartcounter"
    finally:
        await server.stop()
