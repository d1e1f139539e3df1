"""Chromium for the browser tests (Playwright drives Debian's chromium; QA_CHROMIUM names another)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("QA_CHROMIUM", "/usr/bin/chromium"))


def require_chromium() -> None:
    """Skip the calling test module when there is no Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install it with scripts/install-browser.sh (CI does)", allow_module_level=True
        )


def launch(playwright):
    """A headless Chromium that makes no request of its own."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
