"""With QA_API_TOKEN set, a real Chromium signs in on the chat page and then chats as before;
the page works under the content-security policy (no console errors from blocked resources)."""

from __future__ import annotations

import pytest

from tests.browser import launch, require_chromium

pytestmark = pytest.mark.browser

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

from tests.web_helpers import running_app, write_corpus  # noqa: E402

TOKEN = "browser-token-0123456789abcdef"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-token")
    corpus = write_corpus(folder / "corpus")
    with running_app(corpus, folder / "index", folder / "app.log", QA_API_TOKEN=TOKEN) as url:
        yield url


def test_sign_in_then_chat(app, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(30_000)
        blocked: list[str] = []
        page.on(
            "console",
            lambda m: blocked.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
        )
        try:
            page.goto(app)
            expect(page.locator("#qa-sign-in")).to_be_visible()
            page.fill("#qa-token", "wrong-token-wrong-token")
            page.click("#qa-sign-in")
            expect(page.locator("p.error")).to_contain_text("Wrong token")
            page.fill("#qa-token", TOKEN)
            page.click("#qa-sign-in")
            expect(page.locator("#qa-summary")).to_contain_text("documents", timeout=60_000)
            box = page.locator("#qa-question textarea")
            box.fill("What did Russia deploy to the Kuril islands?")
            box.press("Enter")
            expect(page.locator("#qa-chat .qa-reply")).to_have_count(1, timeout=60_000)
            expect(page.locator("#qa-chat .qa-reply").first).to_contain_text("S-300V4")
            assert not blocked, blocked
        finally:
            page.screenshot(path=str(tmp_path / "signed-in.png"))
            browser.close()
