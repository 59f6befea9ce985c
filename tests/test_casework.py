"""The case from scan to printed result, through a real server with socket.io clients:
documents with pages and signed thumbnails, annotations, rescans, a signature, the
application and its receipt, printing during the call, the decision after it, and the
Citizen's Window lookup. Each step's checks on who may do it."""

from __future__ import annotations

import contextlib
import io
import json

import aiohttp
import pytest
from PIL import Image

from sessions.audit import verify_chain
from tests.harness import Client, running_server
from tests.helpers import (
    ASSETS,
    audit_events,
    fetch,
    open_call,
    pdf_of_pages,
    signature_png,
    upload,
)


async def lookup(server, receipt_no: str, remote: str | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/api/v1/print/lookup", json={"receipt_no": receipt_no}
        ) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def call(tmp_path):
    async with running_server(tmp_path) as server:
        async with contextlib.AsyncExitStack() as stack:
            kiosk, staff, sid = await open_call(server, stack)
            yield server, kiosk, staff, sid


async def test_the_whole_case_from_scan_to_printed_result(call):
    server, kiosk, staff, sid = call
    alice = await server.login("alice")

    # Scans: a JPEG and a three-page PDF, each announced with a signed thumbnail.
    status, photo = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes(),
                                 kind="supporting")
    assert status == 201 and photo["pages"] == 1
    status, form = await upload(server, sid, pdf_of_pages(3), kind="form", name="form.pdf")
    assert status == 201 and form["pages"] == 3, form
    added = await staff.wait_for("document.added", document_id=form["document_id"])
    assert added["pages"] == 3 and added["kind"] == "form"
    status, body, ctype = await fetch(server, added["thumbnail_url"])  # no token: signed
    assert status == 200 and ctype == "image/png"
    assert Image.open(io.BytesIO(body)).width == 240
    tampered = added["thumbnail_url"].replace("w=240", "w=2400")
    assert (await fetch(server, tampered))[0] == 401
    status, body, _ = await fetch(server, f"/api/v1/documents/{form['document_id']}/pages/2.png",
                                  alice)
    page2 = Image.open(io.BytesIO(body))
    assert status == 200 and page2.getpixel((10, 10))[:3] == (255, 255, 0)  # the yellow page
    assert (await fetch(server, f"/api/v1/documents/{form['document_id']}/pages/4.png",
                        alice))[0] == 404

    # Annotations and rescans reach the kiosk; only the call's staff member may send them.
    shapes = [{"type": "rect", "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.1, "label": "sign here"},
              {"type": "arrow", "x1": 0.5, "y1": 0.5, "x2": 0.2, "y2": 0.25}]
    ack = await staff.call("document.annotate", {"session_id": sid, "document_id":
                                                 form["document_id"], "page": 2, "shapes": shapes})
    assert ack == {"ok": True}
    note = await kiosk.wait_for("document.annotation", document_id=form["document_id"])
    assert note["page"] == 2 and note["shapes"] == shapes
    ack = await staff.call("document.annotate", {"session_id": sid, "document_id":
                                                 form["document_id"], "page": 4, "shapes": []})
    assert ack["error"]["code"] == "bad_request" and "3 page" in ack["error"]["message"]
    ack = await staff.call("document.annotate", {"session_id": sid, "document_id":
                                                 form["document_id"], "page": 1,
                                                 "shapes": [{"type": "circle"}]})
    assert ack["error"]["code"] == "bad_request"
    ack = await staff.call("document.request_rescan", {"session_id": sid, "document_id":
                                                       photo["document_id"], "reason": "blurred"})
    assert ack == {"ok": True}
    rescan = await kiosk.wait_for("document.rescan_requested")
    assert rescan == {"session_id": sid, "document_id": photo["document_id"], "reason": "blurred"}

    # The signature, bound to the document's hash.
    ack = await staff.call("signature.request", {"session_id": sid, "document_id":
                                                 form["document_id"], "title": "Application"})
    request_id = ack["request_id"]
    asked = await kiosk.wait_for("signature.requested", request_id=request_id)
    assert asked["title"] == "Application" and asked["document_id"] == form["document_id"]
    strokes = [[[0.1, 0.5, 0], [0.2, 0.4, 16], [0.3, 0.6, 32]]]
    ack = await kiosk.call("signature.submit", {"request_id": request_id,
                                                "png_base64": signature_png(),
                                                "strokes": strokes})
    assert ack["ok"], ack
    completed = await staff.wait_for("signature.completed", request_id=request_id)
    assert completed["signature_id"] == ack["signature_id"]
    assert completed["document_sha256"] == form["sha256"]
    status, body, ctype = await fetch(server, completed["image_url"])
    assert status == 200 and ctype == "image/png" and Image.open(io.BytesIO(body)).width == 400
    again = await kiosk.call("signature.submit", {"request_id": request_id, "strokes": strokes})
    assert again["error"]["code"] == "conflict"

    # Lodging gives the kiosk its receipt at once; one application per call.
    ack = await staff.call("case.submit", {"session_id": sid})
    receipt_no = ack["receipt_no"]
    assert (await kiosk.wait_for("case.receipt"))["receipt_no"] == receipt_no
    assert (await staff.call("case.submit", {"session_id": sid}))["error"]["code"] == "conflict"

    # Printing during the call: the kiosk gets a job with a URL it can load, and reports.
    ack = await staff.call("print.send", {"session_id": sid, "document_id": photo["document_id"]})
    job = await kiosk.wait_for("print.job", job_id=ack["job_id"])
    status, body, _ = await fetch(server, job["url"])
    assert status == 200 and body == (ASSETS / "obama.jpg").read_bytes()
    assert (await kiosk.call("print.done", {"job_id": job["job_id"], "status": "printed"}))["ok"]
    assert (await staff.wait_for("print.status", job_id=job["job_id"]))["status"] == "printed"
    again = await kiosk.call("print.done", {"job_id": job["job_id"], "status": "failed"})
    assert again["error"]["code"] == "conflict"

    # Before a decision the Citizen's Window shows the state and nothing to print.
    status, answer = await lookup(server, receipt_no.lower().replace("-", " "))
    assert status == 200 and answer == {"receipt_no": receipt_no, "state": "submitted",
                                        "jobs": []}

    # The kiosk leaves; the case is decided afterwards, from the list of submitted cases.
    assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
    await staff.wait_for("call.ended", session_id=sid)
    status, body, _ = await fetch(server, "/api/v1/cases?state=submitted", alice)
    assert [c["receipt_no"] for c in json.loads(body)["cases"]] == [receipt_no]
    status, body, _ = await fetch(server, "/api/v1/cases?state=submitted",
                                  await server.login("hana"))
    assert json.loads(body)["cases"] == []  # another department's
    kiosk.events.clear()
    ack = await staff.call("case.decide", {"receipt_no": receipt_no, "decision": "approved"})
    assert ack["ok"] and ack["state"] == "approved" and len(ack["result_document_ids"]) == 1
    assert not [e for e, _ in kiosk.events if e == "case.decided"]  # the kiosk has gone
    again = await staff.call("case.decide", {"receipt_no": receipt_no, "decision": "rejected",
                                             "reason": "late"})
    assert again["error"]["code"] == "conflict"

    # Any Citizen's Window finds the result by the receipt number and can print it.
    status, answer = await lookup(server, receipt_no)
    assert status == 200 and answer["state"] == "approved"
    (result,) = answer["jobs"]
    assert result["document_id"] == ack["result_document_ids"][0]
    status, body, ctype = await fetch(server, result["url"])
    assert status == 200 and ctype == "application/pdf" and body.startswith(b"%PDF")
    (page_url,) = result["page_urls"]  # printable as images too, without a token
    status, body, ctype = await fetch(server, page_url)
    assert status == 200 and ctype == "image/png" and Image.open(io.BytesIO(body)).width > 600

    events = audit_events(server, sid)
    assert verify_chain(events)
    types = [e["type"] for e in events]
    for expected in ("document.added", "document.annotated", "document.rescan_requested",
                     "signature.requested", "signature.submitted", "case.submitted",
                     "print.queued", "print.done", "case.decided"):
        assert expected in types, expected
    assert types.index("case.decided") > types.index("case.submitted")


async def test_decisions_during_the_call_reach_the_kiosk_and_rejections_need_a_reason(call):
    server, kiosk, staff, sid = call
    receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
    ack = await staff.call("case.decide", {"receipt_no": receipt_no, "decision": "rejected"})
    assert ack["error"]["code"] == "bad_request" and "reason" in ack["error"]["message"]
    ack = await staff.call("case.decide", {"receipt_no": receipt_no, "decision": "rejected",
                                           "reason": "business name taken"})
    assert ack["ok"]
    decided = await kiosk.wait_for("case.decided")
    assert decided == {"session_id": sid, "decision": "rejected", "receipt_no": receipt_no,
                       "message": "business name taken"}
    status, answer = await lookup(server, receipt_no)
    assert status == 200 and answer["state"] == "rejected" and answer["jobs"] == []


async def test_case_events_check_department_session_and_kiosk(call):
    server, kiosk, staff, sid = call
    status, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
    receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
    request_id = (await staff.call("signature.request", {
        "session_id": sid, "document_id": doc["document_id"], "title": "T"}))["request_id"]
    hana, bob = Client("/staff"), Client("/staff")
    await hana.connect(server.url, await server.login("hana"))
    await bob.connect(server.url, await server.login("bob"))
    other_kiosk = Client("/kiosk")
    await other_kiosk.connect(server.url, server.kiosk_tokens["k2"])
    try:
        for client in (hana, bob):  # another department; a colleague not on this call
            for event, payload in (
                ("document.annotate", {"session_id": sid, "document_id": doc["document_id"],
                                       "page": 1, "shapes": []}),
                ("document.request_rescan", {"session_id": sid,
                                             "document_id": doc["document_id"]}),
                ("signature.request", {"session_id": sid, "document_id": doc["document_id"],
                                       "title": "x"}),
                ("case.submit", {"session_id": sid}),
                ("print.send", {"session_id": sid, "document_id": doc["document_id"]}),
            ):
                ack = await client.call(event, payload)
                assert ack["error"]["code"] == "forbidden", (event, ack)
        ack = await hana.call("case.decide", {"receipt_no": receipt_no, "decision": "approved"})
        assert ack["error"]["code"] == "forbidden"
        ack = await other_kiosk.call("signature.submit", {"request_id": request_id,
                                                          "strokes": [[[0, 0], [1, 1]]]})
        assert ack["error"]["code"] == "forbidden"
        ack = await kiosk.call("signature.submit", {"request_id": request_id})
        assert ack["error"]["code"] == "bad_request"
        ack = await kiosk.call("signature.submit", {"request_id": request_id,
                                                    "png_base64": "bm90IGEgcG5n"})
        assert ack["error"]["code"] == "bad_request" and "PNG" in ack["error"]["message"]
        ack = await staff.call("document.annotate", {"session_id": sid, "document_id": "doc_x",
                                                     "page": 1, "shapes": []})
        assert ack["error"]["code"] == "not_found"
        # The kiosk namespace has no staff events, and the reverse.
        assert (await kiosk.call("case.submit", {"session_id": sid}))["error"]["code"] == (
            "bad_request")
        assert (await staff.call("print.done", {"job_id": "x", "status": "printed"}))[
            "error"]["code"] == "bad_request"
    finally:
        for client in (hana, bob, other_kiosk):
            await client.close()
    # Documents and signatures of this session are not for others to read.
    status, _, _ = await fetch(server, f"/api/v1/documents/{doc['document_id']}/pages/1.png",
                               await server.login("hana"))
    assert status == 403
    status, _, _ = await fetch(server, "/api/v1/cases?state=submitted", server.kiosk_tokens["k1"])
    assert status == 403


async def test_print_lookup_answers_clearly_and_slows_guessing(call):
    server, _kiosk, _staff, _sid = call
    status, body = await lookup(server, "SC-12345-67890-0")
    assert status in (400, 404)
    status, body = await lookup(server, "not a number")
    assert status == 400 and "SC-XXXXX" in body["error"]["message"]
    statuses = [(await lookup(server, "SC-AAAAA-AAAAA-A"))[0] for _ in range(10)]
    assert 429 in statuses
    status, body = await lookup(server, "SC-AAAAA-AAAAA-A")
    assert status == 429 and body["error"]["code"] == "rate_limited"


async def test_the_kiosk_reads_back_only_what_the_citizen_has_seen(call):
    server, _kiosk, staff, sid = call
    _, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
    receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
    status, body, _ = await fetch(server, f"/api/v1/sessions/{sid}", server.kiosk_tokens["k1"])
    record = json.loads(body)
    assert status == 200 and set(record) == {"session_id", "state", "documents", "case"}
    assert record["case"] == {"receipt_no": receipt_no, "state": "submitted"}
    assert [d["document_id"] for d in record["documents"]] == [doc["document_id"]]
    status, _, _ = await fetch(server, f"/api/v1/sessions/{sid}", server.kiosk_tokens["k2"])
    assert status == 403
