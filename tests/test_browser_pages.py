"""A real Chromium, signed in on a server with QA_API_TOKEN: a question answered from a PDF, its
citation opened, the page as printed with the sentence marked, and the link to the original PDF
at that page (served with the session cookie, like the picture).

Needs Debian's Chromium at /usr/bin/chromium (scripts/install-browser.sh installs it).
"""

from __future__ import annotations

import io
import re

import pytest

from tests.browser import launch, require_chromium

pytestmark = pytest.mark.browser

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
Image = pytest.importorskip("PIL.Image")

from tests.pdfgen import make_pdf  # noqa: E402
from tests.web_helpers import running_app, write_corpus  # noqa: E402

TOKEN = "browser-pages-token-0123456789ab"
TIMEOUT_MS = 60_000  # generous: the first page starts the rendering worker on a slow machine
SENTENCE = "Icebreaker Krasin escorted the tanker Vostok through Aniva Bay."


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-pages")
    corpus = write_corpus(folder / "corpus")
    pages = ["Sakhalin ferry timetables for the winter.", f"{SENTENCE} Ice was thick near Korsakov."]
    (corpus / "aniva-bay.pdf").write_bytes(make_pdf(pages))
    with running_app(corpus, folder / "index", folder / "app.log", QA_API_TOKEN=TOKEN) as url:
        yield url


def test_a_pdf_citation_opens_on_its_page_with_the_sentence_marked(app, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.set_default_timeout(TIMEOUT_MS)
        blocked: list[str] = []
        page.on(
            "console",
            lambda m: blocked.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
        )
        try:
            page.goto(app)
            page.fill("#qa-token", TOKEN)
            page.click("#qa-sign-in")
            expect(page.locator("#qa-summary")).to_contain_text("documents")
            box = page.locator("#qa-question textarea")
            box.fill("Which icebreaker escorted the tanker through Aniva Bay?")
            box.press("Enter")
            card = page.locator("#qa-chat article.qa-card").filter(has_text="aniva-bay.pdf").first
            expect(card.locator(".qa-where")).to_contain_text("aniva-bay.pdf, page 2")
            card.locator("a.qa-open").click()

            viewer = page.locator("#qa-viewer")
            expect(viewer.locator(".qa-page-view summary")).to_have_text(
                "Page 2 as printed: the cited sentence is marked"
            )
            picture = viewer.locator("img.qa-page")
            expect(picture).to_be_visible()
            expect(picture).to_have_attribute("src", re.compile(r"^/corpus-page/aniva-bay\.pdf\?start=\d+&end=\d+$"))
            # The picture loaded (with the session cookie, under the page's content-security policy).
            page.wait_for_function("() => document.querySelector('#qa-viewer img.qa-page').naturalWidth > 0")
            assert picture.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1000, 500]
            # The text view is still there, the sentence marked in it.
            expect(viewer.locator("mark.qa-sentence")).to_contain_text(SENTENCE)

            link = viewer.locator("a.qa-original")
            expect(link).to_have_text("Open the original PDF at page 2")
            expect(link).to_have_attribute("href", "/corpus/aniva-bay.pdf#page=2")
            expect(link).to_have_attribute("target", "_blank")
            original = page.request.get(app.rstrip("/") + "/corpus/aniva-bay.pdf")
            assert original.ok and original.headers["content-type"] == "application/pdf"
            assert original.headers["content-disposition"].startswith("inline")
            assert original.body().startswith(b"%PDF")
            # The link opens Chromium's PDF viewer in a new tab, under the served file's strict policy.
            with page.context.expect_page() as opened:
                link.click()
            pdf = opened.value
            pdf.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            pdf.wait_for_load_state()
            assert pdf.url.endswith("/corpus/aniva-bay.pdf#page=2")
            pdf.wait_for_function("() => document.body && document.body.style.backgroundColor !== ''")
            pdf.wait_for_timeout(1500)  # the viewer draws the pages
            shot = Image.open(io.BytesIO(pdf.screenshot())).convert("RGB")
            white = sum(1 for pixel in shot.getdata() if pixel == (255, 255, 255))
            assert white > 0.1 * shot.width * shot.height  # the pages are drawn, not a blocked plugin
            assert not blocked, blocked
        finally:
            page.screenshot(path=str(tmp_path / "pdf-page.png"), full_page=True)
            browser.close()
