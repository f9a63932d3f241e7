"""Benchmark: medcite's index build and search against the plain LangChain FAISS route, same machine, same run.

Not a test: it prints figures and the ratio of each to its LangChain baseline, measured in the same run::

    python -m eval.bench_index                      # real chunks + synthetic 100k and 1M vectors
    python -m eval.bench_index --chunks 300 --skip-1m --json runs/bench_index.json
    python -m eval.bench_index --chunks 300 --skip-synthetic   # real chunks and the compute floor only (~2 min)

Real chunks: a fixed, seeded sample of documents from the demo corpus (``medcite corpus pull demo``),
chunked once with :class:`pipeline.chunk.Chunker`, so both routes embed exactly the same
``chunk.embedding_text()`` strings with the same bundled MiniLM on the CPU.

* ours: ``pipeline.build_index(documents=...)`` end to end (chunking, embedding, FAISS, BM25, the
  versioned files with their sha256 and fsync), then ``open_index`` and ``index.search(q, k=10)``
  in dense and hybrid mode.
* langchain: ``FAISS.from_texts(texts, HuggingFaceEmbeddings(...))`` over the same texts (embedding
  and an in-memory FAISS flat index; nothing written), then ``similarity_search(q, k=10)``.

Model load time is excluded from both: each route loads its model and embeds one string before the
clock starts. Queries are BioASQ questions (``body``) from the data mirror, embedded one at a time.

What is embedded, and the floor: for the same sample, the tokens each chunk gives MiniLM (its tokenizer, [CLS]
and [SEP], truncated at ``embed.max_tokens``), and the shares of them that are the context line (title and heading,
``Chunk.embedding_text()``), overlap with the previous chunk of the same section, [CLS]/[SEP], and padding, as
sentence-transformers batches them (sorted by characters, 32 at a time: LangChain's route) and as
:func:`pipeline.embed.length_batches` does (ours). The floor is the forward pass's matmul FLOPs (from the model's
``config.json``: per token and layer 2 (4 h^2 + 2 h i), per sequence and layer 4 w^2 h; :func:`forward_flops`) over
the GEMM rate measured in the same run, in its own process, at the same thread count, on one layer's matmuls with
the model's shapes (``[rows, 384] x [384, 1536]`` ...), in torch and in ONNX Runtime (MLAS), the faster of the
two (our route runs in ONNX Runtime by default, ``embed.runtime``); chunks/s at the floor counts real tokens only.
Layer norms, GELU, softmax and attention's lower rate are not in it, so no route reaches it.
"Padding free" scales a route's measured rate by the FLOPs its padding costs.

Synthetic: random unit 384-d float32 vectors; ``pipeline.index.build_faiss`` for flat, HNSW and IVF
(searched with the parameters :class:`pipeline.index.Index` uses) against LangChain's
``FAISS.from_embeddings`` + ``similarity_search_by_vector`` (flat L2, its only index). Recall@10 is
against our flat index on the same queries. Random vectors in 384 dimensions have no cluster
structure, the worst case for HNSW and IVF, so their recall here is a floor, not a forecast.

Each route gets one torch and FAISS thread unless ``--threads`` says otherwise: on a shared 2-core box,
more threads than idle cores leave OpenMP waiting, which made single-query latency 10-30x worse for
both routes and swamped the comparison. ``--backend torch-bf16`` runs our route with that
``embed.backend`` and ``--runtime torch`` with that ``embed.runtime`` (LangChain's stays float32 torch).

Every route runs in its own spawned process, so its peak RSS (``ru_maxrss``) is its own; that figure
includes the Python runtime, torch and the model (real chunks) or the vectors themselves (synthetic).
Real-chunk routes run ``--repeats`` times, interleaved, and the medians are reported.
"""

from __future__ import annotations

import os

# Before any Hugging Face import, and inherited by the spawned workers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from pipeline.types import Chunk, Document  # noqa: E402

K = 10
DIM = 384
WARMUP_QUERIES = 3


# --------------------------------------------------------------------------- helpers (run in the workers)


def _quiet() -> None:
    warnings.filterwarnings("ignore")  # langchain-community's sunset notice and friends
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass


def _threads(n: int | None) -> None:
    """Cap torch's and FAISS's thread pools (the same cap for every route); None keeps their defaults."""
    if n:
        import faiss
        import torch

        torch.set_num_threads(n)
        faiss.omp_set_num_threads(n)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = WARMUP_QUERIES) -> list[float]:
    """Seconds of ``fn(item)`` for each item, one at a time, after ``warmup`` untimed calls."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out


class _TimedEmbedder:
    """Wraps an :class:`pipeline.embed.Embedder` and adds up the seconds spent in ``encode``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.texts = 0

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    @property
    def max_tokens(self) -> int:
        return int(self.inner.max_tokens)

    def fingerprint(self) -> str:
        return str(self.inner.fingerprint())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return list(self.inner.count_tokens(texts))

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.encode(texts, progress=progress)
        self.seconds += time.perf_counter() - t
        self.texts += len(texts)
        return np.asarray(out)


# --------------------------------------------------------------------------- real chunks: workers


def _ours_real(
    documents: list[Document], queries: list[str], threads: int | None, backend: str | None, runtime: str | None
) -> dict[str, Any]:
    _quiet()
    _threads(threads)
    import pipeline
    from pipeline.chunk import SpacySentences
    from pipeline.embed import SentenceTransformerEmbedder

    # Defaults and MEDCITE_* variables, as in the main process; --backend picks how our model runs.
    embed = {k: v for k, v in (("backend", backend), ("runtime", runtime)) if v}
    overrides: dict[str, Any] = {"embed": embed} if embed else {}
    settings = pipeline.Settings(**overrides)
    embedder = _TimedEmbedder(SentenceTransformerEmbedder(settings.embed))
    splitter = SpacySentences()
    # Load the model, tokenizer and spaCy before the clock starts.
    embedder.encode(["warm up"])
    embedder.count_tokens(["warm up"])
    splitter.split(["Warm up. Two sentences."])
    embedder.seconds, embedder.texts = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        out = Path(tmp) / "index"
        t = time.perf_counter()
        report = pipeline.build_index(
            out,
            documents=documents,
            settings=settings,
            embedder=embedder,
            splitter=splitter,
            progress=False,
            incremental=False,
        )
        build_s = time.perf_counter() - t
        embed_s, embedded = embedder.seconds, embedder.texts
        index = pipeline.open_index(out, settings=settings, embedder=embedder)
        latency = {
            mode: _timed(functools.partial(index.search, k=K, mode=mode), queries) for mode in ("dense", "hybrid")
        }
    return {
        "chunks": report.n_chunks,
        "build_s": build_s,
        "embed_s": embed_s,
        "embedded": embedded,
        "latency_s": latency,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _langchain_real(texts: list[str], queries: list[str], threads: int | None) -> dict[str, Any]:
    _quiet()
    _threads(threads)
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    from pipeline.embed import bundled_model_path

    embeddings = HuggingFaceEmbeddings(
        model_name=str(bundled_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )
    embeddings.embed_query("warm up")  # model loaded before the clock starts
    t = time.perf_counter()
    store = FAISS.from_texts(texts, embeddings)
    build_s = time.perf_counter() - t
    latency = _timed(lambda q: store.similarity_search(q, k=K), queries)
    return {"chunks": len(texts), "build_s": build_s, "latency_s": {"dense": latency}, "peak_rss_mb": _peak_rss_mb()}


def _gemm(threads: int | None, rows: list[int], config: dict[str, int], seconds: float = 1.0) -> dict[str, Any]:
    """FLOP/s of one encoder layer's matmuls (q, k, v, output, FFN up and down, each ``x @ W.T + b`` as the
    model runs them) over ``[m, hidden]`` activations, float32, for each ``m`` in ``rows``: median of timed passes,
    in torch (``by_rows``) and in ONNX Runtime's MLAS (``by_rows_ort``, the same six ``Gemm`` nodes in one graph)."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    _threads(threads)
    h, inter = config["hidden_size"], config["intermediate_size"]
    shapes = [(h, h)] * 4 + [(h, inter), (inter, h)]  # (in, out)
    gen = torch.Generator().manual_seed(0)
    weights = [(torch.randn(o, i, generator=gen), torch.randn(o, generator=gen)) for i, o in shapes]
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "by_rows": {}, "by_rows_ort": {}}

    def layer(inputs: list[Any], weights: list[tuple[Any, Any]]) -> None:
        for x, (w, b) in zip(inputs, weights, strict=True):
            torch.nn.functional.linear(x, w, b)

    def rate(run: Callable[[], Any], flops: float) -> float:
        run()  # warm-up: the libraries pick their kernels on the first call
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < 5 or (time.perf_counter() - started < seconds and len(times) < 200):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        return flops / statistics.median(times)

    inits = [
        numpy_helper.from_array(a.numpy(), f"{n}{k}")
        for k, (w, b) in enumerate(weights)
        for n, a in (("w", w), ("b", b))
    ]
    nodes = [
        helper.make_node("Gemm", [f"x{i}", f"w{k}", f"b{k}"], [f"y{k}"], transB=1) for k, (i, _) in enumerate(shapes)
    ]
    graph = helper.make_graph(
        nodes,
        "layer",
        [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, ["m", i]) for i in (h, inter)],
        [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, ["m", o]) for k, (_, o) in enumerate(shapes)],
        inits,
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # ORT reads <= 13
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    with torch.inference_mode():
        for m in rows:
            xs = {i: torch.randn(m, i, generator=gen) for i in {h, inter}}
            flops = sum(2.0 * m * i * o for i, o in shapes)
            inputs = [xs[i] for i, _ in shapes]
            feed = {f"x{i}": xs[i].numpy() for i in (h, inter)}
            out["by_rows"][str(m)] = rate(functools.partial(layer, inputs, weights), flops)
            out["by_rows_ort"][str(m)] = rate(functools.partial(session.run, None, feed), flops)
    return out


# --------------------------------------------------------------------------- synthetic: workers


def _unit_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000  # in blocks, so the float32 array is the only big allocation
    for i in range(0, n, step):
        block = rng.standard_normal((min(step, n - i), DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[i : i + len(block)] = block
    return out


def _search_params(settings: Any, k: int) -> Any:
    """The FAISS search parameters :class:`pipeline.index.Index` uses for the configured index type."""
    import faiss

    typ = settings.index.type
    if typ == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=max(settings.index.hnsw_ef_search, k))  # type: ignore[attr-defined]
    if typ == "ivf":
        return faiss.SearchParametersIVF(nprobe=settings.index.ivf_nprobe)  # type: ignore[call-arg]
    return None


def _synthetic(route: str, n: int, n_queries: int, seed: int, threads: int | None) -> dict[str, Any]:
    _quiet()
    _threads(threads)
    vectors = _unit_vectors(n, seed)
    queries = _unit_vectors(n_queries, seed + 1)
    ids: list[list[int]] = []
    if route == "langchain":
        from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings

        class NoEmbeddings(Embeddings):
            """For ``from_embeddings``: the vectors come ready-made, so nothing is ever embedded."""

            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                raise NotImplementedError("vectors are passed in; nothing to embed")

            def embed_query(self, text: str) -> list[float]:
                raise NotImplementedError("vectors are passed in; nothing to embed")

        texts = [str(i) for i in range(n)]
        t = time.perf_counter()
        # Rows of one array, not lists of floats: a list of 1M lists of Python floats would need ~12 GB.
        store = FAISS.from_embeddings(zip(texts, vectors, strict=True), embedding=NoEmbeddings())
        build_s = time.perf_counter() - t

        def search(q: np.ndarray) -> None:
            ids.append([int(d.page_content) for d in store.similarity_search_by_vector(q.tolist(), k=K)])

    else:
        from pipeline.index import build_faiss
        from pipeline.settings import Settings

        overrides: dict[str, Any] = {"index": {"type": route}}
        settings = Settings(**overrides)
        t = time.perf_counter()
        index = build_faiss(vectors, settings)
        build_s = time.perf_counter() - t
        params = _search_params(settings, K)

        def search(q: np.ndarray) -> None:
            _, rows = index.search(q[None, :], K, params=params)
            ids.append([int(r) for r in rows[0]])

    latency = _timed(search, list(queries))
    return {
        "n": n,
        "build_s": build_s,
        "latency_s": latency,
        "ids": ids[-n_queries:],  # the timed pass, after the warm-up calls
        "peak_rss_mb": _peak_rss_mb(),
    }


def _fresh(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a new spawned process, so its peak RSS and imports are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# --------------------------------------------------------------------------- inputs (main process)


def sample(corpus: str, n_chunks: int, seed: int, settings: Any) -> tuple[list[Document], list[Chunk]]:
    """Documents of ``corpus`` in a seeded order, taken whole until they give ``n_chunks`` chunks or more; and those
    chunks, in document order."""
    import pipeline
    from pipeline.chunk import Chunker, SpacySentences
    from pipeline.embed import SentenceTransformerEmbedder
    from pipeline.ingest import ingest

    try:
        sources = pipeline.corpus_sources(corpus)
    except pipeline.PipelineError as e:
        sys.exit(f"corpus {corpus!r} is not pulled ({e}); run: medcite corpus pull {corpus} -q")
    result = ingest(
        [(Path(p), "guideline") for p in sources["guidelines"]] + [(Path(p), "research") for p in sources["research"]],
        progress=False,
    )
    docs = sorted(result.documents, key=lambda d: d.id)
    random.Random(seed).shuffle(docs)
    chunker = Chunker(settings.chunk, SentenceTransformerEmbedder(settings.embed), SpacySentences())
    taken: list[Document] = []
    chunks: list[Chunk] = []
    for doc in docs:
        found = chunker.chunk(doc)
        if found:
            taken.append(doc)
            chunks.extend(found)
        if len(chunks) >= n_chunks:
            break
    return taken, chunks


def sample_chunks(corpus: str, n_chunks: int, seed: int, settings: Any) -> tuple[list[Document], list[str]]:
    """:func:`sample`, with each chunk as the text that is embedded (``chunk.embedding_text()``)."""
    docs, chunks = sample(corpus, n_chunks, seed, settings)
    return docs, [c.embedding_text() for c in chunks]


def bioasq_questions(n: int, seed: int) -> list[str]:
    """``n`` distinct BioASQ question bodies from the data mirror, in a seeded order."""
    from pipeline.corpus import default_mirror

    mirror = default_mirror()
    folder = mirror / "research" / "bioasq" if mirror else None
    files = sorted(folder.glob("*.json")) if folder and folder.is_dir() else []
    if not files:
        sys.exit("no BioASQ questions: expected ../shared/data/research/bioasq/*.json (or set MEDCITE_MIRROR)")
    bodies = sorted(
        {q["body"].strip() for f in files for q in json.loads(f.read_text(encoding="utf-8"))["questions"] if q["body"]}
    )
    random.Random(seed).shuffle(bodies)
    return bodies[:n]


# --------------------------------------------------------------------------- what is embedded, and the floor


def model_config(settings: Any) -> dict[str, int]:
    """Layers, hidden size, FFN size and heads of the embedding model, from its ``config.json``."""
    from pipeline.embed import SentenceTransformerEmbedder

    cfg = json.loads((SentenceTransformerEmbedder(settings.embed).path / "config.json").read_text(encoding="utf-8"))
    keys = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads")
    return {k: int(cfg[k]) for k in keys}


def forward_flops(batches: Sequence[Sequence[int]], config: dict[str, int]) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of the encoder's forward pass over padded batches of token lengths.

    Per token and layer: q, k, v and the output projection (4 h^2) and the FFN (2 h i) multiply-adds. Per sequence
    of padded width w and layer: q k^T and the attention-weighted values, 2 w^2 h (all heads together; the mask
    does not skip padded keys). Every text of a batch is padded to its longest. Embedding lookups, layer norms,
    GELU, softmax and pooling are not matmuls and are left out, so the figure is a floor.
    """
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    total = 0.0
    for batch in batches:
        if not batch:
            continue
        w = max(batch)
        total += len(batch) * layers * 2.0 * (w * (4 * h * h + 2 * h * inter) + 2 * w * w * h)
    return total


def overlap_prefix(prev: str, text: str) -> int:
    """Characters at the start of ``text`` that repeat the end of ``prev``, in whole words (0 if none)."""
    best = 0
    ends = [k for k, ch in enumerate(text) if ch == " "] + [len(text)]
    for k in ends:
        head = text[:k]
        if k > len(prev):
            break
        if head and prev.endswith(head) and (k == len(prev) or prev[-k - 1] == " "):
            best = k
    return best


def accounting(chunks: Sequence[Chunk], settings: Any) -> dict[str, Any]:
    """What the model reads for ``chunks``: tokens per chunk, and the shares of them that are the context line
    (title and heading), [CLS]/[SEP], repeated overlap with the previous chunk of the same section, and padding
    as sentence-transformers batches (sorted by characters, ``embed.batch_size`` at a time: LangChain's route) and
    as :func:`pipeline.embed.length_batches` does (ours)."""
    from pipeline.embed import SentenceTransformerEmbedder, length_batches

    emb = SentenceTransformerEmbedder(settings.embed)
    limit = emb.max_tokens  # sentence-transformers' max_seq_length
    texts = [c.embedding_text() for c in chunks]
    raw = emb.count_tokens(texts)
    lengths = [min(n + 2, limit) for n in raw]  # + [CLS] and [SEP], truncated as the model truncates
    context = emb.count_tokens([c.context for c in chunks])
    overlap: list[int] = []
    for i, c in enumerate(chunks):
        prev = chunks[i - 1] if i else None
        same = prev is not None and prev.doc_id == c.doc_id and prev.context == c.context
        k = overlap_prefix(prev.text, c.text) if same and prev is not None else 0
        overlap.append(emb.count_tokens([c.text[:k]])[0] if k else 0)
    total = sum(lengths)
    batch = settings.embed.batch_size
    # sentence-transformers' own order: np.argsort of minus the character length (its _input_length).
    by_chars = [int(i) for i in np.argsort([-len(t) for t in texts])]
    st_batches = [[lengths[i] for i in by_chars[j : j + batch]] for j in range(0, len(texts), batch)]
    ours_batches = [[lengths[i] for i in b] for b in length_batches(lengths, batch)]

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(b) for b in batches if b)

    config = model_config(settings)
    return {
        "chunks": len(chunks),
        "max_seq_length": limit,
        "batch_size": batch,
        "tokens": lengths,
        "tokens_total": total,
        "tokens_mean": total / len(lengths),
        "tokens_median": float(statistics.median(lengths)),
        "tokens_min": min(lengths),
        "tokens_max": max(lengths),
        "truncated_tokens": sum(max(0, n + 2 - limit) for n in raw),
        "special_share": 2 * len(lengths) / total,
        "context_tokens": sum(context),
        "context_share": sum(context) / total,
        "overlap_tokens": sum(overlap),
        "overlap_share": sum(overlap) / total,
        "padded_tokens": {"sentence-transformers": padded(st_batches), "ours": padded(ours_batches)},
        "padding_share": {
            "sentence-transformers": 1 - total / padded(st_batches),
            "ours": 1 - total / padded(ours_batches),
        },
        "batches": {"sentence-transformers": len(st_batches), "ours": len(ours_batches)},
        "model": config,
        "flops": {
            "unpadded": forward_flops([[n] for n in lengths], config),
            "sentence-transformers": forward_flops(st_batches, config),
            "ours": forward_flops(ours_batches, config),
        },
        "gemm_rows": sorted({batch * round(total / len(lengths)), max(len(b) * max(b) for b in ours_batches)}),
    }


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    route: str
    metric: str
    value: float
    unit: str
    vs_langchain: float | None = None  # > 1: ours is better (faster, higher throughput, less memory)


def _pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _med(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def _recall(ids: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(a) & set(b)) for a, b in zip(ids, truth, strict=True))
    return hits / (K * len(truth))


def real_rows(ours: list[dict[str, Any]], lc: list[dict[str, Any]]) -> list[Row]:
    sec = f"real chunks (n={ours[0]['chunks']})"
    rows: list[Row] = []
    lc_tput = _med([r["chunks"] / r["build_s"] for r in lc])
    ours_tput = _med([r["chunks"] / r["build_s"] for r in ours])
    ours_embed = _med([r["embedded"] / r["embed_s"] for r in ours])
    rows.append(Row(sec, "langchain FAISS.from_texts", "build throughput", lc_tput, "chunks/s"))
    rows.append(Row(sec, "ours build_index", "build throughput", ours_tput, "chunks/s", ours_tput / lc_tput))
    rows.append(Row(sec, "ours build_index", "  of which embedding only", ours_embed, "chunks/s", ours_embed / lc_tput))
    rows.append(
        Row(sec, "ours build_index", "  embedding share", _med([r["embed_s"] / r["build_s"] for r in ours]), "")
    )
    lc_p = {p: _med([_pct(r["latency_s"]["dense"], p) for r in lc]) * 1e3 for p in (50, 95)}
    for p in (50, 95):
        rows.append(Row(sec, "langchain similarity_search", f"query p{p}", lc_p[p], "ms"))
    for mode in ("dense", "hybrid"):
        for p in (50, 95):
            v = _med([_pct(r["latency_s"][mode], p) for r in ours]) * 1e3
            rows.append(Row(sec, f"ours search {mode}", f"query p{p}", v, "ms", lc_p[p] / v))
    lc_rss = _med([r["peak_rss_mb"] for r in lc])
    ours_rss = _med([r["peak_rss_mb"] for r in ours])
    rows.append(Row(sec, "langchain", "peak RSS", lc_rss, "MB"))
    rows.append(Row(sec, "ours", "peak RSS", ours_rss, "MB", lc_rss / ours_rss))
    return rows


def floor_rows(
    acc: dict[str, Any], gemm: list[dict[str, Any]], ours: list[dict[str, Any]], lc: list[dict[str, Any]]
) -> tuple[list[Row], dict[str, Any]]:
    """Rows for the accounting and the compute floor, and the headline figures for ``--json``."""
    threads = gemm[0]["threads"]
    n = acc["chunks"]
    sec = f"what is embedded, and the floor (n={n}, {threads} thread(s))"
    rows: list[Row] = []
    tok = "tokens"
    rows.append(Row(sec, "model input", "tokens per chunk, mean", acc["tokens_mean"], tok))
    rows.append(Row(sec, "model input", "tokens per chunk, median", acc["tokens_median"], tok))
    rows.append(Row(sec, "model input", "tokens per chunk, min", acc["tokens_min"], tok))
    rows.append(Row(sec, "model input", "tokens per chunk, max", acc["tokens_max"], tok))
    rows.append(Row(sec, "model input", "truncated tokens", acc["truncated_tokens"], tok))
    rows.append(Row(sec, "model input", "share title/heading line", acc["context_share"], ""))
    rows.append(Row(sec, "model input", "share overlap w/ previous", acc["overlap_share"], ""))
    rows.append(Row(sec, "model input", "share [CLS]/[SEP]", acc["special_share"], ""))
    st, our = acc["padding_share"]["sentence-transformers"], acc["padding_share"]["ours"]
    rows.append(Row(sec, "langchain (s-t, by chars)", "share padding", st, ""))
    rows.append(Row(sec, "ours (length_batches)", "share padding", our, ""))
    by_rows: dict[str, float] = {}
    for key, lib in (("by_rows", "torch"), ("by_rows_ort", "ORT")):
        for m in gemm[0][key]:
            by_rows[f"{lib} {m}"] = _med([g[key][m] for g in gemm])
            rows.append(
                Row(sec, f"{lib} fp32 GEMM, {m} rows", "one layer's matmuls", by_rows[f"{lib} {m}"] / 1e9, "GFLOP/s")
            )
    gemm_rate = max(by_rows.values())  # attainable: the best library on the best of the model's own shapes
    flops = acc["flops"]
    per_chunk = flops["unpadded"] / n
    rows.append(Row(sec, "forward pass, no padding", "FLOPs per chunk", per_chunk / 1e9, "GFLOP"))
    floor = gemm_rate / per_chunk
    lc_tput = _med([r["chunks"] / r["build_s"] for r in lc])
    ours_embed = _med([r["embedded"] / r["embed_s"] for r in ours])
    ours_build = _med([r["chunks"] / r["build_s"] for r in ours])
    rows.append(Row(sec, "floor (FLOPs / GEMM rate)", "no padding", floor, "chunks/s"))
    rows.append(
        Row(sec, "floor (FLOPs / GEMM rate)", "s-t batches", gemm_rate * n / flops["sentence-transformers"], "chunks/s")
    )
    rows.append(Row(sec, "floor (FLOPs / GEMM rate)", "our batches", gemm_rate * n / flops["ours"], "chunks/s"))
    rows.append(Row(sec, "langchain FAISS.from_texts", "build throughput", lc_tput, "chunks/s"))
    rows.append(Row(sec, "ours build_index", "embedding only", ours_embed, "chunks/s", ours_embed / lc_tput))
    rows.append(Row(sec, "ours build_index", "build throughput", ours_build, "chunks/s", ours_build / lc_tput))
    rows.append(Row(sec, "langchain / floor", "fraction of the floor", lc_tput / floor, ""))
    rows.append(Row(sec, "ours embedding / floor", "fraction of the floor", ours_embed / floor, ""))
    rows.append(Row(sec, "ours build / floor", "fraction of the floor", ours_build / floor, ""))
    # Padding free: the measured rate scaled by the share of FLOPs spent on padded positions.
    lc_free = lc_tput * flops["sentence-transformers"] / flops["unpadded"]
    ours_free = ours_embed * flops["ours"] / flops["unpadded"]
    rows.append(Row(sec, "langchain, padding free", "build throughput", lc_free, "chunks/s"))
    rows.append(Row(sec, "ours, padding free", "embedding only", ours_free, "chunks/s", ours_free / lc_free))
    headline = {
        "threads": threads,
        "gemm_flops_per_s": gemm_rate,
        "flops_per_chunk": per_chunk,
        "floor_chunks_s": floor,
        "floor_chunks_s_st_batches": gemm_rate * n / flops["sentence-transformers"],
        "floor_chunks_s_our_batches": gemm_rate * n / flops["ours"],
        "langchain_chunks_s": lc_tput,
        "ours_embed_chunks_s": ours_embed,
        "ours_build_chunks_s": ours_build,
        "langchain_over_floor": lc_tput / floor,
        "ours_embed_over_floor": ours_embed / floor,
        "ours_build_over_floor": ours_build / floor,
        "langchain_chunks_s_padding_free": lc_free,
        "ours_embed_chunks_s_padding_free": ours_free,
        "padding_share": acc["padding_share"],
        "context_share": acc["context_share"],
        "overlap_share": acc["overlap_share"],
        "special_share": acc["special_share"],
        "tokens_mean": acc["tokens_mean"],
    }
    return rows, headline


def synthetic_rows(n: int, results: dict[str, dict[str, Any]]) -> list[Row]:
    sec = f"synthetic {n:,} x {DIM}, {len(next(iter(results.values()))['latency_s'])} queries"
    rows: list[Row] = []
    lc = results.get("langchain")
    truth = results["flat"]["ids"] if "flat" in results else None
    for route in ("langchain", "flat", "hnsw", "ivf"):
        r = results.get(route)
        if r is None:
            continue
        name = "langchain from_embeddings" if route == "langchain" else f"ours build_faiss {route}"
        figures = {
            "build": (r["build_s"], "s"),
            "query p50": (_pct(r["latency_s"], 50) * 1e3, "ms"),
            "query p95": (_pct(r["latency_s"], 95) * 1e3, "ms"),
            "peak RSS": (r["peak_rss_mb"], "MB"),
        }
        base = (
            {
                "build": lc["build_s"],
                "query p50": _pct(lc["latency_s"], 50) * 1e3,
                "query p95": _pct(lc["latency_s"], 95) * 1e3,
                "peak RSS": lc["peak_rss_mb"],
            }
            if lc is not None and route != "langchain"
            else {}
        )
        for metric, (value, unit) in figures.items():
            rows.append(Row(sec, name, metric, value, unit, base[metric] / value if metric in base else None))
        if truth is not None and route != "flat":
            rows.append(Row(sec, name, f"recall@{K} vs flat", _recall(r["ids"], truth), ""))
    return rows


def render(rows: list[Row]) -> str:
    lines = [f"{'route':<30} {'metric':<28} {'value':>12} {'unit':<9} {'vs langchain':>12}"]
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            lines.append(f"-- {section} " + "-" * max(0, 93 - len(section)))
        value = f"{r.value:.3f}" if r.unit == "" else f"{r.value:,.1f}" if r.value >= 10 else f"{r.value:.2f}"
        ratio = f"{r.vs_langchain:.2f}x" if r.vs_langchain is not None else ""
        lines.append(f"{r.route:<30} {r.metric:<28} {value:>12} {r.unit:<9} {ratio:>12}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m eval.bench_index",
        description="Index build and search: medcite vs the plain LangChain FAISS route, same machine, same run.",
    )
    ap.add_argument("--chunks", type=int, default=600, help="real chunks to embed per build (default 600)")
    ap.add_argument("--repeats", type=int, default=3, help="builds per real-chunk route, interleaved (default 3)")
    ap.add_argument("--queries", type=int, default=60, help="BioASQ questions timed per real-chunk route (default 60)")
    ap.add_argument(
        "--synthetic-queries", type=int, default=200, help="queries per synthetic route, halved at 1M (default 200)"
    )
    ap.add_argument(
        "--sizes",
        type=lambda v: [int(float(x)) for x in v.split(",")],
        default=[100_000, 1_000_000],
        help="synthetic index sizes, comma-separated (default 100000,1000000)",
    )
    ap.add_argument("--skip-1m", action="store_true", help="leave out the 1M-vector runs")
    ap.add_argument(
        "--ann-1m",
        action="store_true",
        help="also build HNSW and IVF over 1M vectors (tens of minutes on 2 cores; left out by default)",
    )
    ap.add_argument("--skip-real", action="store_true", help="leave out the real-chunk runs")
    ap.add_argument("--skip-synthetic", action="store_true", help="leave out the synthetic runs")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and FAISS threads in every route (default 1; 0: the libraries' own, all cores). With more "
        "threads than idle cores, OpenMP waits make single-query latency 10-30x worse and swamp the comparison",
    )
    ap.add_argument(
        "--backend",
        choices=["torch", "torch-bf16"],
        help="embed.backend for our route (default: settings); LangChain's route always runs float32 torch",
    )
    ap.add_argument(
        "--runtime",
        choices=["auto", "onnx", "torch"],
        help="embed.runtime for our route (default: settings); LangChain's route always runs torch",
    )
    ap.add_argument("--corpus", default="demo", help="pulled corpus to sample documents from (default demo)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows and raw timings here")
    args = ap.parse_args(argv)

    from pipeline.settings import Settings

    settings = Settings()
    started = time.perf_counter()
    load_start = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, python {platform.python_version()}, "
        f"{args.threads or 'default'} thread(s) per route, our embed backend {args.backend or settings.embed.backend}, "
        f"runtime {args.runtime or settings.embed.runtime}; "
        f"load average at start {load_start[0]:.2f}",
        flush=True,
    )
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    notes: list[str] = []
    floor: dict[str, Any] = {}

    if not args.skip_real:
        docs, chunks = sample(args.corpus, args.chunks, args.seed, settings)
        texts = [c.embedding_text() for c in chunks]
        queries = bioasq_questions(args.queries + WARMUP_QUERIES, args.seed)
        print(f"real: {len(docs)} documents -> {len(texts)} chunks; {len(queries)} BioASQ questions", flush=True)
        acc = accounting(chunks, settings)
        print(
            f"  {acc['tokens_mean']:.1f} tokens a chunk (median {acc['tokens_median']:.0f}); padding "
            f"{acc['padding_share']['sentence-transformers']:.1%} as sentence-transformers batches, "
            f"{acc['padding_share']['ours']:.1%} as ours; title/heading {acc['context_share']:.1%}, "
            f"overlap {acc['overlap_share']:.1%}",
            flush=True,
        )
        ours: list[dict[str, Any]] = []
        lc: list[dict[str, Any]] = []
        gemm: list[dict[str, Any]] = []
        for i in range(args.repeats):
            # Alternate which route goes first, so drift in background load falls on both.
            gemm.append(_fresh(_gemm, args.threads, acc["gemm_rows"], acc["model"]))
            rates = ", ".join(
                f"{lib} {m} rows {v / 1e9:.0f}"
                for lib, key in (("torch", "by_rows"), ("ORT", "by_rows_ort"))
                for m, v in gemm[-1][key].items()
            )
            print(f"  repeat {i + 1}/{args.repeats} GEMM GFLOP/s: {rates}", flush=True)
            for route in ("ours", "langchain") if i % 2 == 0 else ("langchain", "ours"):
                if route == "ours":
                    r = _fresh(_ours_real, docs, queries, args.threads, args.backend, args.runtime)
                    if r["chunks"] != len(texts):
                        notes.append(f"build_index made {r['chunks']} chunks, the sample has {len(texts)}")
                    ours.append(r)
                else:
                    lc.append(_fresh(_langchain_real, texts, queries, args.threads))
                last = (ours if route == "ours" else lc)[-1]
                print(f"  repeat {i + 1}/{args.repeats} {route}: build {last['build_s']:.1f} s", flush=True)
        rows += real_rows(ours, lc)
        more, floor = floor_rows(acc, gemm, ours, lc)
        rows += more
        raw["real"] = {
            "documents": len(docs),
            "chunks": len(texts),
            "ours": ours,
            "langchain": lc,
            "accounting": acc,
            "gemm": gemm,
        }

    if not args.skip_synthetic:
        sizes = [n for n in args.sizes if not (args.skip_1m and n >= 1_000_000)]
        for n in sizes:
            routes = ["flat", "langchain", "hnsw", "ivf"]
            if n >= 1_000_000 and not args.ann_1m:
                routes = ["flat", "langchain"]
                hnsw_100k = raw.get("synthetic_100000", {}).get("hnsw", {}).get("build_s")
                estimate = f" (100k took {hnsw_100k:.0f} s; n log n makes 1M about 12x that)" if hnsw_100k else ""
                notes.append(
                    f"hnsw and ivf over 1M vectors were not built: the HNSW build alone would take tens of minutes"
                    f"{estimate}, and IVF trains 4,000 centroids on 1M points; pass --ann-1m to measure them"
                )
            # A 1M flat search takes ~0.2 s a query on one core: half the queries keep the run short.
            n_queries = args.synthetic_queries if n < 1_000_000 else max(1, args.synthetic_queries // 2)
            results: dict[str, dict[str, Any]] = {}
            for route in routes:
                results[route] = _fresh(_synthetic, route, n, n_queries, args.seed, args.threads)
                print(f"  synthetic {n:,} {route}: build {results[route]['build_s']:.1f} s", flush=True)
            rows += synthetic_rows(n, results)
            raw[f"synthetic_{n}"] = {k: {kk: vv for kk, vv in v.items() if kk != "ids"} for k, v in results.items()}

    load_end = os.getloadavg()
    print()
    print(render(rows))
    print(
        f"\nvs langchain: > 1 means ours is better (throughput ours/langchain; latency, build time and memory "
        f"langchain/ours). Medians of {args.repeats} interleaved runs for real chunks; model load excluded from both "
        f"routes. Load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; total "
        f"{time.perf_counter() - started:.0f} s."
    )
    for note in notes:
        print(f"note: {note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "load_average": {"start": load_start, "end": load_end},
            "cpus": os.cpu_count(),
            "rows": [asdict(r) for r in rows],
            "notes": notes,
            "floor": floor,
            "raw": raw,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
