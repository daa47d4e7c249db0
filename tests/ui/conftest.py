"""Browser tests: Playwright drives Debian's Chromium (``apt-get install -y chromium``;
Playwright's own browser download cannot work here) against a real ``cauce server`` on
loopback. Each test gets a fresh workspace on the session's server (``remote_workspace``: what
it logs goes through the server too) and a new browser page 1280 by 800 pixels.

Screenshots of each page go to ``build/ui-screenshots`` (``CAUCE_UI_SCREENSHOTS`` elsewhere),
for a person to look at. Under ``CI=true`` a missing Chromium fails; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cauce.workspace import Workspace

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(
    os.environ.get("CAUCE_UI_SCREENSHOTS", Path(__file__).parents[2] / "build" / "ui-screenshots")
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    if not Path(CHROMIUM).exists():
        why = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(why + ": .ci/run installs it")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield found
        found.close()


@pytest.fixture
def ui(remote_workspace: Workspace, browser: Any) -> Iterator[Any]:
    """A browser page and the UI's address for the test's workspace (``ui.at(path)``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = remote_workspace.settings.server_url
    assert base is not None
    page.at = lambda path: f"{base}{path}"  # type: ignore[attr-defined]
    page.shot = lambda name: _shot(page, name)  # type: ignore[attr-defined]
    yield page
    context.close()
    assert errors == [], errors  # no script failed on any page the test opened


def _shot(page: Any, name: str) -> None:
    """A screenshot of the whole page, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
