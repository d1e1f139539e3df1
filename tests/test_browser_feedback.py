"""A real Chromium gives feedback in the web chat: 👎 on an answer and "This passage answered it"
on a source card; both reach `qa report` and `qa feedback export` after the index is rebuilt.

Needs Debian's Chromium at /usr/bin/chromium (scripts/install-browser.sh installs it).
"""

from __future__ import annotations

import json

import pytest

from tests.browser import launch, require_chromium

pytestmark = pytest.mark.browser

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=30_000)

from qa.cli import main  # noqa: E402
from tests.web_helpers import running_app, write_corpus  # noqa: E402

QUESTION = "What did Russia deploy to the Kuril islands?"
OTHER = "What did Abe propose to Putin?"


def test_thumbs_down_and_answered_reach_report_and_export_after_a_rebuild(tmp_path, monkeypatch, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    with (
        running_app(corpus, index, tmp_path / "app.log") as url,
        sync_api.sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.set_default_timeout(30_000)
        try:
            page.goto(url)
            expect(page.locator("#qa-summary")).to_contain_text("documents")
            box = page.locator("#qa-question textarea")
            box.fill(QUESTION)
            box.press("Enter")
            expect(page.locator("#qa-chat .qa-reply")).to_have_count(1)
            card = page.locator("#qa-chat .qa-reply").last.locator("article.qa-card").nth(1)
            gold = card.locator(".qa-where").inner_text()
            card.locator("a.qa-answered").click()
            expect(card.locator("a.qa-answered")).to_have_text("Noted: this passage answered it")
            note = page.locator("#qa-feedback-note")
            expect(note).to_contain_text("Thank you: noted that source 2 answered the question.")

            box.fill(OTHER)
            box.press("Enter")
            expect(page.locator("#qa-chat .qa-reply")).to_have_count(2)
            page.locator("#qa-chat [aria-label='Dislike']").last.click()
            expect(note).to_contain_text("Thank you: noted that this answer did not help.")
        finally:
            page.screenshot(path=str(tmp_path / "last.png"))
            browser.close()

    for name, value in {"QA_CORPUS": str(corpus), "QA_INDEX": str(index), "QA_MODEL": "hash"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QA_MIN_RELEVANCE", "0")
    assert main(["index", "--rebuild", "--quiet"]) == 0
    capsys.readouterr()

    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["asked"], report["thumbed_down"], report["answered"]) == (2, 1, 1)
    assert report["thumbed_down_questions"] == [OTHER]

    questions = tmp_path / "labelled.jsonl"
    assert main(["feedback", "export", "--questions", str(questions)]) == 0
    (line,) = [json.loads(text) for text in questions.read_text(encoding="utf-8").splitlines()]
    span = line["spans"][0]
    assert line["question"] == QUESTION and f"characters {span['start']}–{span['end']}" in gold
