"""Benchmark: time to first statement and total time per generator, and the pipeline's overhead
against bare llama.cpp completions of the same prompts (a measurement, not a test).

    python -m eval.bench_answer --index indexes/demo --repeats 3

For ``llama`` the pipeline run records every (messages, schema, max_tokens) it sends; the bare run
replays exactly those through ``Llama.create_chat_completion`` on the same loaded model, with no
retrieval, parsing, citation checks or rendering. Runs alternate (bare, pipeline, bare, ...) so the
model's prefix cache helps both alike; medians are reported. Overhead = pipeline / bare - 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

from eval.questions import SEED
from pipeline import Settings, open_index
from pipeline.answer import ask_stream
from pipeline.generate import LLMGenerator, make_generator
from pipeline.types import AnswerDone, ItemWritten


class Recording:
    """Wraps a chat backend and records what the pipeline sends through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any], int]] = []

    @property
    def model(self) -> str:
        return str(self.inner.model)

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        self.calls.append((messages, schema, max_tokens))
        yield from self.inner.stream(messages, schema, max_tokens)


def time_pipeline(question: str, index: Any, gen: Any, settings: Settings) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    for ev in ask_stream(question, index, generator=gen, settings=settings):
        if first is None and isinstance(ev, ItemWritten):
            first = time.perf_counter() - t0
        if isinstance(ev, AnswerDone):
            break
    return first or float("nan"), time.perf_counter() - t0


def time_bare(llm: Any, calls: list[tuple[list[dict[str, str]], dict[str, Any], int]]) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    for messages, schema, max_tokens in calls:
        for chunk in llm.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
        ):
            if first is None and chunk["choices"][0].get("delta", {}).get("content"):
                first = time.perf_counter() - t0
    return first or float("nan"), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="indexes/demo")
    ap.add_argument("--question", default=SEED)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args(argv)
    settings = Settings()
    index = open_index(args.index)
    index.search("warm up", k=1)  # load the embedder and BM25 before any clock starts
    rows: dict[str, dict[str, float]] = {}

    ext = make_generator("extractive", settings, index)
    runs = [time_pipeline(args.question, index, ext, settings) for _ in range(args.repeats + 1)][1:]
    rows["extractive (pipeline)"] = {
        "first_s": statistics.median(r[0] for r in runs),
        "total_s": statistics.median(r[1] for r in runs),
    }

    gen = make_generator("llama", settings, index)
    assert isinstance(gen, LLMGenerator)
    rec = Recording(gen.backend)
    gen.backend = rec
    _ = rec.inner.llm  # load the model outside the clock
    time_pipeline(args.question, index, gen, settings)  # warm-up; records the calls
    calls = list(rec.calls[-3:])  # guideline section, research section, follow-ups
    pipe, bare = [], []
    for _ in range(args.repeats):
        bare.append(time_bare(rec.inner.llm, calls))
        pipe.append(time_pipeline(args.question, index, gen, settings))
    rows["llama (bare llama.cpp, same prompts)"] = {
        "first_s": statistics.median(r[0] for r in bare),
        "total_s": statistics.median(r[1] for r in bare),
    }
    rows["llama (pipeline)"] = {
        "first_s": statistics.median(r[0] for r in pipe),
        "total_s": statistics.median(r[1] for r in pipe),
    }
    overhead = rows["llama (pipeline)"]["total_s"] / rows["llama (bare llama.cpp, same prompts)"]["total_s"] - 1
    print(f"question: {args.question}\nrepeats: {args.repeats} (medians)\n")
    print(f"{'route':40} {'first statement/token s':>24} {'total s':>9}")
    for name, r in rows.items():
        print(f"{name:40} {r['first_s']:24.2f} {r['total_s']:9.2f}")
    print(f"\npipeline overhead over bare llama.cpp (total time): {overhead:+.1%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"question": args.question, "repeats": args.repeats, "rows": rows, "overhead": overhead}, f, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
