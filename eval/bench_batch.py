"""Benchmark: batch answering throughput, batched against per-question retrieval, and Ray's overhead
(a measurement, not a test).

    python -m eval.bench_batch --index indexes/demo --n 50                  # extractive
    python -m eval.bench_batch --generator llama --n 5 --parts throughput   # the bundled LLM

Parts (``--parts``, comma-separated; all by default):

- ``throughput``: ``run_batch`` over the first ``n`` cancer questions of :mod:`eval.questions` into a fresh
  run folder, after one warm-up question (models loaded outside the clock): questions per hour.
- ``retrieval``: what ``ask`` retrieves for each question (top k per kind, then the cosine of each hit), done
  one question at a time, against :class:`pipeline.batch.BatchIndex` prefetching chunks of ``--retrieval-batch``
  questions; alternated ``--repeats`` times in one process, medians reported.
- ``ray``: the same ``n`` questions through ``run_batch`` plain, then with ``backend="ray"`` on a local Ray
  (2 CPUs) started by the run: wall time each (Ray's includes starting Ray and its actors loading the models),
  and whether the two answers files hold the same answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.questions import cancer_questions
from pipeline import Settings, open_index
from pipeline.answer import ask, quotas
from pipeline.batch import ANSWERS, BatchIndex, run_batch
from pipeline.generate import make_generator
from pipeline.index import Index
from pipeline.types import KINDS


def _retrieve_like_ask(index: Index, questions: list[str], settings: Settings) -> None:
    wanted = quotas(settings)
    for q in questions:
        for kind in KINDS:
            if wanted[kind] > 0:
                hits = index.search(q, wanted[kind], kind=kind)
                index.similarity(q, [h.chunk.id for h in hits])


def bench_retrieval(index: Index, questions: list[str], settings: Settings, batch: int, repeats: int) -> dict[str, Any]:
    bindex = BatchIndex.wrap(index)
    wanted = quotas(settings)
    single, batched = [], []
    _retrieve_like_ask(index, questions[:2], settings)  # warm-up: model, BM25 and FAISS pages loaded
    for _ in range(repeats):
        t0 = time.perf_counter()
        _retrieve_like_ask(index, questions, settings)
        single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(0, len(questions), batch):
            chunk = questions[i : i + batch]
            bindex.prefetch(chunk, wanted)
            _retrieve_like_ask(bindex, chunk, settings)
            bindex.forget(chunk)
        batched.append(time.perf_counter() - t0)
    s, b = statistics.median(single), statistics.median(batched)
    return {
        "questions": len(questions),
        "retrieval_batch": batch,
        "repeats": repeats,
        "per_question_s": round(s, 3),
        "batched_s": round(b, 3),
        "per_question_ms_each": round(1000 * s / len(questions), 2),
        "batched_ms_each": round(1000 * b / len(questions), 2),
        "speedup": round(s / b, 2),
    }


def _answers(folder: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in (folder / ANSWERS).read_text().splitlines()]
    return {r["id"]: r for r in rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--index", default="indexes/demo")
    ap.add_argument("--generator", default="extractive", choices=["extractive", "llama", "openai"])
    ap.add_argument("--n", type=int, default=50, help="questions")
    ap.add_argument("--parts", default="throughput,retrieval,ray")
    ap.add_argument("--retrieval-batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5, help="rounds of the retrieval comparison")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--torch-threads", type=int, default=None, help="torch threads of the plain run (Ray actors use 1)")
    ap.add_argument("--ray-actors", type=int, default=None, help="Ray actors (default: one per CPU of the local Ray)")
    ap.add_argument("--json", type=str, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"throughput", "retrieval", "ray"}
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}")

    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    settings = Settings()
    index = open_index(args.index)
    items = cancer_questions(args.n)
    questions = [q["question"] for q in items]
    rows = [{"id": q["id"], "question": q["question"]} for q in items]
    report: dict[str, Any] = {
        "index": index.id,
        "generator": args.generator,
        "n": len(items),
        "torch_threads": args.torch_threads,
        "ray_actors": args.ray_actors,
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch-"))

    if "throughput" in parts or "ray" in parts:
        gen = make_generator(args.generator, settings, index)
        t0 = time.perf_counter()
        ask("What is the treatment for stage III colon cancer?", index, generator=gen, settings=settings)
        report["warm_up_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        summary = run_batch(
            rows,
            tmp / "plain",
            index,
            generator=gen,
            settings=settings,
            workers=args.workers,
            retrieval_batch=args.retrieval_batch,
            progress=False,
        )
        plain_s = time.perf_counter() - t0
        report["throughput"] = {
            "answered": summary.new_answers,
            "failed": summary.new_failures,
            "seconds": round(plain_s, 2),
            "seconds_per_question": round(plain_s / len(items), 3),
            "questions_per_hour": round(3600 * len(items) / plain_s),
            "sections_abstained": summary.sections_abstained,
        }
        print(
            f"{args.generator}: {len(items)} questions in {plain_s:.1f} s = "
            f"{plain_s / len(items):.2f} s each, {3600 * len(items) / plain_s:.0f} questions/hour "
            f"({summary.new_failures} failed, {summary.sections_abstained} sections abstained)"
        )

    if "retrieval" in parts:
        r = bench_retrieval(index, questions, settings, args.retrieval_batch, args.repeats)
        report["retrieval"] = r
        print(
            f"retrieval for {r['questions']} questions (medians of {r['repeats']}): "
            f"one at a time {r['per_question_s']} s "
            f"({r['per_question_ms_each']} ms each), batched by {r['retrieval_batch']} {r['batched_s']} s "
            f"({r['batched_ms_each']} ms each): {r['speedup']}x"
        )

    if "ray" in parts:
        t0 = time.perf_counter()
        summary = run_batch(
            rows,
            tmp / "ray",
            index,
            generator=args.generator,
            settings=settings,
            retrieval_batch=args.retrieval_batch,
            backend="ray",
            ray_actors=args.ray_actors,
            progress=False,
        )
        ray_s = time.perf_counter() - t0
        plain, on_ray = _answers(tmp / "plain"), _answers(tmp / "ray")
        same = sum(1 for k, v in plain.items() if on_ray.get(k) == v)
        report["ray"] = {
            "plain_s": report["throughput"]["seconds"],
            "ray_s": round(ray_s, 2),
            "overhead": round(ray_s / report["throughput"]["seconds"] - 1, 3),
            "answered": summary.new_answers,
            "identical_answers": same,
            "of": len(plain),
        }
        print(
            f"ray (local, 2 CPUs, {args.ray_actors or 2} actors, started by the run): {ray_s:.1f} s "
            f"against {report['throughput']['seconds']} s plain "
            f"({report['ray']['overhead']:+.0%}); {same} of {len(plain)} answers identical to the plain run"
        )

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
