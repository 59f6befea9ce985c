"""Document upload: what is accepted, what is refused (with the right status, nothing
stored, server unharmed), and who may read a document back."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from signaling.keys import SERVICES
from tests.harness import running_server
from tests.helpers import ASSETS, open_call, upload


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG declaring a huge picture."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.fixture
async def call(tmp_path):
    def small_limit(settings) -> None:
        settings.max_upload_bytes = 300_000

    async with running_server(tmp_path, configure=small_limit) as server:
        async with contextlib.AsyncExitStack() as stack:
            kiosk, staff, sid = await open_call(server, stack)
            yield server, kiosk, staff, sid


def stored_files(server) -> list[Path]:
    root = server.settings.documents_dir
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_jpeg_is_stored_once_by_content_and_survives_in_the_index(call):
    server, _kiosk, _staff, sid = call
    photo = (ASSETS / "obama.jpg").read_bytes()
    first = await upload(server, sid, photo)
    second = await upload(server, sid, photo, kind="supporting")
    assert first[0] == second[0] == 201
    assert first[1]["sha256"] == second[1]["sha256"]
    assert first[1]["document_id"] != second[1]["document_id"]
    originals = [p for p in stored_files(server) if "pages" not in p.parts]
    assert [p.name for p in originals] == [first[1]["sha256"]]
    store = server.app[SERVICES].store
    assert [d.kind for d in await store.session_documents(sid)] == ["id_card", "supporting"]
    token = await server.login("alice")
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/v1/documents/{first[1]['document_id']}"
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200 and await resp.read() == photo
            assert resp.headers["Content-Type"] == "image/jpeg"
        for who, expected in (("hana", 403), (None, 401)):
            headers = {"Authorization": f"Bearer {await server.login(who)}"} if who else {}
            async with http.get(url, headers=headers) as resp:
                assert resp.status == expected
        other_kiosk = {"Authorization": f"Bearer {server.kiosk_tokens['k2']}"}
        async with http.get(url, headers=other_kiosk) as resp:
            assert resp.status == 403


# A PDF whose page tree declares 10 000 pages (PDFium believes the count).
PDF_10000_PAGES = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 10000 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def truncated_jpeg() -> bytes:
    return (ASSETS / "obama.jpg").read_bytes()[:5000]


def big_png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (400, 400), bytes(range(256)) * 1875).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "data,status,words",
    [
        (b"GIF89a not a jpeg at all", 415, "only JPEG, PNG and PDF"),
        (b"", 422, "empty"),
        (truncated_jpeg(), 422, "damaged"),
        (png_bomb(), 413, "pixels"),
        (b"%PDF-1.7\n" + b"1 0 obj\n" * 10, 422, "PDF cannot be read"),
        (PDF_10000_PAGES, 413, "10000 pages"),
        (b"\xff\xd8\xff" + b"\x00" * 400_000, 413, "larger than"),
    ],
    ids=["gif-named-jpg", "empty", "truncated-jpeg", "png-bomb", "broken-pdf", "pdf-10000-pages",
         "over-limit"],
)
async def test_bad_uploads_are_refused_and_leave_nothing(call, data, status, words):
    server, _kiosk, staff, sid = call
    got, body = await upload(server, sid, data, name="scan.jpg")
    assert got == status, body
    assert words in body["error"]["message"]
    assert stored_files(server) == []
    assert not staff.events or all(e != "document.added" for e, _ in staff.events)
    # The server is unharmed: a good upload still works.
    assert (await upload(server, sid, (ASSETS / "obama.jpg").read_bytes()))[0] == 201


async def test_uploads_check_the_kiosk_the_session_and_the_kind(call):
    server, kiosk, _staff, sid = call
    photo = (ASSETS / "obama.jpg").read_bytes()
    status, body = await upload(server, sid, photo, token=server.kiosk_tokens["k2"])
    assert status == 403
    status, body = await upload(server, sid, photo, token=await server.login("alice"))
    assert status == 403
    status, body = await upload(server, sid, photo, token="nonsense")
    assert status == 401
    status, body = await upload(server, "no-such-session", photo)
    assert status == 404
    status, body = await upload(server, sid, photo, kind="passport")
    assert status == 400 and "kind" in body["error"]["message"]
    assert stored_files(server) == []
    await kiosk.call("call.hangup", {"session_id": sid})
    status, body = await upload(server, sid, photo)
    assert status == 409 and "closed" in body["error"]["message"]
    assert stored_files(server) == []


async def test_pages_honour_exif_orientation(call):
    server, _kiosk, staff, sid = call
    image = Image.new("RGB", (300, 100), "white")
    image.paste((255, 0, 0), (0, 0, 30, 100))  # a red band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    status, doc = await upload(server, sid, out.getvalue())
    assert status == 201
    token = await server.login("alice")
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/v1/documents/{doc['document_id']}/pages/1.png"
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            page = Image.open(io.BytesIO(await resp.read())).convert("RGB")
    assert page.size == (100, 300)  # upright: the band is now along the top
    red, green, _ = page.getpixel((50, 5))
    assert red > 200 and green < 60
    added = await staff.wait_for("document.added", document_id=doc["document_id"])
    assert "sig=" in added["thumbnail_url"]
