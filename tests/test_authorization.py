"""The authorisation matrix: every event and URL, called by someone who may not (another
kiosk, another department's staff, a colleague not on the call, the wrong role, no one),
is refused with forbidden / 403 (or unauthorized / 401 without credentials), and the
refusal carries nothing of the session."""

from __future__ import annotations

import contextlib
import json

import aiohttp

from tests.harness import Client, running_server
from tests.helpers import ASSETS, open_call, signature_png, upload


@contextlib.asynccontextmanager
async def world(tmp_path):
    """A connected call (k1 ↔ alice, tax) with a document, a signature, a case and a
    print job; and the outsiders' clients."""
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk, staff, sid = await open_call(server, stack)
        _, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
        request_id = (await staff.call("signature.request", {
            "session_id": sid, "document_id": doc["document_id"], "title": "T"}))["request_id"]
        signature_id = (await kiosk.call("signature.submit", {
            "request_id": request_id, "png_base64": signature_png()}))["signature_id"]
        open_request = (await staff.call("signature.request", {
            "session_id": sid, "document_id": doc["document_id"], "title": "U"}))["request_id"]
        receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
        job_id = (await staff.call("print.send", {
            "session_id": sid, "document_id": doc["document_id"]}))["job_id"]
        outsiders = {}
        for name, namespace, token in (
            ("k2", "/kiosk", server.kiosk_tokens["k2"]),
            ("hana", "/staff", await server.login("hana")),
            ("bob", "/staff", await server.login("bob")),
        ):
            client = Client(namespace)
            stack.push_async_callback(client.close)
            await client.connect(server.url, token)
            outsiders[name] = client
        yield {
            "server": server, "sid": sid, "doc": doc["document_id"],
            "request_id": open_request, "signature_id": signature_id,
            "receipt_no": receipt_no, "job_id": job_id, "outsiders": outsiders,
            "tokens": {"alice": await server.login("alice"), "hana": await server.login("hana"),
                       "bob": await server.login("bob"), "sup": await server.login("sup"),
                       "k1": server.kiosk_tokens["k1"], "k2": server.kiosk_tokens["k2"]},
        }


def staff_events(w) -> list[tuple[str, dict]]:
    sid, doc = w["sid"], w["doc"]
    return [
        ("call.accept", {"session_id": sid}),
        ("call.decline", {"session_id": sid}),
        ("call.hangup", {"session_id": sid}),
        ("rtc.offer", {"session_id": sid, "sdp": "v=0 " * 10, "type": "offer"}),
        ("verification.start", {"session_id": sid, "id_document_id": doc}),
        ("verification.challenge", {"session_id": sid, "challenge": "turn_left"}),
        ("document.annotate", {"session_id": sid, "document_id": doc, "page": 1, "shapes": []}),
        ("document.request_rescan", {"session_id": sid, "document_id": doc}),
        ("signature.request", {"session_id": sid, "document_id": doc, "title": "x"}),
        ("case.submit", {"session_id": sid}),
        ("print.send", {"session_id": sid, "document_id": doc}),
    ]


def leaks(ack_or_body: dict, w) -> list[str]:
    text = json.dumps(ack_or_body)
    secrets = [w["doc"], w["receipt_no"], "alice", "Alice", "k1", w["signature_id"]]
    return [s for s in secrets if s in text]


async def test_every_event_refuses_callers_outside_the_call(tmp_path):
    async with world(tmp_path) as w:
        hana, bob, k2 = (w["outsiders"][n] for n in ("hana", "bob", "k2"))
        for event, payload in staff_events(w):
            for who, client in (("hana", hana), ("bob", bob)):
                ack = await client.call(event, payload)
                # bob is in the department: an offer that is not his is a conflict.
                expected = {"conflict"} if (who, event) in {
                    ("bob", "call.accept"), ("bob", "call.decline")} else {"forbidden"}
                assert ack["ok"] is False and ack["error"]["code"] in expected, (who, event, ack)
                assert not leaks(ack, w), (who, event, ack)
        ack = await hana.call("case.decide", {"receipt_no": w["receipt_no"],
                                              "decision": "approved"})
        assert ack["error"]["code"] == "forbidden" and not leaks(ack, w)
        for event, payload in (
            ("call.cancel", {"session_id": w["sid"]}),
            ("call.hangup", {"session_id": w["sid"]}),
            ("call.resume", {"session_id": w["sid"]}),
            ("rtc.offer", {"session_id": w["sid"], "sdp": "v=0 " * 10, "type": "offer"}),
            ("signature.submit", {"request_id": w["request_id"], "strokes": [[[0, 0], [1, 1]]]}),
            ("print.done", {"job_id": w["job_id"], "status": "printed"}),
        ):
            ack = await k2.call(event, payload)
            assert ack["error"]["code"] == "forbidden", (event, ack)
            assert not leaks(ack, w), (event, ack)


async def test_every_url_refuses_callers_outside_the_session(tmp_path):
    async with world(tmp_path) as w:
        sid, doc, tokens = w["sid"], w["doc"], w["tokens"]
        reads = [
            f"/api/v1/sessions/{sid}",
            f"/api/v1/documents/{doc}",
            f"/api/v1/documents/{doc}/pages/1.png",
            f"/api/v1/signatures/{w['signature_id']}.png",
            f"/api/v1/cases/{w['receipt_no']}",
            f"/api/v1/sessions/{sid}/recordings",
            "/api/v1/calls",
            "/api/v1/cases?state=submitted",
        ]
        # Who may read each URL (everyone else: 403, or 401 without a token).
        allowed = {
            reads[0]: {"alice", "bob", "sup", "k1"},  # the kiosk: a reduced record
            reads[1]: {"alice", "bob", "sup", "k1"},
            reads[2]: {"alice", "bob", "sup", "k1"},
            reads[3]: {"alice", "bob", "sup", "k1"},
            reads[4]: {"alice", "bob", "sup"},
            reads[5]: {"sup"},
            reads[6]: {"sup"},
            reads[7]: {"alice", "bob", "hana", "sup"},  # hana sees only her department's
        }
        async with aiohttp.ClientSession() as http:
            for url in reads:
                for who, token in [*tokens.items(), ("nobody", None)]:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with http.get(w["server"].url + url, headers=headers) as resp:
                        body = await resp.read()
                        if who in allowed[url]:
                            assert resp.status == 200, (url, who, resp.status, body[:200])
                            continue
                        assert resp.status == (401 if token is None else 403), (url, who,
                                                                                resp.status)
                        assert not leaks(json.loads(body), w), (url, who, body)
            async with http.get(w["server"].url + reads[7],
                                headers={"Authorization": f"Bearer {tokens['hana']}"}) as resp:
                assert (await resp.json())["cases"] == []
        # Uploads: only the session's own kiosk.
        server = w["server"]
        for who in ("k2", "alice", "sup"):
            status, body = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes(),
                                        token=tokens[who])
            assert status == 403 and not leaks(body, w), (who, status, body)
