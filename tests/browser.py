"""Debian's chromium for the browser tests (Playwright drives it): where it is, and how it is started."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
NEEDS_CHROMIUM = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent; install Debian's chromium (apt-get install chromium)")


def launch(playwright: Any) -> Any:
    """Chromium headless, offline-friendly: no sandbox (containers), no GPU, no background traffic."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])
