"""What reranking costs an answer: seconds to re-score a section's candidates, by variant (a benchmark).

For each question of the abstention set, the ``--candidates`` guideline hits of the demo index are re-scored by
the relevance model in each variant, and the median and 95th percentile seconds per section are printed with the
ratio to the baseline (the committed settings, measured in the same run on the same machine), and how often each
variant's top passage is the baseline's. Variants:

- ``baseline``: as committed (``max_windows`` from ``checker.json``, float32, or bf16 where the CPU has it);
- ``windows=N``: at most N windows of a long passage scored (those sharing most words with the question);
- ``int8``: the encoder's linear layers quantised to int8 (``torch.ao.quantization.quantize_dynamic``).

    python -m eval.bench_rerank --index indexes/demo --limit 30
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import pipeline
from eval.abstention import load_questions
from pipeline.relevance import RelevanceModel


def quantised(model: RelevanceModel) -> RelevanceModel:
    """A copy whose encoder's linear layers run in int8 (dynamic quantisation)."""
    import torch

    other = copy.copy(model)
    other.model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model.model), {torch.nn.Linear}, torch.qint8)
    other.bf16 = False
    return other


def with_windows(model: RelevanceModel, n: int) -> RelevanceModel:
    other = copy.copy(model)
    other.config = copy.copy(model.config)
    other.config.max_windows = n
    return other


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_rerank", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=Path("indexes/demo"))
    ap.add_argument("--weights", type=Path, default=None, help="relevance weights (default: the bundled ones)")
    ap.add_argument("--candidates", type=int, default=40)
    ap.add_argument("--limit", type=int, default=30, help="questions (from the start of the abstention set)")
    args = ap.parse_args(argv)
    index = pipeline.open_index(args.index)
    base = RelevanceModel(args.weights) if args.weights else RelevanceModel()
    variants = {"baseline": base, "windows=2": with_windows(base, 2), "windows=1": with_windows(base, 1)}
    variants["int8"] = quantised(base)
    variants["int8 windows=2"] = with_windows(variants["int8"], 2)
    questions = [q.question for q in load_questions()][: args.limit]
    hits = index.search_many(questions, args.candidates, kind="guideline")
    base.relevance(questions[0], hits[0])  # warm up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    tops: dict[str, list[int]] = {name: [] for name in variants}
    for q, hs in zip(questions, hits, strict=True):
        for name, model in variants.items():  # interleaved, so machine noise falls on every variant alike
            t0 = time.perf_counter()
            scores = model.relevance(q, hs)
            seconds[name].append(time.perf_counter() - t0)
            tops[name].append(int(np.argmax(scores)))
    p50 = float(np.median(seconds["baseline"]))
    print(f"{len(questions)} sections of {args.candidates} candidates; {index.id}")
    print(f"{'variant':<16}{'p50 s':>8}{'p95 s':>8}{'x baseline':>12}{'same top':>10}")
    for name in variants:
        s = np.array(seconds[name])
        same = np.mean([a == b for a, b in zip(tops[name], tops["baseline"], strict=True)])
        print(f"{name:<16}{np.median(s):>8.3f}{np.percentile(s, 95):>8.3f}{np.median(s) / p50:>12.2f}{same:>10.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
