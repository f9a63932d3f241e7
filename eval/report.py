"""The faithfulness report: one self-contained HTML page, every text escaped, that passes the Nu HTML checker and
axe-core's WCAG 2 AA rules (tests/test_html_valid.py)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.verdicts import Verdict
from pipeline.types import Answer

# Greys keep WCAG AA contrast (4.5:1) on white and on the tinted statement boxes: .meta's #5a6478 has 6.0:1 and
# 5.6:1 (its #778 had 4.4:1 and 4.1:1).
_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #dde;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.bad{color:#a51d2d}.stmt{margin:.8rem 0;padding:.5rem .7rem;
border-left:3px solid #a51d2d;background:#fbf6f6}.passage{font-size:.85em;color:#445;margin:.3rem 0 .3rem 1rem;
white-space:pre-wrap}.meta{color:#5a6478;font-size:.85em}
"""


def histogram_svg(
    scores: Sequence[float], threshold: float, bins: int = 20, width: int = 560, height: int = 160
) -> str:
    """An inline SVG histogram of judge scores with the threshold marked."""
    if not scores:
        return "<p class='meta'>No scored statements.</p>"
    lo, hi = min(min(scores), threshold), max(max(scores), threshold)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int((s - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    bw = width / bins

    def colour(i: int) -> str:
        return "#3b7" if lo + (i + 0.5) * (hi - lo) / bins >= threshold else "#c55"

    bars = "".join(
        f'<rect x="{i * bw:.1f}" y="{height - 20 - (c / top) * (height - 30):.1f}" width="{bw - 1:.1f}" '
        f'height="{(c / top) * (height - 30):.1f}" fill="{colour(i)}"/>'
        for i, c in enumerate(counts)
    )
    tx = (threshold - lo) / (hi - lo) * width
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="histogram of judge scores">{bars}'
        f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="0" y2="{height - 20}" stroke="#222" stroke-dasharray="4 3"/>'
        f'<text x="0" y="{height - 4}" font-size="11">{lo:.2f}</text>'
        f'<text x="{width - 30}" y="{height - 4}" font-size="11">{hi:.2f}</text>'
        f'<text x="{min(tx + 4, width - 120):.1f}" y="12" font-size="11">threshold {threshold:.2f}</text></svg>'
    )


def _row(name: str, f: dict[str, Any]) -> str:
    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    return (
        f"<tr><td>{html.escape(name)}</td><td>{f['statements']}</td><td>{pct(f['citation_recall'])}</td>"
        f"<td>{pct(f['citation_precision'])}</td><td>{pct(f['supported_share'])}</td>"
        f"<td>{f.get('contradicted', 0)}</td><td>{f['unsupported']}</td>"
        f"<td>{f['no_citation']}</td><td>{f['bad_citation']}</td></tr>"
    )


def write_report(
    path: Path,
    answers: Sequence[tuple[str, Answer, dict[str, Any]]],
    verdicts: Sequence[Verdict],
    summary: dict[str, Any],
) -> None:
    e = html.escape
    by_id = {aid: a for aid, a, _ in answers}
    head = (
        "<tr><th>section</th><th>statements</th><th>citation recall</th><th>citation precision</th><th>supported</th>"
        "<th>contradicted</th><th>unsupported</th><th>no citation</th><th>bad citation</th></tr>"
    )
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Citation faithfulness</title>",
        # role="main" on a div: the same landmark as <main>, with a tag the escaping tests allow (tests/hostile.py).
        f"<style>{_CSS}</style></head><body><div role='main'>",
        "<h1>Citation faithfulness</h1>",
        f"<p class='meta'>{summary['answers']} answers · judge {e(summary['judge'])} "
        f"({e(summary['judge_fingerprint'])}) · threshold {summary['threshold']:.3f}</p>",
        "<table>" + head + _row("overall", summary["overall"]),
    ]
    out.extend(_row(name, f) for name, f in summary["sections"].items())
    out.append("</table><h2>Judge scores</h2>")
    out.append(histogram_svg([v.score for v in verdicts if v.score is not None], summary["threshold"]))
    out.append("<p class='meta'>Green: at or above the threshold (supported); red: below.</p>")
    # Contradictions first (a statement its own source says otherwise is the worst error), then worst answers.
    worst = sorted(
        summary["per_answer"],
        key=lambda a: (
            -a.get("contradicted", 0),
            a["supported_share"] if a["supported_share"] is not None else 1.0,
            a["answer_id"],
        ),
    )
    n_contra = summary["overall"].get("contradicted", 0)
    title = "Statements contradicted or not supported" if n_contra else "Statements not supported"
    out.append(f"<h2>{title}, contradictions and worst answers first</h2>")
    shown = 0
    for a in worst:
        bad = [v for v in verdicts if v.answer_id == a["answer_id"] and v.label != "supported"]
        bad.sort(key=lambda v: v.label != "contradicted")  # stable: the answer's own order within each kind
        if not bad:
            continue
        answer = by_id[a["answer_id"]]
        refs = {r.n: r for r in answer.references}
        contra = f" · {a['contradicted']} contradicted" if a.get("contradicted") else ""
        out.append(
            f"<h3>{e(answer.question)}</h3><p class='meta'>answer {e(a['answer_id'])} · "
            f"{a['supported']}/{a['statements']} supported{contra}</p>"
        )
        for v in bad:
            score = "–" if v.score is None else f"{v.score:.3f}"
            out.append(
                f"<div class='stmt'><b class='bad'>{e(v.label)}</b> "
                f"<span class='meta'>score {score} · {e(v.section)}</span>"
                f"<div>{e(v.text)}</div>"
            )
            for n in v.citations:
                r = refs[n]
                for p in r.passages:
                    page = e(f" p. {p.page}") if p.page else ""  # escaped too: a hand-made answers file may hold text
                    out.append(f"<div class='passage'>[{n}] {e(r.title)}{page}: {e(p.text)}</div>")
            if v.bad_citations:
                out.append(f"<div class='passage bad'>cites {e(str(list(v.bad_citations)))}: no such reference</div>")
            out.append("</div>")
            shown += 1
    if not shown:
        out.append("<p>Every statement is supported by the passages it cites.</p>")
    out.append("</div></body></html>\n")
    path.write_text("".join(out), encoding="utf-8")
