"""Citation faithfulness of answers: is each statement supported by the passages it cites?

Reads answers in medcite's JSON shape (one per line; from medcite or any other tool) and writes:

- ``verdicts.jsonl``: one line per statement: ``answer_id``, ``section``, ``block``, ``item``, ``text``,
  ``label`` (supported | unsupported | no_citation | bad_citation), ``score`` (the judge's score of the
  cited passages together), ``citations`` (numbers judged), ``bad_citations`` (numbers that resolve
  to no reference), and per-citation ``precision`` flags;
- ``summary.json``: ALCE citation recall and precision and the share of statements supported,
  overall and per section, and per answer;
- ``report.html``: the figures, a score histogram, and the unsupported statements beside the passages
  they cite, worst answers first.

ALCE (Gao et al., 2023): a statement's citation *recall* is 1 when its cited passages together support
it. A citation is *irrelevant* when it alone does not support the statement and the other citations
still do without it; *precision* is the share of citations that are not irrelevant (a statement with
one citation earns its recall). Statements with no citation count as unsupported in recall.
Sections that abstained ("No guideline ... addresses this question") hold no claims and are skipped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.report import write_report
from eval.verdicts import LABELS, Verdict
from pipeline.answer import CONTRADICTED_MARK, UNCITED_MARK, UNSUPPORTED_MARK
from pipeline.cite import parse_citations
from pipeline.errors import InputError
from pipeline.judge import Judge, Pair, is_contradicted, relations_of
from pipeline.types import Answer, cited_evidence, from_dict


def read_answers(path: Path) -> list[tuple[str, Answer, dict[str, Any]]]:
    """(answer_id, Answer, raw dict) per line; answer_id is the answer's ``id`` or its line number."""
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                answer = from_dict(raw)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e})") from None
            except InputError as e:
                raise InputError(f"{path}:{lineno}: {e}") from None
            out.append((str(raw.get("id") or lineno), answer, raw))
    if not out:
        raise InputError(f"{path}: no answers in it")
    return out


def _statement_claim(text: str) -> str:
    # Statements may carry their own [n] markers (other tools' answers); the judge sees the claim alone, without
    # the mark medcite adds to a statement it kept but could not support (ask --verify --unsupported mark).
    claim = parse_citations(text, 0).text
    for mark in (UNSUPPORTED_MARK, CONTRADICTED_MARK, UNCITED_MARK):
        claim = claim.removesuffix(f" {mark}")
    return claim


@dataclass
class _Plan:
    """Every (claim, passage) pair the ALCE metrics need, judged in one batch."""

    pairs: list[Pair] = field(default_factory=list)
    index: dict[Pair, int] = field(default_factory=dict)

    def need(self, claim: str, passage: str) -> int:
        key = (claim, passage)
        if key not in self.index:
            self.index[key] = len(self.pairs)
            self.pairs.append(key)
        return self.index[key]


def judge_answers(answers: Sequence[tuple[str, Answer, dict[str, Any]]], judge: Judge) -> list[Verdict]:
    """Verdicts for every statement of every answer, with ALCE recall and per-citation precision."""
    plan = _Plan()
    jobs: list[dict[str, Any]] = []
    for answer_id, answer, _ in answers:
        refs = {r.n: r for r in answer.references}
        for section in answer.sections:
            if section.abstained:
                continue
            for bi, group in enumerate(section.groups):
                for ii, st in enumerate(group.items):
                    claim = _statement_claim(st.text)
                    extra = parse_citations(st.text, 0).invalid  # inline markers of other tools' answers
                    cites = tuple(dict.fromkeys((*st.citations, *extra)))
                    good = tuple(n for n in cites if n in refs)
                    bad = tuple(n for n in cites if n not in refs)
                    job: dict[str, Any] = {
                        "answer_id": answer_id,
                        "section": section.title,
                        "block": bi,
                        "item": ii,
                        "text": st.text,
                        "cites": good,
                        "bad": bad,
                    }
                    if good:
                        texts = cited_evidence(st, refs, good)  # what ask --verify judged, too
                        job["joint"] = plan.need(claim, "\n\n".join(texts))
                        if len(texts) > 1:  # one text for a quoted statement: its quote's sentences
                            job["single"] = [plan.need(claim, t) for t in texts]
                            job["without"] = [
                                plan.need(claim, "\n\n".join(t for j, t in enumerate(texts) if j != i))
                                for i in range(len(texts))
                            ]
                    jobs.append(job)
    scores = judge.score(plan.pairs) if plan.pairs else np.zeros(0, dtype=np.float32)
    ok = scores >= judge.threshold
    # A three-way judge also says which unsupported statements their passages contradict.
    failed = sorted({job["joint"] for job in jobs if job["cites"] and not ok[job["joint"]]})
    rel = relations_of(judge, [plan.pairs[i] for i in failed])
    contradicted = set() if rel is None else {i for i, c in zip(failed, is_contradicted(rel), strict=True) if c}
    verdicts = []
    for job in jobs:
        where = (job["answer_id"], job["section"], job["block"], job["item"], job["text"])
        if not job["cites"]:
            label = "bad_citation" if job["bad"] else "no_citation"
            verdicts.append(Verdict(*where, label, None, (), job["bad"]))
            continue
        joint = bool(ok[job["joint"]])
        relevant: list[bool]
        if joint and "single" in job:  # one text per citation (a quoted statement is judged on its quote's alone)
            relevant = [bool(ok[s]) or not bool(ok[w]) for s, w in zip(job["single"], job["without"], strict=True)]
        else:
            relevant = [joint] * len(job["cites"])
        label = "supported" if joint else "contradicted" if job["joint"] in contradicted else "unsupported"
        score = float(scores[job["joint"]])
        verdicts.append(Verdict(*where, label, score, job["cites"], job["bad"], tuple(relevant), int(joint)))
    return verdicts


def _figures(vs: Iterable[Verdict]) -> dict[str, Any]:
    vs = list(vs)
    n_cit = sum(len(v.citations) + len(v.bad_citations) for v in vs)
    counts = {label: sum(1 for v in vs if v.label == label) for label in LABELS}
    return {
        "statements": len(vs),
        "citation_recall": round(sum(v.recall for v in vs) / len(vs), 4) if vs else None,
        "citation_precision": round(sum(sum(v.relevant) for v in vs) / n_cit, 4) if n_cit else None,
        "supported_share": round(counts["supported"] / len(vs), 4) if vs else None,
        **counts,
    }


def summarise(verdicts: Sequence[Verdict], judge: Judge, n_answers: int) -> dict[str, Any]:
    by_section: dict[str, list[Verdict]] = defaultdict(list)
    by_answer: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        by_section[v.section].append(v)
        by_answer[v.answer_id].append(v)
    per_answer = []
    for aid, vs in by_answer.items():
        secs = defaultdict(list)
        for v in vs:
            secs[v.section].append(v)
        per_answer.append({"answer_id": aid, **_figures(vs), "sections": {s: _figures(x) for s, x in secs.items()}})
    return {
        "judge": judge.name,
        "judge_fingerprint": judge.fingerprint(),
        "threshold": judge.threshold,
        "answers": n_answers,
        "overall": _figures(verdicts),
        "sections": {s: _figures(vs) for s, vs in by_section.items()},
        "per_answer": per_answer,
    }


def evaluate(path: Path, out: Path, judge: Judge) -> dict[str, Any]:
    """Judge every answer in ``path``; write verdicts.jsonl, summary.json and report.html into ``out``."""
    answers = read_answers(path)
    verdicts = judge_answers(answers, judge)
    summary = summarise(verdicts, judge, len(answers))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "verdicts.jsonl").open("w", encoding="utf-8") as f:
        for v in verdicts:
            f.write(json.dumps(v.to_dict(), ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_report(out / "report.html", answers, verdicts, summary)
    return summary
