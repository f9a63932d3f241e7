"""Benchmark: judge throughput (pairs/s) and what reusing the passage prefix in llama.cpp's KV cache saves.

The trained checker is included when its weights are there (``pipeline/weights/checker``).

    python -m eval.bench_judge --passages 6 --claims 3

Claims that cite the same passage share the prompt up to the claim (the passage comes first), so the
LLM judge evaluates that prefix once. Both runs score the same pairs with the same loaded model; the
scores must agree, only the time and the number of evaluated tokens differ.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from eval.calibrate import faithfulness_root, load_set
from pipeline.judge import EmbeddingJudge, Judge, LexicalJudge, LLMJudge, Pair, TrainedJudge
from pipeline.judge.checker import WEIGHTS


def pairs_sharing_passages(n_passages: int, n_claims: int) -> list[Pair]:
    """SciFact passages with several claims each (their own plus claims written against other passages)."""
    data = load_set("scifact", faithfulness_root())
    by_passage: dict[str, list[str]] = {}
    for row in data:
        by_passage.setdefault(row.passage, []).append(row.claim)
    passages = sorted(by_passage, key=lambda p: (-len(by_passage[p]), p))[:n_passages]
    claims = [c for p in passages for c in by_passage[p]]
    out = []
    for i, p in enumerate(passages):
        own = by_passage[p][:n_claims]
        others = [claims[(i * 7 + j) % len(claims)] for j in range(n_claims - len(own))]
        out.extend((c, p) for c in own + others)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=6)
    ap.add_argument("--claims", type=int, default=3, help="claims per passage")
    ap.add_argument("--no-llm", action="store_true", help="skip the llm judge (minutes on two cores)")
    args = ap.parse_args(argv)
    pairs = pairs_sharing_passages(args.passages, args.claims)
    print(f"{len(pairs)} pairs over {args.passages} passages\n")
    print(f"{'judge':28} {'pairs/s':>9} {'tokens evaluated':>17}")
    judges: list[Judge] = [LexicalJudge(), EmbeddingJudge()]
    if (WEIGHTS / "checker.json").is_file():
        judges.append(TrainedJudge())
    for judge in judges:
        judge.score(pairs[:1])
        t = time.perf_counter()
        judge.score(pairs)
        print(f"{judge.name:28} {len(pairs) / (time.perf_counter() - t):9.2f} {'':>17}")
    if args.no_llm:
        return 0
    llm = LLMJudge(reuse_prefix=False)
    llm.score(pairs[:1])  # load the model
    results = {}
    for reuse in (False, True, False, True):
        llm.reuse_prefix = reuse
        llm.llm.n_tokens = 0
        llm.evaluated_tokens = 0
        t = time.perf_counter()
        scores = llm.score(pairs)
        dt = time.perf_counter() - t
        results.setdefault(reuse, []).append((dt, llm.evaluated_tokens, scores))
    for reuse, runs in results.items():
        dt = float(np.median([r[0] for r in runs]))
        print(f"{'llm, prefix reuse ' + ('on' if reuse else 'off'):28} {len(pairs) / dt:9.2f} {runs[0][1]:17d}")
    off, on = results[False][0][2], results[True][0][2]
    t_off = np.median([r[0] for r in results[False]])
    t_on = np.median([r[0] for r in results[True]])
    print(f"\nprefix reuse: {t_off / t_on:.2f}x faster, max score difference {float(np.abs(off - on).max()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
