"""Finding 9: ``case.decide`` took the citizen's ID card as a result document, and an
anonymous receipt-number lookup then handed out a signed URL to it. Results are the
application form or what the desk made; the refusal changes nothing."""

from __future__ import annotations

import contextlib

import aiohttp

from tests.harness import running_server
from tests.helpers import ASSETS, open_call


async def test_an_id_card_or_evidence_cannot_become_a_printable_result(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        _kiosk, staff, sid = await open_call(server, stack)
        documents = {}
        async with aiohttp.ClientSession() as http:
            for kind in ("id_card", "supporting"):
                form = aiohttp.FormData()
                form.add_field("kind", kind)
                form.add_field("file", (ASSETS / "obama.jpg").read_bytes(),
                               filename="scan.jpg", content_type="image/jpeg")
                async with http.post(
                    f"{server.url}/api/v1/sessions/{sid}/documents", data=form,
                    headers={"Authorization": f"Bearer {server.kiosk_tokens['k1']}"},
                ) as resp:
                    assert resp.status == 201
                    documents[kind] = (await resp.json())["document_id"]
            receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
            for kind, document_id in documents.items():
                refused = await staff.call("case.decide", {
                    "receipt_no": receipt_no, "decision": "approved",
                    "result_document_ids": [document_id]})
                assert refused["error"]["code"] == "bad_request", refused
                assert kind in refused["error"]["message"]
            async with http.post(f"{server.url}/api/v1/print/lookup",
                                 json={"receipt_no": receipt_no}) as resp:
                assert (await resp.json()) == {"receipt_no": receipt_no,
                                               "state": "submitted", "jobs": []}
