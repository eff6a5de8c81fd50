"""Open a local page in Debian's headless Chromium (through Playwright) and report what a
reader's browser saw: a full-page screenshot, the console errors, every request it tried
and the DOM it built.

The browser runs with networking off (an offline context): a page that needs anything
from the network shows it as a failed request, which `requests` still lists.
Missing Chromium or Playwright skips the test locally and fails it under CI=true
(`make chromium` installs the browser; Playwright comes with the dev dependencies).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qm_pipeline_tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class PageVisit:
    """What opening one page produced."""

    screenshot: bytes = b""
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    counts: dict[str, int] = field(default_factory=dict)  # CSS selector -> matches
    html: str = ""  # the DOM as serialised after load


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium for several page visits (starting one takes about a second)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not installed (run `make chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright not installed (dev dependency: run `make setup`)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-gpu"],
                                              timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


def visit(chromium: Any, page_file: Path, selectors: tuple[str, ...] = (),
          width: int = 1280) -> PageVisit:
    """Open `page_file` offline, wait for it to load, and record what happened."""
    seen = PageVisit()
    context = chromium.new_context(offline=True, viewport={"width": width, "height": 900},
                                   device_scale_factor=1)
    try:
        page = context.new_page()
        page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: seen.requests.append(r.url))
        page.goto(page_file.resolve().as_uri(), wait_until="load", timeout=30_000)
        seen.screenshot = page.screenshot(full_page=True)
        seen.counts = {s: page.locator(s).count() for s in selectors}
        seen.html = page.content()
    finally:
        context.close()
    return seen
