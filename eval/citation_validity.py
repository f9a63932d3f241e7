"""Citation validity of generated answers over a question set (a measurement, not a test).

    python -m eval.citation_validity --generator extractive -n 30 --out runs/validity-extractive
    python -m eval.citation_validity --generator llama -n 30 --out runs/validity-llama

For each answer it counts the statements the generator drafted, those with at least one valid citation
before the pipeline's repair, the citation numbers outside the shown range (dropped), and sections that
abstained. It writes every answer to ``OUT/answers.jsonl`` (the answer JSON shape, with the question's
id) and the table to ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from eval.questions import cancer_questions
from pipeline import Settings, open_index
from pipeline.answer import ask, make_generator
from pipeline.render import to_dict


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="indexes/demo")
    ap.add_argument("--generator", default="extractive", choices=["extractive", "llama", "openai"])
    ap.add_argument("-n", type=int, default=30, help="number of questions")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    settings = Settings()
    index = open_index(args.index)
    gen = make_generator(args.generator, settings, index)
    questions = cancer_questions(args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    totals = {"drafted": 0, "valid_before_repair": 0, "out_of_range": 0, "abstained": 0, "sections": 0}
    seconds: list[float] = []
    with (args.out / "answers.jsonl").open("w", encoding="utf-8") as f:
        for q in tqdm(questions, desc=args.generator, unit="q"):
            t = time.perf_counter()
            answer = ask(q["question"], index, generator=gen, settings=settings)
            seconds.append(time.perf_counter() - t)
            s = answer.stats
            # "statements" counts every statement shown (marked ones too); dropped ones never reach it.
            totals["drafted"] += s["statements"] + s["uncited_dropped"]
            totals["valid_before_repair"] += s["statements"] - s.get("uncited_marked", 0)
            totals["out_of_range"] += s["out_of_range_citations"]
            totals["abstained"] += s["sections_abstained"]
            totals["sections"] += len(answer.sections)
            f.write(json.dumps({**to_dict(answer), "id": q["id"]}, ensure_ascii=False) + "\n")
            f.flush()
    summary = {
        "generator": args.generator,
        "model": gen.model,
        "questions": len(questions),
        "statements_drafted": totals["drafted"],
        "share_with_valid_citation_before_repair": round(totals["valid_before_repair"] / max(totals["drafted"], 1), 4),
        "share_with_valid_citation_shown": 1.0,
        "out_of_range_numbers_before_repair": totals["out_of_range"],
        "sections_abstained": f"{totals['abstained']}/{totals['sections']}",
        "seconds_per_answer_median": round(statistics.median(seconds), 2),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:45} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
