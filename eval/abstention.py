"""Abstention on the demo corpus: how often each section says "nothing in the corpus addresses this" (a measurement).

``eval/data/abstention.jsonl`` holds clinical questions the demo corpus cannot answer from its guidelines
(``"expect": "abstain"``: topics of the NGC summaries left out of the demo, and general medicine outside oncology
and migraine) and questions its guidelines answer (``"expect": "answer"``: PDQ summaries, SIGN 155, the CMS
measures, the USPSTF colorectal screening statement). Each question is asked as ``medcite ask`` asks it (a
settings preset and ``MEDCITE_*`` variables), and the report gives, per group, the share of guideline and
research sections that abstained, and lists the questions on the wrong side of the guideline section::

    python -m eval.abstention --index indexes/demo
    python -m eval.abstention --index indexes/demo --limit 10 --json runs/abstention.json
    MEDCITE_ANSWER__MIN_RELEVANCE=0.45 python -m eval.abstention --index indexes/demo
    python -m eval.abstention --scores            # choose thresholds on the tune half, report the held-out half

Every question belongs to a fixed half, ``tune`` or ``heldout`` (a hash of its id, as ``eval.retrieval`` splits
BioASQ). ``--scores`` writes no answers: per question it takes the guideline candidates ``ask`` would re-score and
records the best cosine (as ``ask`` computes it, over the section's first ``k`` hybrid hits) and the best
P(answers) of the relevance model among them; for each signal it reports the
AUROC of answer against abstain, the threshold with the best balanced accuracy on the tune half, and the shares
that abstain and answer on the held-out half at that threshold. Thresholds for the settings are chosen this way,
never on the held-out half.

Only the guideline section is held to a side: for an "abstain" question the research section may still find a
PubMedQA abstract on the topic. The exit code is 0 whatever the shares are (2 when the index cannot be opened).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

import pipeline
from eval.calibrate import auroc, choose_threshold
from eval.retrieval import half
from pipeline.answer import Prepared, prepare, quotas, select_sources
from pipeline.relevance import RelevanceModel
from pipeline.types import GUIDELINES_TITLE, RESEARCH_TITLE, Answer, Section

log = logging.getLogger("eval.abstention")

QUESTIONS = Path(__file__).parent / "data" / "abstention.jsonl"
DEFAULT_INDEX = Path("indexes/demo")
Expect = Literal["abstain", "answer"]
EXPECTS: tuple[Expect, ...] = ("abstain", "answer")
FIELDS = ("id", "question", "expect", "topic", "why")


@dataclass(frozen=True, slots=True)
class Question:
    """A question of the set: ``expect`` is what its guideline section should do."""

    id: str
    question: str
    expect: Expect
    topic: str
    why: str  # which section must abstain, or the document and heading that answers it


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pipeline did with one question."""

    question: Question
    guideline_abstained: bool
    research_abstained: bool
    seconds: float
    top_guideline: str | None = None  # title of the first reference the guideline section cites

    @property
    def wrong_side(self) -> bool:
        """The guideline section answered an "abstain" question, or abstained on an "answer" question."""
        return self.guideline_abstained != (self.question.expect == "abstain")


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    """The questions of a JSON-lines file, in file order.

    Args:
        path: one ``{"id", "question", "expect", "topic", "why"}`` object per line; blank lines are skipped.

    Raises:
        ValueError: a line that is not such an object, an ``expect`` other than abstain or answer, an empty
            question, or an id used twice.
    """
    out: list[Question] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: needs an object with string fields {list(FIELDS)}")
        missing = [f for f in FIELDS if not isinstance(row.get(f), str)]
        if missing:
            raise ValueError(f"{path}:{n}: needs string fields {list(FIELDS)}; missing or not text: {missing}")
        if row["expect"] not in EXPECTS:
            raise ValueError(f"{path}:{n}: expect is {row['expect']!r}; choose one of {list(EXPECTS)}")
        if not row["question"].strip():
            raise ValueError(f"{path}:{n}: the question is empty")
        if row["id"] in seen:
            raise ValueError(f"{path}:{n}: id {row['id']!r} is used twice")
        seen.add(row["id"])
        out.append(Question(**{f: row[f] for f in FIELDS}))
    return out


def split_of(question: Question) -> str:
    """``"tune"`` or ``"heldout"``: the fixed half a question belongs to."""
    return half(f"abstention:{question.id}")


def of_split(questions: Sequence[Question], split: str) -> list[Question]:
    """The questions of one half (``tune`` or ``heldout``), or all of them (``all``)."""
    if split not in ("tune", "heldout", "all"):
        raise ValueError(f"split is {split!r}; choose tune, heldout or all")
    return [q for q in questions if split == "all" or split_of(q) == split]


def first_per_group(questions: Sequence[Question], limit: int | None) -> list[Question]:
    """The first ``limit`` questions of each expect group (all when ``limit`` is None), in file order."""
    if limit is None:
        return list(questions)
    taken = dict.fromkeys(EXPECTS, 0)
    out = []
    for q in questions:
        if taken[q.expect] < limit:
            taken[q.expect] += 1
            out.append(q)
    return out


def _section(answer: Answer, title: str) -> Section | None:
    return next((s for s in answer.sections if s.title == title), None)


def top_reference(answer: Answer, section: Section) -> str | None:
    """Title of the first reference cited in ``section`` (None when it cites nothing)."""
    by_n = {r.n: r for r in answer.references}
    for group in section.groups:
        for statement in group.items:
            for n in statement.citations:
                if n in by_n:
                    return by_n[n].title
    return None


def outcome(question: Question, answer: Answer, seconds: float) -> Outcome:
    """The :class:`Outcome` of ``answer``; a section missing from it counts as abstained."""
    guideline = _section(answer, GUIDELINES_TITLE)
    research = _section(answer, RESEARCH_TITLE)
    return Outcome(
        question=question,
        guideline_abstained=guideline is None or guideline.abstained,
        research_abstained=research is None or research.abstained,
        seconds=seconds,
        top_guideline=None if guideline is None or guideline.abstained else top_reference(answer, guideline),
    )


def measure(
    questions: Iterable[Question],
    index: pipeline.Index,
    options: pipeline.AskOptions | Prepared | None = None,
    **changes: Any,
) -> list[Outcome]:
    """Ask every question of ``index`` and record which sections abstained.

    Args:
        questions: the questions, e.g. :func:`load_questions`.
        index: an opened index.
        options: how to answer (:class:`pipeline.AskOptions`); keyword arguments change single fields, as in
            :func:`pipeline.ask` (``generator=``, ``settings=``, ...). Pass a built generator rather than its
            name so that it is made once, not once per question.

    Returns:
        One :class:`Outcome` per question, in order.
    """
    out = []
    questions = list(questions)
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        answer = pipeline.ask(q.question, index, options, **changes)
        result = outcome(q, answer, time.perf_counter() - t0)
        out.append(result)
        log.info(
            "%d/%d %s: guideline %s, research %s (%.2f s)",
            i,
            len(questions),
            q.id,
            "abstained" if result.guideline_abstained else "answered",
            "abstained" if result.research_abstained else "answered",
            result.seconds,
        )
    return out


def summarise(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Per expect group (groups with no question left out): questions, shares of guideline and research sections
    that abstained, share with the guideline section on the expected side, and seconds per question."""
    out: dict[str, dict[str, float]] = {}
    for expect in EXPECTS:
        group = [o for o in outcomes if o.question.expect == expect]
        if not group:
            continue
        n = len(group)
        out[expect] = {
            "questions": n,
            "guideline_abstained": sum(o.guideline_abstained for o in group) / n,
            "research_abstained": sum(o.research_abstained for o in group) / n,
            "guideline_expected_side": sum(not o.wrong_side for o in group) / n,
            "seconds_per_question": sum(o.seconds for o in group) / n,
        }
    return out


# --------------------------------------------------------------------------- thresholds (--scores)

SIGNALS = ("cosine", "relevance")


def best_scores(
    questions: Sequence[Question],
    index: pipeline.Index,
    model: RelevanceModel | None,
    settings: pipeline.Settings,
    kind: str = "guideline",
) -> list[dict[str, Any]]:
    """Per question, what a section's abstention is decided on: the best cosine as ``ask`` computes it (over the
    section's first ``k`` hybrid hits, :func:`pipeline.answer.select_sources`) and, with ``model``, the best
    P(answers) among the ``rerank.candidates`` hybrid hits, with the passage that scored best."""
    k = quotas(settings)[kind]  # type: ignore[index]
    depth = settings.rerank.candidates
    texts = [q.question for q in questions]
    rows = []
    for q, hits in zip(questions, index.search_many(texts, depth, kind=kind), strict=True):  # type: ignore[arg-type]
        row: dict[str, Any] = {"id": q.id, "expect": q.expect, "split": split_of(q)}
        if hits:
            row["cosine"] = select_sources(index, q.question, kind, k, settings, retrieved=hits[:k])[1]  # type: ignore[arg-type]
            if model is not None:
                rel = model.relevance(q.question, hits)
                row["relevance"] = float(rel.max())
                row["best_passage"] = hits[int(rel.argmax())].chunk.embedding_text()[:160]
        rows.append(row)
    return rows


def named_heading(question: Question) -> str | None:
    """The heading an "answer" question's ``why`` names ("... heading 'Treatment of Stage IV ...'"), lower case."""
    m = re.search(r"heading '([^']+)'", question.why)
    return m.group(1).strip().lower() if m else None


def section_hits(
    questions: Sequence[Question], index: pipeline.Index, settings: pipeline.Settings, model: RelevanceModel | None
) -> dict[str, float]:
    """Guideline retrieval on the "answer" questions that name their heading: the share whose shown passages (the
    section's top ``k``, reranked when ``model`` is given) include one under that heading, and the mean
    reciprocal rank of the first such passage."""
    k = quotas(settings)["guideline"]
    named = [(q, h) for q in questions if q.expect == "answer" and (h := named_heading(q))]
    found, rr = [], []
    for q, heading in named:
        hits, _ = select_sources(index, q.question, "guideline", k, settings, reranker=model)
        ranks = [i for i, h in enumerate(hits, 1) if h.chunk.heading.lower().startswith(heading)]
        found.append(bool(ranks))
        rr.append(1.0 / ranks[0] if ranks else 0.0)
    return {"questions": len(named), "found_in_top_k": float(np.mean(found)), "mrr": float(np.mean(rr))}


def thresholds(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per signal: AUROC (answer vs abstain, all questions), the threshold chosen on the tune half, and at that
    threshold the held-out shares of "abstain" questions that abstain and "answer" questions that answer."""
    out: dict[str, dict[str, float]] = {}
    for signal in SIGNALS:
        have = [r for r in rows if signal in r]
        if not have:
            continue
        tune = [r for r in have if r["split"] == "tune"]
        held = [r for r in have if r["split"] == "heldout"]
        y = np.array([r["expect"] == "answer" for r in have], dtype=int)
        t = choose_threshold([r["expect"] == "answer" for r in tune], [r[signal] for r in tune])
        abstain = [r[signal] < t for r in held if r["expect"] == "abstain"]
        answer = [r[signal] >= t for r in held if r["expect"] == "answer"]
        out[signal] = {
            "auroc": auroc(y, [r[signal] for r in have]),
            "threshold": float(t),
            "heldout_abstain_share": float(np.mean(abstain)) if abstain else float("nan"),
            "heldout_answer_share": float(np.mean(answer)) if answer else float("nan"),
            "heldout_questions": len(held),
        }
    return out


def thresholds_report(table: dict[str, dict[str, float]]) -> str:
    head = f"{'signal':<10}{'AUROC':>8}{'threshold (tune)':>18}{'held-out abstain':>18}{'held-out answer':>17}"
    lines = [head]
    for signal, m in table.items():
        lines.append(
            f"{signal:<10}{m['auroc']:>8.3f}{m['threshold']:>18.3f}{m['heldout_abstain_share']:>18.1%}"
            f"{m['heldout_answer_share']:>17.1%}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the report


def report(outcomes: Sequence[Outcome]) -> str:
    """The table of :func:`summarise` and the questions whose guideline section is on the wrong side."""
    cols = ("questions", "guideline abstained", "research abstained", "expected side", "s/question")
    lines = [f"{'expect':<8}" + "".join(f"{c:>21}" for c in cols)]
    for expect, m in summarise(outcomes).items():
        lines.append(
            f"{expect:<8}{int(m['questions']):>21}{m['guideline_abstained']:>21.1%}{m['research_abstained']:>21.1%}"
            f"{m['guideline_expected_side']:>21.1%}{m['seconds_per_question']:>21.2f}"
        )
    answered = [o for o in outcomes if o.wrong_side and o.question.expect == "abstain"]
    abstained = [o for o in outcomes if o.wrong_side and o.question.expect == "answer"]
    lines += ["", f'"abstain" questions whose guideline section answered: {len(answered)}']
    lines += [f"  {o.question.id}: {o.question.question}\n    top reference: {o.top_guideline}" for o in answered]
    lines += ["", f'"answer" questions whose guideline section abstained: {len(abstained)}']
    lines += [f"  {o.question.id}: {o.question.question}" for o in abstained]
    return "\n".join(lines)


def to_json(outcomes: Sequence[Outcome], **about: Any) -> dict[str, Any]:
    """The ``--json`` payload: ``about`` (index, generator, ...), the summary and one row per question."""
    rows = [
        {**asdict(o.question), **{k: v for k, v in asdict(o).items() if k != "question"}, "wrong_side": o.wrong_side}
        for o in outcomes
    ]
    for row in rows:
        row["seconds"] = round(row["seconds"], 3)
    return {**about, "summary": summarise(outcomes), "questions": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.abstention``: measure abstention over the question set and print the report."""
    ap = argparse.ArgumentParser(prog="python -m eval.abstention", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder (default: indexes/demo)")
    ap.add_argument("--generator", default="extractive", help="generator name (default: extractive, no LLM)")
    ap.add_argument("--preset", default="default", help="settings preset; MEDCITE_* variables override it")
    ap.add_argument("--questions", type=Path, default=QUESTIONS, help="question file (default: the bundled set)")
    ap.add_argument("--limit", type=int, default=None, help="ask only the first N questions of each group")
    ap.add_argument("--split", default="all", choices=("tune", "heldout", "all"), help="which half to ask")
    ap.add_argument("--scores", action="store_true", help="choose thresholds on the tune half (no answers written)")
    ap.add_argument("--hits", action="store_true", help="do the guideline hits of answer questions hold their heading?")
    ap.add_argument("--json", type=Path, default=None, dest="json_path", help="also write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("eval", "pipeline"):  # not third-party INFO noise
        logging.getLogger(name).setLevel(logging.INFO)

    questions = first_per_group(of_split(load_questions(args.questions), args.split), args.limit)
    settings = pipeline.Settings.preset(args.preset)
    try:
        index = pipeline.open_index(args.index, settings=settings)
        if args.scores:
            return _scores(questions, index, settings, args.json_path)
        if args.hits:
            return _hits(questions, index, settings)
        generator = pipeline.make_generator(args.generator, settings, index)
    except pipeline.PipelineError as e:  # no index there yet, other settings, an unknown generator
        ap.error(f"{e} (the demo index: medcite index build --corpus demo)")
    # Prepared once: the models (and the relevance model, when switched on) load once, not once per question.
    outcomes = measure(questions, index, prepare(pipeline.AskOptions(generator=generator, settings=settings), index))
    print(f"index {index.id} ({args.index}), generator {generator.name}, questions {args.questions}")
    print(report(outcomes))
    if args.json_path is not None:
        payload = to_json(
            outcomes,
            index=index.id,
            index_path=str(args.index),
            generator=generator.name,
            model=generator.model,
            preset=args.preset,
            settings_hash=settings.hash(),
            settings_answer=settings.answer.model_dump(mode="json"),
            limit=args.limit,
        )
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _scores(
    questions: Sequence[Question], index: pipeline.Index, settings: pipeline.Settings, json_path: Path | None
) -> int:
    model = RelevanceModel(settings.rerank.path) if settings.rerank.path else RelevanceModel()
    rows = best_scores(questions, index, model, settings)
    table = thresholds(rows)
    print(f"index {index.id}: {len(rows)} questions, the best of {settings.rerank.candidates} guideline candidates")
    print(thresholds_report(table))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"index": index.id, "thresholds": table, "questions": rows}
        json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _hits(questions: Sequence[Question], index: pipeline.Index, settings: pipeline.Settings) -> int:
    k = quotas(settings)["guideline"]
    print(f"index {index.id}: guideline top {k} of the answer questions that name their heading")
    print(f"{'ranking':<24}{'questions':>10}{'heading in top k':>18}{'MRR':>8}")
    model = RelevanceModel(settings.rerank.path) if settings.rerank.path else RelevanceModel()
    for name, m in (("hybrid", None), ("hybrid + rerank (fused)", model)):
        r = section_hits(questions, index, settings, m)
        print(f"{name:<24}{r['questions']:>10}{r['found_in_top_k']:>18.1%}{r['mrr']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
