"""Headless Chromium for the browser tests: Debian's `chromium` (installed by .ci/run), driven by Playwright with
`executable_path` — never a downloaded browser. In CI (`tests/_required.py`: CI or MLGUARD_REQUIRE_REAL set, as
.ci/run does) a missing chromium fails the test; elsewhere it skips with how to install it. Screenshots go to
.artifacts/screenshots/ (gitignored), to be looked at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests._required import unavailable

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PHONE = {"width": 412, "height": 915}
DESKTOP = {"width": 1400, "height": 1000}


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        unavailable("Chromium", "Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    return path


@contextmanager
def browser(profile: Path, viewport: dict[str, int]) -> Iterator[Any]:
    """A fresh, empty Chromium profile (a new user-data-dir); yields a page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=chromium(), headless=True,
                                                       args=FLAGS, viewport=viewport)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
