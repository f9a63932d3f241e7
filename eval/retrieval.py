"""Retrieval quality on BioASQ 7B-10B: dense, BM25 and hybrid, judged per document.

Each gold question's ``documents`` (PubMed URLs) are its relevance judgments. The corpus is the pool
of every PubMed document behind a gold snippet of 7B-10B (``medcite corpus pull bioasq``), one
document per PMID (id ``pmid:<PMID>``); a judged PMID with no snippet has no document, so that
judgment is dropped and counted. Chunks are mapped to their documents: a document ranks where its
best chunk ranks, and the top 100 distinct documents are scored with binary gains::

    python -m eval.retrieval                      # all questions, builds indexes/bioasq if missing
    python -m eval.retrieval --limit 50           # a quick look
    python -m eval.retrieval --split heldout --json runs/retrieval.json
    python -m eval.retrieval --split heldout --limit 150 --modes hybrid,hybrid+expand,hybrid+expand+rerank

The ``+expand`` modes search the question and what the bundled chat model writes for it (``--expand``: a
hypothetical answer passage, two reformulations, or both; :mod:`pipeline.expand`), fused by reciprocal rank.
The model's writing is the slow part (seconds per question on a CPU), so it is cached in ``--expansions``
(one JSON line per question, keyed by the expander's model, mode and prompt hash) and written as it goes: a
run stopped half-way resumes. Their latency is the expansion's measured seconds plus the fused search.

Settings come from the index manifest and ``MEDCITE_*`` variables, so fusion can be varied without
code: ``MEDCITE_RETRIEVE__RRF_K=20 python -m eval.retrieval``. ``--split tune|heldout`` scores one
half of the questions (split by a hash of the question id): choose settings on ``tune``, report them
on ``heldout``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import pipeline
from pipeline.corpus import corpus_path, default_mirror
from pipeline.expand import EXPAND_MODES, Expansion, LLMExpander
from pipeline.generate import LLMGenerator, make_generator
from pipeline.index import Index, fuse_hits
from pipeline.relevance import WEIGHTS as RELEVANCE_WEIGHTS
from pipeline.relevance import RelevanceModel, rerank
from pipeline.types import Hit

log = logging.getLogger("eval.retrieval")

MODES = ("dense", "bm25", "hybrid", "hybrid+rerank", "hybrid+expand", "hybrid+expand+rerank")
RERANK_CANDIDATES = 40  # fused chunks re-scored by the relevance model
DEPTH = 100  # documents scored per question (Recall@100, MRR@100)
CUTOFF = 10  # nDCG@10, Recall@10
CORPUS = "bioasq"
DEFAULT_INDEX = Path("indexes/bioasq")
_GOLD_FILE = re.compile(r"^(\d+)B(\d+)_golden\.json$")


@dataclass(frozen=True, slots=True)
class Question:
    """A BioASQ question with the ids (``pmid:<PMID>``) of the documents judged relevant."""

    id: str
    body: str
    relevant: frozenset[str]
    source: str  # gold file it was first read from, e.g. "7B1_golden.json"


@dataclass(frozen=True, slots=True)
class Judgments:
    """The questions that can be scored, and what was left out on the way."""

    questions: tuple[Question, ...]
    files: int
    read: int  # questions in the files
    duplicates: int  # repeated question ids, kept once
    judgments: int  # judged (question, document) pairs of the unique questions
    dropped_judgments: int  # of those, PMIDs with no snippet document in the corpus
    dropped_questions: int  # questions left with no judged document in the corpus


def pmid_of(url: str) -> str:
    """``http://www.ncbi.nlm.nih.gov/pubmed/23456789`` -> ``23456789``."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def gold_files(folder: Path, years: Iterable[int]) -> list[Path]:
    """The ``<year>B<batch>_golden.json`` files of the given challenge years, in (year, batch) order."""
    wanted = set(years)
    found = []
    for p in folder.glob("*_golden.json"):
        m = _GOLD_FILE.match(p.name)
        if m and int(m.group(1)) in wanted:
            found.append((int(m.group(1)), int(m.group(2)), p))
    return [p for _, _, p in sorted(found)]


def load_judgments(files: Sequence[Path], corpus_ids: set[str]) -> Judgments:
    """Questions from the gold files, unique by id, with judgments restricted to documents in the corpus."""
    seen: set[str] = set()
    kept: list[Question] = []
    read = duplicates = judgments = dropped = dropped_q = 0
    for path in files:
        for q in json.loads(path.read_text(encoding="utf-8"))["questions"]:
            read += 1
            if q["id"] in seen:
                duplicates += 1
                continue
            seen.add(q["id"])
            judged = {f"pmid:{pmid_of(u)}" for u in q.get("documents", [])}
            relevant = frozenset(judged & corpus_ids)
            judgments += len(judged)
            dropped += len(judged) - len(relevant)
            if not relevant:
                dropped_q += 1
                continue
            kept.append(Question(q["id"], q["body"].strip(), relevant, path.name))
    return Judgments(tuple(kept), len(files), read, duplicates, judgments, dropped, dropped_q)


def half(question_id: str) -> str:
    """``"tune"`` or ``"heldout"``, fixed by a hash of the id (stable across runs and file order)."""
    return "tune" if hashlib.sha256(question_id.encode()).digest()[0] % 2 == 0 else "heldout"


# --------------------------------------------------------------------------- ranking


def documents_of(hits: Sequence[Hit], depth: int) -> list[str]:
    """Document ids in the order of their best (first) chunk, without repeats, at most ``depth``."""
    out: list[str] = []
    seen: set[str] = set()
    for h in hits:
        d = h.chunk.doc_id
        if d not in seen:
            seen.add(d)
            out.append(d)
            if len(out) == depth:
                break
    return out


def rank_documents(index: Index, queries: Sequence[str], mode: str, depth: int = DEPTH) -> tuple[list[list[str]], int]:
    """Top ``depth`` documents per query; returns them and the most chunks any query needed.

    Asks for ``depth`` chunks first and asks again, deeper, for the queries whose chunks named fewer
    than ``depth`` distinct documents while the retriever still had more to give. A deeper ask only
    appends documents: in hybrid mode ``search_many`` widens the fusion candidates to ``k``, and that
    must not reorder the documents already ranked with the configured ``retrieve.candidates``.
    """
    ranked: list[list[str]] = [[] for _ in queries]
    todo = list(range(len(queries)))
    k = depth
    deepest = depth
    while todo:
        deepest = k
        results = index.search_many([queries[i] for i in todo], k=k, mode=mode)
        again = []
        for i, hits in zip(todo, results, strict=True):
            have = set(ranked[i])
            ranked[i] += [d for d in documents_of(hits, len(hits)) if d not in have][: depth - len(ranked[i])]
            if len(ranked[i]) < depth and len(hits) == k and k < len(index):
                again.append(i)
        todo = again
        k = min(2 * k, len(index))
    return ranked, deepest


def rerank_documents(
    index: Index, queries: Sequence[str], model: RelevanceModel, candidates: int = RERANK_CANDIDATES, depth: int = DEPTH
) -> tuple[list[list[str]], list[float]]:
    """Top ``depth`` documents per query, the first ``candidates`` hybrid chunks reordered by the relevance model;
    and each query's seconds (search and rerank, one query at a time, as an answer runs them)."""
    runs, seconds = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = index.search(q, 2 * depth, mode="hybrid")
        head = rerank(q, hits[:candidates], model, fuse=index.settings.retrieve.rrf_k)
        seconds.append(time.perf_counter() - t0)
        runs.append(documents_of([*head, *hits[candidates:]], depth))
    return runs, seconds


def expand_documents(
    index: Index,
    queries: Sequence[str],
    expansions: Sequence[Expansion],
    model: RelevanceModel | None = None,
    candidates: int = RERANK_CANDIDATES,
    depth: int = DEPTH,
) -> tuple[list[list[str]], list[float]]:
    """Top ``depth`` documents per query from its hybrid hits fused with those of its expansions (and reranked with
    ``model``); each query's seconds: the expansion's own, plus the searches and rerank timed here."""
    runs, seconds = [], []
    k = index.settings.retrieve.rrf_k
    for q, e in zip(queries, expansions, strict=True):
        t0 = time.perf_counter()
        lists = index.search_many([q, *e.searches], 2 * depth, mode="hybrid")
        hits = fuse_hits(lists, 2 * depth, k)
        if model is not None:
            hits = [*rerank(q, hits[:candidates], model, fuse=k), *hits[candidates:]]
        seconds.append(time.perf_counter() - t0 + e.seconds)
        runs.append(documents_of(hits, depth))
    return runs, seconds


def parts_of(e: Expansion, part: str) -> Expansion:
    """Only the passage or only the reformulations of an expansion (same seconds)."""
    return replace(e, queries=()) if part == "passage" else replace(e, passage="")


def load_expansions(path: Path, name: str) -> dict[str, Expansion]:
    """Cached expansions by question, of the expander called ``name`` only (another model's or prompt's are skipped)."""
    out: dict[str, Expansion] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except ValueError:  # a line cut by an interrupted run
            continue
        if isinstance(d, dict) and d.get("expander") == name:
            out[str(d["question"])] = Expansion(
                str(d.get("passage", "")), tuple(d["queries"]), float(d["seconds"]), d.get("failed")
            )
    return out


def expand_all(questions: Sequence[str], expander: LLMExpander, cache: Path) -> list[Expansion]:
    """Each question's expansion, from ``cache`` where it is there, else written by the model and appended."""
    have = load_expansions(cache, expander.name)
    todo = [q for q in dict.fromkeys(questions) if q not in have]
    if todo:
        log.info("expanding %d questions with %s (%d cached)", len(todo), expander.name, len(have))
        cache.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with cache.open("a", encoding="utf-8") as f:
            for i, q in enumerate(todo, start=1):
                e = expander.expand(q)
                have[q] = e
                record = {
                    "expander": expander.name,
                    "question": q,
                    "passage": e.passage,
                    "queries": list(e.queries),
                    "seconds": e.seconds,
                }
                f.write(json.dumps(record | ({"failed": e.failed} if e.failed else {})) + "\n")
                f.flush()
                if i % 10 == 0 or i == len(todo):
                    log.info("  %d/%d expanded, %.1f s per question", i, len(todo), (time.perf_counter() - t0) / i)
    return [have[q] for q in questions]


def search_seconds(index: Index, queries: Sequence[str], mode: str, depth: int = DEPTH) -> list[float]:
    """Each query's seconds for one plain search of ``2 * depth`` chunks (the latency an answer sees)."""
    out = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, 2 * depth, mode=mode)
        out.append(time.perf_counter() - t0)
    return out


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 latency in milliseconds."""
    a = np.asarray(seconds, dtype=float) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1)}


# --------------------------------------------------------------------------- metrics


def ndcg(ranked: Sequence[str], relevant: frozenset[str], cutoff: int = CUTOFF) -> float:
    """nDCG@cutoff with binary gains; the ideal ranking puts min(|relevant|, cutoff) hits first."""
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:cutoff]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), cutoff)))
    return dcg / ideal


def recall(ranked: Sequence[str], relevant: frozenset[str], cutoff: int) -> float:
    return len(relevant.intersection(ranked[:cutoff])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str], cutoff: int = DEPTH) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:cutoff]) if d in relevant), 0.0)


def score(runs: Sequence[Sequence[str]], questions: Sequence[Question]) -> dict[str, float]:
    """Mean metrics over the questions (macro average)."""
    n = len(questions)
    per = [
        (ndcg(r, rel), recall(r, rel, CUTOFF), recall(r, rel, DEPTH), reciprocal_rank(r, rel))
        for r, rel in zip(runs, (q.relevant for q in questions), strict=True)
    ]
    names = (f"nDCG@{CUTOFF}", f"R@{CUTOFF}", f"R@{DEPTH}", "MRR")
    out: dict[str, float] = {name: sum(p[j] for p in per) / n if n else 0.0 for j, name in enumerate(names)}
    out["queries"] = n
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    cols = (f"nDCG@{CUTOFF}", f"R@{CUTOFF}", f"R@{DEPTH}", "MRR")
    lines = [f"{'mode':<21}" + "".join(f"{c:>9}" for c in cols) + f"{'queries':>9}{'p50 ms':>9}{'p95 ms':>9}"]
    for mode, m in results.items():
        lat = "".join(f"{m[k]:>9.1f}" if k in m else f"{'-':>9}" for k in ("p50_ms", "p95_ms"))
        lines.append(f"{mode:<21}" + "".join(f"{m[c]:>9.4f}" for c in cols) + f"{int(m['queries']):>9}" + lat)
    return "\n".join(lines)


# --------------------------------------------------------------------------- setup


def ensure_index(path: Path) -> None:
    """Pull the bioasq corpus and build its index at ``path`` when there is none yet (minutes)."""
    if (path / "CURRENT").is_file() or (path / "manifest.json").is_file():
        return
    if not (corpus_path(CORPUS) / "corpus.lock.json").is_file():
        log.info("pulling corpus %s", CORPUS)
        pipeline.pull_corpus(CORPUS, progress=False)
    log.info("building %s (embeds ~11k documents; several minutes on a CPU)", path)
    sources = pipeline.corpus_sources(CORPUS)
    report = pipeline.build_index(path, guidelines=sources["guidelines"], research=sources["research"], progress=True)
    log.info("%s", report.summary())


def parse_years(text: str) -> list[int]:
    try:
        years = [int(y) for y in text.split(",") if y.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--years takes numbers joined by commas, like 7,8,9,10, not {text!r}"
        ) from None
    if not years:
        raise argparse.ArgumentTypeError("--years is empty")
    return years


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.retrieval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder (built if missing)")
    ap.add_argument("--questions", type=Path, default=None, help="folder of BioASQ *_golden.json (default: mirror)")
    ap.add_argument("--years", type=parse_years, default=[7, 8, 9, 10], help="challenge years, e.g. 7,8,9,10")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N questions")
    ap.add_argument("--split", choices=("all", "tune", "heldout"), default="all", help="which half of the questions")
    ap.add_argument("--modes", default="dense,bm25,hybrid", help=f"comma-separated retrieval modes of {MODES}")
    ap.add_argument("--json", type=Path, default=None, dest="json_path", help="also write the results here")
    ap.add_argument("--rerank", type=Path, default=RELEVANCE_WEIGHTS, help="relevance model for hybrid+rerank")
    ap.add_argument(
        "--candidates", type=int, default=RERANK_CANDIDATES, help="fused chunks re-scored in hybrid+rerank (40)"
    )
    ap.add_argument("--latency", type=int, default=50, help="queries timed one at a time per mode (0: none)")
    ap.add_argument(
        "--expand", choices=[m for m in EXPAND_MODES if m != "off"], default="both", help="what +expand modes search"
    )
    ap.add_argument(
        "--expand-parts",
        choices=("all", "passage", "queries"),
        default="all",
        help="with --expand both: search with only the passage or only the queries of each cached expansion",
    )
    ap.add_argument("--generator", default="llama", help="whose chat model writes the expansions (llama, openai)")
    ap.add_argument(
        "--expansions", type=Path, default=Path("runs/expansions.jsonl"), help="expansion cache (JSON lines)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("eval", "pipeline"):  # not third-party INFO noise (faiss announces its loader)
        logging.getLogger(name).setLevel(logging.INFO)

    folder = args.questions
    if folder is None:
        mirror = default_mirror()
        if mirror is None:
            ap.error("no data mirror found (../shared/data or MEDCITE_MIRROR); pass --questions DIR")
        folder = mirror / "research" / "bioasq"
    files = gold_files(folder, args.years)
    if not files:
        ap.error(f"no <year>B<batch>_golden.json files for years {args.years} in {folder}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        ap.error(f"unknown mode(s) {bad}; choose from {list(MODES)}")

    ensure_index(args.index)
    index = pipeline.open_index(args.index)
    corpus_ids = {d for d, doc in index.documents.items() if doc.kind == "research"}
    judged = load_judgments(files, corpus_ids)
    questions = [q for q in judged.questions if args.split == "all" or half(q.id) == args.split]
    if args.limit is not None:
        questions = questions[: args.limit]
    if not questions:
        ap.error("no question left to score")

    texts = [q.body for q in questions]
    results: dict[str, dict[str, float]] = {}
    depth_used: dict[str, int] = {}
    timed = texts[: args.latency]
    expansions: list[Expansion] = []
    expand_info: dict[str, Any] = {}
    if any("+expand" in m for m in modes):
        generator = make_generator(args.generator, index.settings, index)
        if not isinstance(generator, LLMGenerator):
            ap.error(f"--generator {args.generator} has no chat model to expand with")
        expander = LLMExpander(generator.backend, args.expand, max_tokens=index.settings.expand.max_tokens)
        expansions = expand_all(texts, expander, args.expansions)
        if args.expand == "both" and args.expand_parts != "all":
            expansions = [parts_of(e, args.expand_parts) for e in expansions]
        spent = [e.seconds for e in expansions]
        failed = sum(1 for e in expansions if e.failed)
        expand_info = {
            "expander": expander.name,
            "seconds_p50": round(float(np.median(spent)), 3),
            "seconds_p95": round(float(np.percentile(spent, 95)), 3),
            "failed": failed,
        }
        log.info(
            "expansion %s: median %.2f s per question, %d of %d gave no usable query",
            expander.name,
            float(np.median(spent)),
            failed,
            len(expansions),
        )
    for mode in modes:
        t0 = time.perf_counter()
        if "+expand" in mode:
            model = RelevanceModel(args.rerank) if mode.endswith("+rerank") else None
            runs, seconds = expand_documents(index, texts, expansions, model, candidates=args.candidates)
            results[mode] = score(runs, questions) | percentiles(seconds[: len(timed)] or [0.0])
            depth_used[mode] = 2 * DEPTH
        elif mode == "hybrid+rerank":
            model = RelevanceModel(args.rerank)
            runs, seconds = rerank_documents(index, texts, model, candidates=args.candidates)
            results[mode] = score(runs, questions) | percentiles(seconds[: len(timed)] or [0.0])
            depth_used[mode] = 2 * DEPTH
        else:
            runs, deepest = rank_documents(index, texts, mode)
            results[mode] = score(runs, questions)
            if timed:
                results[mode] |= percentiles(search_seconds(index, timed, mode))
            depth_used[mode] = deepest
        secs = time.perf_counter() - t0
        log.info("%s: %d queries in %.1f s", mode, len(texts), secs)

    r = index.settings.retrieve
    header = [
        f"BioASQ {','.join(f'{y}B' for y in args.years)}: {judged.read} questions in {judged.files} files, "
        f"{len(judged.questions) + judged.dropped_questions} unique; scored {len(questions)} (split {args.split})",
        f"corpus: {len(corpus_ids)} documents, {len(index)} chunks (index {index.id})",
        f"judgments: {judged.judgments}, dropped {judged.dropped_judgments} with no snippet document "
        f"(questions left with none: {judged.dropped_questions})",
        f"hybrid: reciprocal rank fusion, rrf_k {r.rrf_k}, {r.candidates} candidates per retriever",
    ]
    if expand_info:
        header.append(
            f"expansion: {expand_info['expander']}, {expand_info['seconds_p50']} s per question p50 "
            f"({expand_info['seconds_p95']} p95), {expand_info['failed']} gave no usable query"
        )
    print("\n".join(header))
    print(table(results))
    if args.json_path is not None:
        payload: dict[str, Any] = {
            "benchmark": "BioASQ",
            "years": args.years,
            "split": args.split,
            "limit": args.limit,
            "index": index.id,
            "index_path": str(args.index),
            "settings_retrieve": r.model_dump(mode="json"),
            "documents": len(corpus_ids),
            "chunks": len(index),
            "questions_read": judged.read,
            "questions_duplicate": judged.duplicates,
            "questions_scored": len(questions),
            "questions_without_judged_document": judged.dropped_questions,
            "judgments": judged.judgments,
            "judgments_dropped_no_document": judged.dropped_judgments,
            "depth": DEPTH,
            "cutoff": CUTOFF,
            "chunks_requested_max": depth_used,
            "results": results,
            **({"expansion": expand_info | {"parts": args.expand_parts}} if expand_info else {}),
        }
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
