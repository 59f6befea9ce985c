"""The casework in real headless Chromium: during a call the kiosk scans a photo and a
three-page PDF, the staff console shows both with thumbnails, marks page 2 of the PDF
with the mouse and the kiosk shows the mark over that page; a rescan request, a
signature drawn on the kiosk's pad, a print at the kiosk, the application lodged (the
same receipt number on both sides); after the call the console approves the case from
its list, and a Citizen's Window (/print, no sign-in) finds the decision letter by the
receipt number."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.harness import Server

from .browser import ASSETS, BrowserLog, drag_through, tax_call

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

RECEIPT = re.compile(r"^SC-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]$")
# The rectangle the staff member draws on page 2, as fractions of the page.
MARK = {"x": 0.2, "y": 0.3, "w": 0.4, "h": 0.25}


def three_page_pdf(path: Path) -> Path:
    """A PDF of three A4-ish pages in different colours (white, yellow, cyan)."""
    pages = [Image.new("RGB", (595, 842), colour) for colour in ("white", "yellow", "cyan")]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    path.write_bytes(out.getvalue())
    return path


async def image_shown(page: Page, selector: str) -> None:
    """Wait until every <img> at ``selector`` has decoded a picture."""
    await page.wait_for_function(
        "(s) => { const all = [...document.querySelectorAll(s)];"
        " return all.length > 0 && all.every((i) => i.complete && i.naturalWidth > 0); }",
        arg=selector,
        timeout=10_000,
    )


async def scan(kiosk: Page, kind: str, path: Path, count: int) -> str:
    """Scan ``path`` as ``kind`` through the kiosk's document input; the document id."""
    await kiosk.get_by_test_id(f"doc-kind-{kind}").click()
    await kiosk.get_by_test_id("doc-scan-input").set_input_files(path)
    await expect(kiosk.get_by_test_id("kiosk-docs")).to_have_attribute(
        "data-count", str(count), timeout=10_000
    )
    status = kiosk.get_by_test_id("doc-scan-status")
    await expect(status).to_have_attribute("data-state", "done")
    document_id = await status.get_attribute("data-document-id")
    assert document_id and document_id.startswith("doc_"), document_id
    return document_id


async def test_casework_from_scan_to_printed_result(
    e2e_server: Server,
    open_page,
    browser_log: BrowserLog,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    server = e2e_server
    alice = await open_page("alice")
    kiosk = await open_page("kiosk")
    await tax_call(server.url, server.passwords, server.kiosk_tokens, alice, kiosk)
    await expect(kiosk.get_by_test_id("hangup")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("casework-panel")).to_be_visible()
    await expect(alice.get_by_test_id("docs-list")).to_have_attribute("data-count", "0")
    await expect(alice.get_by_test_id("case-lodge")).to_be_enabled()

    # The citizen scans a photo (supporting) and a three-page form (PDF).
    photo_id = await scan(kiosk, "supporting", ASSETS / "obama.jpg", 1)
    form_id = await scan(kiosk, "form", three_page_pdf(tmp_path / "form.pdf"), 2)
    form_on_kiosk = kiosk.locator(f'[data-testid=kiosk-doc][data-document-id="{form_id}"]')
    await expect(form_on_kiosk).to_have_attribute("data-pages", "3")
    await image_shown(kiosk, "[data-testid=kiosk-doc-thumb]")

    # The console lists both, with their thumbnails.
    await expect(alice.get_by_test_id("docs-list")).to_have_attribute("data-count", "2")
    photo_item = alice.locator(f'[data-testid=doc-item][data-document-id="{photo_id}"]')
    form_item = alice.locator(f'[data-testid=doc-item][data-document-id="{form_id}"]')
    await expect(photo_item).to_have_attribute("data-kind", "supporting")
    await expect(form_item).to_have_attribute("data-kind", "form")
    await expect(form_item).to_have_attribute("data-pages", "3")
    await image_shown(alice, "[data-testid=doc-thumb]")

    # The staff member opens page 2 of the form and draws a rectangle on it.
    await form_item.get_by_test_id("doc-open").click()
    viewer = alice.get_by_test_id("doc-viewer")
    await expect(viewer).to_have_attribute("data-document-id", form_id)
    await alice.get_by_test_id("viewer-next").click()
    await expect(viewer).to_have_attribute("data-page", "2")
    await expect(alice.get_by_test_id("viewer-image")).to_have_attribute("data-loaded", "true")
    await drag_through(
        alice,
        "[data-testid=viewer-draw]",
        [(MARK["x"], MARK["y"]), (MARK["x"] + MARK["w"], MARK["y"] + MARK["h"])],
    )
    await expect(alice.get_by_test_id("viewer-annotation-rect")).to_have_count(1)
    await expect(viewer).to_have_attribute("data-sent", "1")
    # Turned a quarter clockwise, an arrow drawn down the screen points along the page.
    await alice.get_by_test_id("viewer-rotate").click()
    await expect(viewer).to_have_attribute("data-rotation", "90")
    await alice.get_by_test_id("viewer-tool-arrow").click()
    await drag_through(alice, "[data-testid=viewer-draw]", [(0.5, 0.2), (0.5, 0.6)])
    await expect(viewer).to_have_attribute("data-sent", "2")

    # The kiosk shows page 2 of the form with the rectangle where it was drawn.
    view = kiosk.get_by_test_id("kiosk-doc-view")
    await expect(view).to_be_visible(timeout=10_000)
    await expect(view).to_have_attribute("data-document-id", form_id)
    await expect(view).to_have_attribute("data-page", "2")
    await expect(kiosk.get_by_test_id("kiosk-doc-page-image")).to_have_attribute(
        "data-loaded", "true"
    )
    rect = kiosk.get_by_test_id("kiosk-annotation-rect")
    await expect(rect).to_have_count(1)
    for name, expected in MARK.items():
        value = float(await rect.get_attribute(f"data-{name}") or "nan")
        assert value == pytest.approx(expected, abs=0.02), (name, value)
    arrow = kiosk.get_by_test_id("kiosk-annotation-arrow")
    await expect(arrow).to_have_count(1)
    for name, expected in {"x1": 0.2, "y1": 0.5, "x2": 0.6, "y2": 0.5}.items():
        value = float(await arrow.get_attribute(f"data-{name}") or "nan")
        assert value == pytest.approx(expected, abs=0.02), (name, value)
    # On screen too: the rectangle sits at those fractions of the page image.
    image_box = await kiosk.get_by_test_id("kiosk-doc-page-image").bounding_box()
    rect_box = await rect.bounding_box()
    assert image_box and rect_box
    assert (rect_box["x"] - image_box["x"]) / image_box["width"] == pytest.approx(0.2, abs=0.03)
    assert (rect_box["y"] - image_box["y"]) / image_box["height"] == pytest.approx(0.3, abs=0.03)
    assert rect_box["width"] / image_box["width"] == pytest.approx(0.4, abs=0.03)
    await kiosk.get_by_test_id("kiosk-doc-view-close").click()
    await expect(view).to_be_hidden()

    # A rescan request for the photo reaches the kiosk with its reason.
    await photo_item.get_by_test_id("doc-open").click()
    await alice.get_by_test_id("rescan-reason").fill("blurred")
    await alice.get_by_test_id("rescan-request").click()
    rescan = kiosk.get_by_test_id("kiosk-rescan")
    await expect(rescan).to_be_visible(timeout=10_000)
    await expect(rescan).to_have_attribute("data-document-id", photo_id)
    await expect(kiosk.get_by_test_id("kiosk-rescan-reason")).to_contain_text("blurred")

    # The photo and the form go to the kiosk's printer (the form's pages as images); the
    # console hears they were printed.
    jobs = alice.get_by_test_id("print-job")
    await alice.get_by_test_id("print-send").click()
    await expect(jobs).to_have_count(1, timeout=10_000)
    await form_item.get_by_test_id("doc-open").click()
    await alice.get_by_test_id("print-send").click()
    await expect(jobs).to_have_count(2, timeout=10_000)
    for index in range(2):
        await expect(jobs.nth(index)).to_have_attribute("data-status", "printed", timeout=10_000)
    await expect(kiosk.get_by_test_id("kiosk-print-status")).to_have_attribute(
        "data-state", "printed"
    )

    # A signature on the form: the kiosk's pad, drawn with the mouse.
    await alice.get_by_test_id("sign-title").fill("Application form")
    await alice.get_by_test_id("sign-request").click()
    dialog = kiosk.get_by_test_id("signature-dialog")
    await expect(dialog).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("signature-title")).to_contain_text("Application form")
    await expect(kiosk.get_by_test_id("signature-confirm")).to_be_disabled()
    await drag_through(
        kiosk,
        "[data-testid=signature-pad]",
        [(0.1, 0.6), (0.25, 0.3), (0.4, 0.7), (0.55, 0.35), (0.7, 0.65), (0.85, 0.4)],
    )
    await expect(kiosk.get_by_test_id("signature-pad")).to_have_attribute("data-empty", "false")
    await kiosk.get_by_test_id("signature-confirm").click()
    await expect(dialog).to_be_hidden(timeout=10_000)
    await expect(kiosk.get_by_test_id("kiosk-note")).to_have_attribute(
        "data-key", "kiosk.sign.done"
    )
    signed = alice.get_by_test_id("signature-item")
    await expect(signed).to_have_attribute("data-state", "signed", timeout=10_000)
    await expect(alice.get_by_test_id("signature-image")).to_be_visible()
    await image_shown(alice, "[data-testid=signature-image]")

    # The application is lodged: the same receipt number on both sides.
    await alice.get_by_test_id("case-lodge").click()
    receipt = alice.get_by_test_id("case-receipt")
    await expect(receipt).to_be_visible(timeout=10_000)
    receipt_no = await receipt.get_attribute("data-receipt-no")
    assert receipt_no and RECEIPT.match(receipt_no), receipt_no
    await expect(alice.get_by_test_id("case-receipt-no")).to_have_text(receipt_no)
    await expect(alice.get_by_test_id("case-lodge")).to_be_disabled()
    await expect(kiosk.get_by_test_id("kiosk-receipt")).to_have_attribute(
        "data-receipt-no", receipt_no, timeout=10_000
    )
    await expect(kiosk.get_by_test_id("kiosk-receipt-no")).to_have_text(receipt_no)

    # The citizen leaves; the end screen keeps the receipt number.
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("ended-receipt")).to_have_attribute(
        "data-receipt-no", receipt_no
    )
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("casework-panel")).to_be_hidden()

    # After the call the staff member approves the case from the list.
    row = alice.locator(f'[data-testid=case-row][data-receipt-no="{receipt_no}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row).to_have_attribute("data-state", "submitted")
    await row.get_by_test_id("case-reject").click()  # a rejection needs a reason
    await expect(row.get_by_test_id("case-error")).to_be_visible()
    await expect(row).to_have_attribute("data-state", "submitted")
    await row.get_by_test_id("case-approve").click()
    await expect(row).to_have_attribute("data-state", "approved", timeout=10_000)
    await expect(row.get_by_test_id("case-approve")).to_be_disabled()
    await alice.get_by_test_id("cases-refresh").click()
    await expect(row).to_be_hidden(timeout=10_000)

    # A Citizen's Window finds the decision letter by the receipt number.
    window = await open_page("window")
    await window.goto(f"{server.url}/print")
    await window.get_by_test_id("receipt-input").fill(receipt_no.lower())
    await window.get_by_test_id("lookup-submit").click()
    result = window.get_by_test_id("lookup-result")
    await expect(result).to_have_attribute("data-state", "approved", timeout=10_000)
    await expect(result).to_have_attribute("data-receipt-no", receipt_no)
    await expect(window.get_by_test_id("result-doc")).to_have_count(1)
    document = window.get_by_test_id("result-doc")
    await expect(document).to_have_attribute("data-content-type", "application/pdf")
    await expect(window.get_by_test_id("result-print")).to_be_visible()
    frame_src = await window.get_by_test_id("result-frame").get_attribute("src")
    assert frame_src and "sig=" in frame_src, frame_src
    answer = await window.request.get(server.url + frame_src)
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    assert (await answer.body()).startswith(b"%PDF")
    await window.get_by_test_id("result-print").click()
    await expect(document).to_have_attribute("data-print-state", "printed")

    assert browser_log.unexpected() == []
    server_errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert server_errors == []


async def test_print_window_says_what_is_wrong(
    e2e_server: Server, open_page, browser_log: BrowserLog
) -> None:
    """Unknown and malformed receipt numbers get a clear message, in either language."""
    window = await open_page("window")
    await window.goto(f"{e2e_server.url}/print")
    await window.get_by_test_id("lang-en").click()
    await window.get_by_test_id("receipt-input").fill("not a number")
    await window.get_by_test_id("lookup-submit").click()
    message = window.get_by_test_id("lookup-message")
    await expect(message).to_have_attribute("data-code", "bad_request", timeout=10_000)
    await expect(message).to_contain_text("SC-XXXXX-XXXXX-X")
    await expect(window.get_by_test_id("lookup-result")).to_be_hidden()
    await window.get_by_test_id("receipt-input").fill("SC-AAAAA-AAAAA-A")
    await window.get_by_test_id("lookup-submit").click()
    await expect(message).to_have_attribute("data-code", re.compile("not_found|bad_request"))
    await window.get_by_test_id("lang-zh-Hant").click()
    await expect(message).not_to_contain_text("Please")
    # The browser logs the refused lookups (HTTP 400/404) as failed resources: expected.
    unexpected = [e for e in browser_log.unexpected() if "status of 40" not in e]
    assert unexpected == []


async def test_kiosk_reloaded_mid_call_shows_its_documents_and_receipt_again(
    e2e_server: Server, open_page, browser_log: BrowserLog
) -> None:
    """A kiosk page reloaded during a call resumes it and reads its documents (with
    thumbnails) and the receipt number back from the server."""
    server = e2e_server
    alice = await open_page("alice")
    kiosk = await open_page("kiosk")
    await tax_call(server.url, server.passwords, server.kiosk_tokens, alice, kiosk)
    await expect(kiosk.get_by_test_id("hangup")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("case-lodge")).to_be_enabled(timeout=10_000)
    session_id = await kiosk.evaluate("() => window.smartcounter.sessionId")

    photo_id = await scan(kiosk, "supporting", ASSETS / "obama.jpg", 1)
    await expect(alice.get_by_test_id("docs-list")).to_have_attribute("data-count", "1")
    await alice.get_by_test_id("case-lodge").click()
    receipt = alice.get_by_test_id("case-receipt")
    await expect(receipt).to_be_visible(timeout=10_000)
    receipt_no = await receipt.get_attribute("data-receipt-no")
    assert receipt_no and RECEIPT.match(receipt_no), receipt_no
    await expect(kiosk.get_by_test_id("kiosk-receipt")).to_have_attribute(
        "data-receipt-no", receipt_no, timeout=10_000
    )

    await kiosk.reload()
    await expect(kiosk.get_by_test_id("hangup")).to_be_visible(timeout=10_000)
    assert await kiosk.evaluate("() => window.smartcounter.sessionId") == session_id
    docs = kiosk.get_by_test_id("kiosk-docs")
    await expect(docs).to_have_attribute("data-count", "1", timeout=10_000)
    item = kiosk.locator(f'[data-testid=kiosk-doc][data-document-id="{photo_id}"]')
    await expect(item).to_have_attribute("data-kind", "supporting")
    thumb = item.get_by_test_id("kiosk-doc-thumb")
    await expect(thumb).to_have_attribute("data-loaded", "true", timeout=10_000)
    await expect(thumb).to_be_visible()
    await image_shown(kiosk, "[data-testid=kiosk-doc-thumb]")
    await expect(kiosk.get_by_test_id("kiosk-receipt")).to_be_visible()
    await expect(kiosk.get_by_test_id("kiosk-receipt")).to_have_attribute(
        "data-receipt-no", receipt_no
    )
    await expect(kiosk.get_by_test_id("kiosk-receipt-no")).to_have_text(receipt_no)

    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("ended-receipt")).to_have_attribute(
        "data-receipt-no", receipt_no, timeout=10_000
    )
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)
    assert browser_log.unexpected() == []
