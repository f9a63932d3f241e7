"""The answer page, the notebook fragment and the faithfulness report in a real browser and the Nu HTML checker:
axe-core (WCAG 2 A and AA rules) finds no serious or critical violation, and the Nu checker no error.

Skipped, with the reason, where Debian's chromium or java is missing; ``.ci/run`` installs chromium first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from eval.faithfulness import evaluate
from pipeline.render import stylesheet, to_html, to_html_fragment
from pipeline.types import Answer, Group, Passage, Reference, RunInfo, Section, Statement, to_dict
from tests.browser import (
    axe_violations,
    chromium_available,
    chromium_browser,
    chromium_page,
    describe_violations,
    java_available,
    nu_errors,
)
from tests.fakes import ContradictionJudge

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

RUN = RunInfo("llama", "qwen2.5-coder-1.5b-instruct-q4_k_m", "3f9a0c1d", "b71e2a90", "demo-5c2f")
SBRT = (
    "Stereotactic body radiotherapy to the progressing lesions allowed patients with oligoprogressive colorectal "
    "cancer to continue the same line of systemic therapy for a median of 6 further months."
)
FOLFOX = "FOLFOX or CAPOX is recommended as first-line chemotherapy for metastatic colorectal cancer."


def _answer(answer_id: str = "a-7f3c", *, research: bool = True) -> Answer:
    """A realistic answer: a lead and headed groups, both sections, quotes, linked references with paged passages
    (one with more passages than a popup shows), follow-ups."""
    guideline = Section(
        "From the Guidelines",
        (
            Group(None, (Statement("Systemic chemotherapy is the backbone of treatment.", (1,), quote=FOLFOX),)),
            Group(
                "Local therapy",
                (
                    Statement("Resection or ablation of isolated liver metastases can be considered.", (2,)),
                    Statement("Radiotherapy may treat a few progressing sites.", (1, 2)),
                ),
            ),
            Group("Systemic therapy", (Statement("FOLFOX or CAPOX is given first.", (1,), quote=FOLFOX),)),
        ),
    )
    found = Section(
        "From the Research",
        (Group("Radiotherapy", (Statement("SBRT delayed a change of therapy.", (3,), quote=SBRT),)),),
    )
    abstained = Section(
        "From the Research",
        (Group(None, (Statement("No indexed research paper is close enough to this question."),)),),
        abstained=True,
    )
    nci = Reference(
        1,
        "guideline",
        "Colon Cancer Treatment (PDQ) – Health Professional Version",
        "National Cancer Institute",
        2024,
        "nci-colon",
        "https://www.cancer.gov/types/colorectal/hp/colon-treatment-pdq",
        "nci-colon",
        tuple(
            Passage(f"nci-{i}", 10 + i, f"{FOLFOX} Passage {i} of the treatment options.", "Treatment > Stage IV")
            for i in range(5)
        ),
    )
    esmo = Reference(
        2,
        "guideline",
        "Metastatic colorectal cancer: ESMO Clinical Practice Guideline",
        "ESMO",
        2023,
        "esmo-mcrc",
        None,
        "esmo-mcrc",
        (Passage("esmo-1", 4, "Local ablative treatment of oligometastatic disease can be considered.", "Local"),),
    )
    trial = Reference(
        3,
        "research",
        "SBRT for oligoprogressive colorectal cancer: a phase II trial",
        "Radiother Oncol",
        2022,
        "PMID 35123456",
        "https://pubmed.ncbi.nlm.nih.gov/35123456/",
        "pmid:35123456",
        (Passage("pm-1", None, f"Background. {SBRT} Toxicity was low."),),
    )
    return Answer(
        question="What is the treatment for oligoprogressive colorectal cancer?",
        sections=(guideline, found if research else abstained),
        references=(nci, esmo, trial) if research else (nci, esmo),
        disclaimer="This answer summarises the cited sources; it is no substitute for clinical judgement.",
        follow_ups=("What about RAS-mutant tumours?", "How is oligoprogression defined?"),
        run=RUN,
        id=answer_id,
    )


def _report(folder: Path) -> Path:
    """report.html of a faithfulness run with supported, unsupported and contradicted statements."""
    answers = [_answer(), _answer("a-2", research=False)]
    answers.append(
        Answer(
            "Is FOLFOX used for metastatic colorectal cancer?",
            (
                Section(
                    "From the Guidelines",
                    (
                        Group(
                            None,
                            (
                                Statement("FOLFOX is never recommended for metastatic colorectal cancer.", (1,)),
                                Statement("Green tea cures colorectal cancer.", (1, 4)),
                            ),
                        ),
                    ),
                ),
            ),
            _answer().references[:1],
            "Check the sources.",
            (),
            RUN,
            id="a-3",
        )
    )
    path = folder / "answers.jsonl"
    path.write_text("".join(json.dumps(to_dict(a)) + "\n" for a in answers), encoding="utf-8")
    evaluate(path, folder / "out", ContradictionJudge())
    return folder / "out" / "report.html"


def _notebook_page(*fragments: str) -> str:
    """A minimal valid page around notebook output: fragments that each carry their own ``<style>``."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>notebook</title></head>'
        f"<body><main>{''.join(fragments)}</main></body></html>"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = chromium_available()
    if reason:
        pytest.skip(reason)
    with chromium_browser() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with chromium_page(browser) as p:
        yield p


@pytest.fixture(scope="module")
def nu() -> None:
    reason = java_available()
    if reason:
        pytest.skip(reason)


def _assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)
    landmarks = axe_violations(page, impacts=("minor", "moderate", "serious", "critical"), tags=("best-practice",))
    assert not [v for v in landmarks if v["id"] in ("landmark-one-main", "region")], describe_violations(landmarks)


# --------------------------------------------------------------------------- Nu HTML checker


def test_the_answer_page_is_valid_html(nu: None) -> None:
    assert nu_errors(to_html(_answer(), asked="And for oligoprogression?")) == []


def test_the_report_is_valid_html(nu: None, tmp_path: Path) -> None:
    assert nu_errors(_report(tmp_path)) == []


def test_nu_errors_reports_a_style_in_the_body(nu: None) -> None:
    page = (
        '<!doctype html><html lang="en"><head><title>t</title></head><body><div><style>p{}</style></div></body></html>'
    )
    (error,) = nu_errors(page)
    assert "Element “style” not allowed as child of element “div”" in error


# --------------------------------------------------------------------------- axe-core in chromium


def test_the_answer_page_is_accessible_with_its_popups_and_passages_open(page: Page) -> None:
    page.set_content(to_html(_answer(), asked="And for oligoprogression?"))
    _assert_accessible(page)
    # A citation's popup opens from the keyboard: the first tab stop is the first citation number.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "1"
    assert page.locator(".mc-pop").first.is_visible() and not page.locator(".mc-pop").nth(1).is_visible()
    _assert_accessible(page)
    page.keyboard.press("Tab")  # into the open popup, which scrolls: it stays open
    assert page.evaluate("document.activeElement.className") == "mc-pop"
    assert page.locator(".mc-pop").first.is_visible()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the link's own target keeps it open
    assert page.locator(".mc-ref:target > .mc-pop").first.is_visible()
    page.eval_on_selector_all("details", "all => all.forEach(d => { d.open = true })")
    _assert_accessible(page)


def test_the_notebook_fragments_are_accessible_on_one_page(page: Page) -> None:
    page.set_content(_notebook_page(to_html_fragment(_answer()), to_html_fragment(_answer("a-2", research=False))))
    _assert_accessible(page)


def test_a_page_linking_the_stylesheet_looks_like_the_self_contained_one(page: Page) -> None:
    # A web app serves stylesheet() as a file and places fragments rendered without their own style.
    page.route("http://medcite.test/medcite.css", lambda r: r.fulfill(body=stylesheet(), content_type="text/css"))
    page.route(
        "http://medcite.test/",
        lambda r: r.fulfill(
            content_type="text/html",
            body=(
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title>'
                '<link rel="stylesheet" href="/medcite.css"></head>'
                f'<body><main class="mc-page">{to_html_fragment(_answer(), style=False)}</main></body></html>'
            ),
        ),
    )
    page.goto("http://medcite.test/")
    assert page.locator("style").count() == 0
    assert page.eval_on_selector(".mc-pop", "e => getComputedStyle(e).display") == "none", "the stylesheet applies"
    _assert_accessible(page)


def test_the_report_is_accessible(page: Page, tmp_path: Path) -> None:
    page.set_content(_report(tmp_path).read_text(encoding="utf-8"))
    _assert_accessible(page)


def test_axe_violations_reports_low_contrast(page: Page) -> None:
    page.set_content(_notebook_page('<p style="color:#aaa">faint</p>'))
    assert [v["id"] for v in axe_violations(page)] == ["color-contrast"]
