"""Exact-answer recall of written answers on BioASQ factoid and list questions (a measurement).

Does an answer state the fact that was asked for? Each BioASQ factoid and list question comes with its gold
exact answers (each a list of synonyms: "PD-L1 status", "programmed death-ligand 1"). A question counts as
recalled when one synonym of one gold answer appears in the statements of its research section (lower case,
runs of other characters than letters and digits read as one space, whole words); for list questions the report
also gives the share of gold items found. Questions are split as ``eval.retrieval`` splits them: choose on
``tune``, report ``heldout``::

    python -m eval.exact_answers --split heldout --index indexes/bioasq
    MEDCITE_RERANK__ENABLED=true MEDCITE_RERANK__SENTENCES=true python -m eval.exact_answers --split heldout
    python -m eval.exact_answers --index indexes/demo --generator llama --split tune --limit 12 \
        --matching "cancer|tumou?r|carcinom|lymphoma|leuka?emi|melanoma|sarcoma|metasta"

The answers are written as ``medcite ask`` writes them (the settings preset and ``MEDCITE_*`` variables), by the
extractive generator unless ``--generator`` names another.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import pipeline
from eval.retrieval import gold_files, half
from pipeline.answer import prepare
from pipeline.corpus import default_mirror
from pipeline.types import RESEARCH_TITLE, Answer

log = logging.getLogger("eval.exact_answers")

TYPES = ("factoid", "list")


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: str
    body: str
    answers: tuple[tuple[str, ...], ...]  # gold items, each with its synonyms


def normalise(text: str) -> str:
    """Lower case, every run of characters other than letters and digits one space, padded by spaces."""
    return f" {' '.join(re.findall(r'[a-z0-9]+', text.lower()))} "


def load_questions(folder: Path, split: str = "heldout", types: Sequence[str] = TYPES) -> list[Question]:
    """BioASQ 7B-10B factoid and list questions of one half (``tune``, ``heldout`` or ``all``), each once."""
    seen: dict[str, Question] = {}
    for path in gold_files(folder, (7, 8, 9, 10)):
        for q in json.loads(path.read_text(encoding="utf-8"))["questions"]:
            if q["id"] in seen or q.get("type") not in types or (split != "all" and half(q["id"]) != split):
                continue
            raw = q.get("exact_answer") or []
            items = [item if isinstance(item, list) else [item] for item in raw]
            answers = tuple(tuple(str(s) for s in item if str(s).strip()) for item in items)
            answers = tuple(a for a in answers if a)
            if answers:
                seen[q["id"]] = Question(q["id"], q["type"], q["body"].strip(), answers)
    return list(seen.values())


def statements_text(answer: Answer, title: str = RESEARCH_TITLE) -> str:
    """The text of every statement of one section (none when it abstained)."""
    return " ".join(
        st.text for s in answer.sections if s.title == title and not s.abstained for g in s.groups for st in g.items
    )


def found_items(question: Question, text: str) -> list[bool]:
    """For each gold item: whether one of its synonyms appears in ``text`` as whole words."""
    norm = normalise(text)
    return [any(normalise(s).strip() and normalise(s) in norm for s in item) for item in question.answers]


def measure(questions: Sequence[Question], index: pipeline.Index, **changes: Any) -> list[dict[str, Any]]:
    """Ask each question (``pipeline.ask`` keyword arguments in ``changes``); one row per question."""
    rows = []
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        answer = pipeline.ask(q.body, index, **changes)  # options=: AskOptions or a Prepared run
        found = found_items(q, statements_text(answer))
        rows.append(
            {
                "id": q.id,
                "type": q.type,
                "recalled": any(found),
                "items_found": sum(found),
                "items": len(found),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        if i % 25 == 0:
            log.info("%d/%d questions, recall so far %.3f", i, len(questions), np.mean([r["recalled"] for r in rows]))
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for t in (*TYPES, "all"):
        group = [r for r in rows if t == "all" or r["type"] == t]
        if group:
            out[t] = {
                "questions": len(group),
                "recall": float(np.mean([r["recalled"] for r in group])),
                "item_recall": float(sum(r["items_found"] for r in group) / sum(r["items"] for r in group)),
                "seconds_per_question": float(np.median([r["seconds"] for r in group])),
            }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.exact_answers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=Path("indexes/bioasq"))
    ap.add_argument("--split", default="heldout", choices=("tune", "heldout", "all"))
    ap.add_argument("--generator", default="extractive")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--limit", type=int, default=None, help="the first N questions only")
    ap.add_argument(
        "--matching",
        default=None,
        help="only questions whose text matches this regular expression (case-insensitive); with --index "
        "indexes/demo, the demo corpus's own: the BioASQ documents it holds are those of its cancer questions",
    )
    ap.add_argument("--json", type=Path, default=None, dest="json_path")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("eval").setLevel(logging.INFO)
    mirror = default_mirror()
    if mirror is None:
        ap.error("no data mirror found (../shared/data or MEDCITE_MIRROR)")
    questions = load_questions(mirror / "research" / "bioasq", args.split)
    if args.matching:
        questions = [q for q in questions if re.search(args.matching, q.body, re.I)]
    questions = questions[: args.limit]
    settings = pipeline.Settings.preset(args.preset)
    try:
        index = pipeline.open_index(args.index, settings=settings)
        generator = pipeline.make_generator(args.generator, settings, index)
    except pipeline.PipelineError as e:
        ap.error(f"{e} (the BioASQ index: medcite index build --corpus bioasq --out indexes/bioasq)")
    rows = measure(
        questions, index, options=prepare(pipeline.AskOptions(generator=generator, settings=settings), index)
    )
    table = summarise(rows)
    print(f"index {index.id}, generator {generator.name}, split {args.split}, rerank {settings.rerank.model_dump()}")
    print(f"{'type':<9}{'questions':>10}{'recall':>9}{'item recall':>13}{'s/question (median)':>21}")
    for t, m in table.items():
        print(
            f"{t:<9}{m['questions']:>10}{m['recall']:>9.3f}{m['item_recall']:>13.3f}{m['seconds_per_question']:>21.2f}"
        )
    if args.json_path is not None:
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"index": index.id, "split": args.split, "summary": table, "questions": rows}
        args.json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
