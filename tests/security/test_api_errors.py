"""Finding 10: plain-text 500s under ``/api/`` for a multipart filename with a NUL and for
JSON nested 100,000 deep. Every answer under ``/api/`` is JSON, with the right code."""

from __future__ import annotations

import aiohttp

from tests.harness import Client, running_server


async def test_hostile_bodies_get_json_errors(tmp_path):
    async with running_server(tmp_path) as server:
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        try:
            sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        finally:
            await kiosk.close()
        token = server.kiosk_tokens["k1"]
        boundary = "xyz"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nform\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"a\x00b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n"
                f"--{boundary}--\r\n").encode()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.url}/api/v1/sessions/{sid}/documents", data=body,
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": f"multipart/form-data; boundary={boundary}"},
            ) as resp:
                assert resp.content_type == "application/json", await resp.text()
                assert 400 <= resp.status < 500
                assert (await resp.json())["error"]["code"] == "bad_request"
            deep = "[" * 100_000 + "]" * 100_000
            async with http.post(f"{server.url}/api/v1/auth/login", data=deep,
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.content_type == "application/json", await resp.text()
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "bad_request"
