"""The demo paper page in real headless Chromium: click the button, see findings and highlights."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from keyfindings.service import FindingsService
from keyfindings.service.app import create_app
from tests.conftest import running
from tests.scripted_server import ScriptedServer, chat
from tests.synthetic import good_answer

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test.sh installs it)",
)


def test_button_renders_findings_and_highlights_evidence(
    make_summarizer: Any, server: ScriptedServer
) -> None:
    from playwright.sync_api import sync_playwright

    def answer(body: dict[str, Any]) -> Any:
        reply = chat(good_answer(body["messages"][1]["content"]))
        reply.delay = 0.3  # long enough to see the loading state
        return reply

    server.handler = answer
    service = FindingsService(make_summarizer())
    app = create_app(service, demo_paper=ROOT / "examples" / "paper.xml")
    ARTIFACTS.mkdir(exist_ok=True)
    with running(app) as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1000, "height": 1300})
        page.goto(base_url + "/")
        page.wait_for_selector("text=A home-based walking programme")
        assert page.locator(".sentence").count() == 10
        page.click("#kf-button")
        assert page.locator("#kf-button").inner_text().startswith("Generating")
        page.wait_for_selector("li.finding")
        assert page.locator("#study-type").inner_text() == "randomized controlled trial"
        assert "key_findings@v1" in page.locator("#provenance").inner_text()
        first = page.locator("li.finding").first
        evidence = first.get_attribute("data-evidence")
        first.click()
        highlighted = page.locator(".sentence.hl")
        assert highlighted.count() == 1
        assert highlighted.first.get_attribute("data-n") == evidence
        page.screenshot(path=str(ARTIFACTS / "demo-page.png"), full_page=True)
        browser.close()
    service.close()
    assert server.calls == 1
