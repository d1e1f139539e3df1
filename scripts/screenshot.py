"""Retake docs/screenshot.png (and the phone-sized docs/screenshot-phone.png) from a running
chat (real model, real corpus).

    qa serve &                             # wait for "qa: chat  http://127.0.0.1:7860/"
    python scripts/screenshot.py [URL] [OUT] [WIDTHxHEIGHT]
    python scripts/screenshot.py http://127.0.0.1:7860/ docs/screenshot-phone.png 390x844

Needs Playwright and Chromium at /usr/bin/chromium (scripts/install-browser.sh).
"""

from __future__ import annotations

import sys

from playwright.sync_api import expect, sync_playwright

QUESTION = "what did Russia deploy to the Kurils?"


def main(url: str = "http://127.0.0.1:7860/", out: str = "docs/screenshot.png", size: str = "1440x1200") -> int:
    width, height = (int(n) for n in size.split("x"))
    phone = width < 600
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)
        page.goto(url)
        expect(page.locator("#qa-summary")).to_contain_text("documents", timeout=60_000)
        box = page.locator("#qa-question textarea")
        box.fill(QUESTION)
        box.press("Enter")
        expect(page.locator("#qa-chat .qa-card mark.qa-hl").first).to_be_visible(timeout=60_000)
        if not phone:  # on a phone the document opens below the chat: show the answer instead
            page.locator("#qa-chat a.qa-open").first.click()
            expect(page.locator("#qa-viewer mark.qa-span")).to_be_in_viewport(timeout=30_000)
        page.wait_for_timeout(800)  # let the smooth scrolling settle before the picture
        page.screenshot(path=out)
        browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
