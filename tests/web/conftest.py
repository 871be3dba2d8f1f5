"""A real browser for the workspace page: Debian's chromium, driven by Playwright (which never
downloads a browser of its own here). One browser per session; each test gets its own page,
and a script error on it fails the test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.web.workspace import workspace

__all__ = ["browser", "page", "workspace"]

CHROMIUM = shutil.which("chromium")
VIEWPORT = {"width": 1600, "height": 1000}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (`make debs` installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert not errors, f"script errors on the page: {errors}"
