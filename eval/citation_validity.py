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
from pipeline.answer import ask
from pipeline.generate import make_generator
from pipeline.types import to_dict


def summarise(answers: list[dict[str, object]], generator: str, model: str, seconds: list[float]) -> dict[str, object]:
    """The validity table from answers in the JSON shape (their ``stats``)."""
    drafted = valid = out_of_range = abstained = sections = 0
    quotes = {
        "quotes_found": 0,
        "quotes_moved": 0,
        "quotes_not_found": 0,
        "quotes_dropped": 0,
        "beyond_quote_dropped": 0,
        "beyond_quote_marked": 0,
        "sections_failed": 0,
    }
    for a in answers:
        s = a["stats"]
        assert isinstance(s, dict)
        # "statements" counts every statement shown (marked ones too); dropped ones never reach it.
        drafted += (
            s["statements"] + s["uncited_dropped"] + s.get("quotes_dropped", 0) + s.get("beyond_quote_dropped", 0)
        )
        valid += s["statements"] - s.get("uncited_marked", 0)
        out_of_range += s["out_of_range_citations"]
        abstained += s["sections_abstained"]
        sections += len(a["sections"])  # type: ignore[arg-type]
        for k in quotes:
            quotes[k] += int(s.get(k, 0))
    checked = quotes["quotes_found"] + quotes["quotes_moved"] + quotes["quotes_not_found"]
    found = quotes["quotes_found"] + quotes["quotes_moved"]
    return {
        "generator": generator,
        "model": model,
        "questions": len(answers),
        "statements_drafted": drafted,
        "share_with_valid_citation_before_repair": round(valid / max(drafted, 1), 4),
        "share_with_valid_citation_shown": 1.0,
        "out_of_range_numbers_before_repair": out_of_range,
        "sections_abstained": f"{abstained}/{sections}",
        **quotes,
        "share_of_quotes_found": round(found / checked, 4) if checked else None,
        "seconds_per_answer_median": round(statistics.median(seconds), 2) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="indexes/demo")
    ap.add_argument("--generator", default="extractive", choices=["extractive", "llama", "openai"])
    ap.add_argument("-n", type=int, default=30, help="number of questions")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--summarise", action="store_true", help="only summarise OUT/answers.jsonl (e.g. a cut-short run)")
    ap.add_argument(
        "--resume", action="store_true", help="keep OUT/answers.jsonl and answer only the questions not in it"
    )
    args = ap.parse_args(argv)
    if args.summarise:
        loaded = [json.loads(x) for x in (args.out / "answers.jsonl").read_text().splitlines() if x.strip()]
        times = [float(r["seconds"]) for r in loaded if "seconds" in r]
        summary = summarise(loaded, args.generator, str(loaded[0]["run"]["model"]) if loaded else "", times)
        for k, v in summary.items():
            print(f"{k:45} {v}")
        return 0

    settings = Settings()
    index = open_index(args.index)
    gen = make_generator(args.generator, settings, index)
    questions = cancer_questions(args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "answers.jsonl"
    rows: list[dict[str, object]] = []
    if args.resume and path.exists():
        # A run cut short (a killed job, an ended session) keeps every answer it wrote; a half-written last line
        # is dropped and that question asked again.
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    seconds = [float(str(r["seconds"])) for r in rows if "seconds" in r]
    done = {r["id"] for r in rows}
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for q in tqdm([q for q in questions if q["id"] not in done], desc=args.generator, unit="q"):
            t = time.perf_counter()
            answer = ask(q["question"], index, generator=gen, settings=settings)
            seconds.append(time.perf_counter() - t)
            row = {**to_dict(answer), "id": q["id"], "seconds": round(seconds[-1], 2)}
            rows.append(row)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
    summary = summarise(rows, args.generator, gen.model, seconds)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:45} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
