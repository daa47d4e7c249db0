"""Browser tests: Playwright drives Debian's Chromium (``apt-get install -y chromium``;
Playwright's own browser download cannot work here) against a real ``cauce server`` on
loopback. Each test gets a fresh workspace on the session's server (``remote_workspace``: what
it logs goes through the server too) and a new browser page 1280 by 800 pixels.

Screenshots of each page go to ``build/ui-screenshots`` (``CAUCE_UI_SCREENSHOTS`` elsewhere),
with an ``index.html`` that shows them all, for a person to look at. Under ``CI=true`` a
missing Chromium fails; elsewhere it skips.
"""

from __future__ import annotations

import html
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


@pytest.fixture(scope="session", autouse=True)
def screenshots_index() -> Iterator[None]:
    """After the browser tests, ``index.html`` beside the screenshots: every one on one page,
    named, for the person who looks at them."""
    yield
    shots = sorted(SHOTS.glob("*.png")) if SHOTS.is_dir() else []
    if not shots:
        return
    figures = "\n".join(
        f"<figure><figcaption>{html.escape(p.stem)}</figcaption>"
        f'<a href="{html.escape(p.name)}"><img src="{html.escape(p.name)}" '
        f'alt="{html.escape(p.stem)}"></a></figure>'
        for p in shots
    )
    (SHOTS / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Cauce UI screenshots</title>"
        "<style>body{font-family:sans-serif;margin:2em}figure{margin:0 0 3em}"
        "img{max-width:100%;border:1px solid #ccc}figcaption{font-weight:bold;margin:.5em 0}"
        f"</style><h1>Cauce UI: {len(shots)} screenshots</h1>\n{figures}\n",
        encoding="utf-8",
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
