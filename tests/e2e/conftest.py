"""Fixtures of the browser tests: the fake camera file, one headless Chromium per test
session, a real server per test.

Browser objects belong to the event loop that made them, so the browser fixture and the
tests that use it run in the session's event loop (``loop_scope="session"``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from signaling.keys import SERVICES
from smartcounter.config import Settings
from tests.harness import Server, running_server

from .browser import (
    CHROMIUM_PATH,
    LIVE_FACE_JPG,
    BrowserLog,
    launch_chromium,
    make_fake_camera,
    new_page,
    require_chromium,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"


@pytest.fixture(scope="session")
def fake_camera() -> Path:
    """tests/assets/obama.jpg as the browser's fake camera (tests/.artifacts/face.y4m)."""
    return make_fake_camera(ARTIFACTS / "face.y4m")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(fake_camera: Path) -> AsyncIterator[Browser]:
    if not CHROMIUM_PATH.exists():
        reason = f"{CHROMIUM_PATH} is missing (apt-get install chromium): browser tests not run"
        if os.environ.get("CI"):
            pytest.fail(reason + " — CI must run them", pytrace=False)
        pytest.skip(reason)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, fake_camera)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest_asyncio.fixture(loop_scope="session")
async def open_page(
    browser: Browser, browser_log: BrowserLog
) -> AsyncIterator[Callable[[str], Awaitable[Page]]]:
    """``await open_page(name)``: a page in a context of its own (like another machine)."""
    contexts: list[BrowserContext] = []

    async def make(name: str) -> Page:
        context, page = await new_page(browser, browser_log, name)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def e2e_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """The real app on 127.0.0.1 (memory store); parametrize it indirectly with a media
    relay ("forward", "transcode") to choose one, else the server's default."""
    relay = getattr(request, "param", None)
    async with running_server(tmp_path, **({"relay": relay} if relay else {})) as server:
        yield server


# ---------------------------------------------------------------- identity verification


@pytest.fixture(scope="session")
def live_face_camera() -> Path:
    """tests/assets/obama2.jpg as a fake camera (tests/.artifacts/face-obama2.y4m): another
    photo of the person on obama.jpg, made the same way as ``fake_camera``."""
    return make_fake_camera(ARTIFACTS / "face-obama2.y4m", LIVE_FACE_JPG)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_face_browser(live_face_camera: Path) -> AsyncIterator[Browser]:
    """A second headless Chromium whose camera shows ``live_face_camera`` (the fake camera
    file is a browser-wide flag, so a kiosk with another face needs its own browser)."""
    require_chromium()
    async with async_playwright() as pw:
        browser = await launch_chromium(pw, live_face_camera)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def open_live_face_page(
    live_face_browser: Browser, browser_log: BrowserLog
) -> AsyncIterator[Callable[[str], Awaitable[Page]]]:
    """``await open_live_face_page(name)``: like ``open_page``, in ``live_face_browser``."""
    contexts: list[BrowserContext] = []

    async def make(name: str) -> Page:
        context, page = await new_page(live_face_browser, browser_log, name)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        await context.close()


# Verification made fast for the browser tests: a head-turn challenge times out after 3 s,
# the presence watch after the check looks twice a second.
E2E_VERIFICATION = {"challenge_timeout_s": 3.0, "window_s": 8.0, "presence_fps": 2.0}


@pytest_asyncio.fixture(loop_scope="session")
async def verification_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Server]:
    """The real app with identity verification tuned for the browser tests
    (``E2E_VERIFICATION``); parametrize it indirectly with a dict of further
    ``VerificationPolicy`` fields (e.g. ``{"challenge_mode": "staff"}``)."""
    overrides = {**E2E_VERIFICATION, **(getattr(request, "param", None) or {})}

    def configure(settings: Settings) -> None:
        settings.verification = dataclasses.replace(settings.verification, **overrides)

    async with running_server(tmp_path, configure=configure) as server:
        vision = server.app[SERVICES].vision
        if vision.analyzer is None:
            pytest.fail(f"identity verification is unavailable: {vision.problem}", pytrace=False)
        yield server
