"""The web page in a real browser (Debian's chromium, driven by Playwright) against a real ``medcite serve``
process over a real index, with the extractive generator: ask, watch it stream, open a citation with the
keyboard, ask a suggested follow-up, approve the answer, reload. axe-core and the Nu HTML checker on each page.

Screenshots go to ``MEDCITE_SCREENSHOTS`` when it is set (``docs/`` holds the ones looked at for the README).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.browser import (
    axe_violations,
    chromium_available,
    chromium_page,
    describe_violations,
    java_available,
    nu_errors,
)
from tests.test_serve_live import serving

pytestmark = pytest.mark.slow

SEED = "What is the treatment for oligoprogressive colorectal cancer?"

# Records, in the page, every section heading of an answer while it is written and whether the answer was done.
WATCH = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    for (const h of document.querySelectorAll('#turns .draft h2')) {
      const saved = document.querySelector('#turns .saved') !== null;
      const key = h.textContent + (saved ? ' (done)' : '');
      if (!window.__seen.includes(key)) window.__seen.push(key);
    }
  }).observe(document.getElementById('turns'), {childList: true, subtree: true});
}"""


def _shot(page: object, name: str) -> None:
    folder = os.environ.get("MEDCITE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)  # type: ignore[attr-defined]


def _accessible(page: object, where: str) -> None:
    bad = axe_violations(page)  # type: ignore[arg-type]
    assert not bad, f"{where}:\n{describe_violations(bad)}"


def test_ask_follow_up_review_in_a_real_browser(real_index: Path, tmp_path: Path) -> None:
    reason = chromium_available() or java_available()
    if reason:
        pytest.skip(reason)
    with serving(real_index, tmp_path / "data", tmp_path / "serve.log", "--generator", "extractive") as (url, _):
        with chromium_page() as page:
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            _accessible(page, "the question page")
            page.evaluate(WATCH)
            page.fill("#question", SEED)
            page.click("#ask-button")
            page.wait_for_selector("#turns .turn .saved a", timeout=120_000)
            seen = page.evaluate("window.__seen")
            assert seen[:2] == ["From the Guidelines", "From the Research"], seen  # streamed before it was done
            answer = page.locator("#turns .turn").first
            assert answer.locator("h2", has_text="From the Guidelines").count() == 1
            assert answer.locator("h2", has_text="From the Research").count() == 1
            _shot(page, "serve-answer.png")

            # A citation opened with the keyboard alone: Tab until a citation number has focus, then Enter.
            for _ in range(80):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.matches('.mc-ref > a')"):
                    break
            else:
                pytest.fail("no citation number is reachable with Tab")
            popup = page.locator(".mc-ref:focus-within > .mc-pop")
            assert popup.is_visible() and popup.inner_text().strip()
            page.keyboard.press("Enter")
            assert page.evaluate("location.hash").startswith("#mc-")
            _shot(page, "serve-citation.png")
            _accessible(page, "the page with an answer and an open citation")

            # A suggested follow-up, asked in the same conversation.
            follow = page.locator("button.follow-up").first
            question = follow.inner_text()
            follow.click()
            page.wait_for_selector("#turns .turn:nth-child(2) .saved a", timeout=120_000)
            second = page.locator("#turns .turn").nth(1)
            assert question in second.inner_text()
            assert page.locator("#question-label").inner_text() == "Ask a follow-up question"

            # Approve the first answer on its own page, reload, and see the status.
            page.locator("#turns .turn .saved a").first.click()
            page.wait_for_selector(".answer-status")
            assert "Submitted" in page.locator(".answer-status").inner_text()
            page.select_option("#status-select", "approved")
            page.fill("#reviewer", "Dr Playwright")
            page.fill("#note", "Checked against the PDQ summary.")
            page.click(".review-box button[type=submit]")
            page.wait_for_load_state()
            page.reload()
            status = page.locator(".answer-status").inner_text()
            assert "Approved" in status and "Dr Playwright" in status and "Last updated" in status
            _shot(page, "serve-review.png")
            _accessible(page, "the answer page")
            answer_url = page.url
            page.goto(f"{url}/review")
            _accessible(page, "the review list")
            assert not errors, errors  # no CSP violation or script error in the console
        for path in ("/", "/review", answer_url.removeprefix(url)):
            problems = nu_errors(httpx.get(f"{url}{path}").text)
            assert not problems, f"{path}: {problems}"
