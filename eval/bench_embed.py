"""Speed-ups for the embedding step of an index build: how fast, and how far the vectors move.

Embedding dominates ``build_index`` with the bundled MiniLM. Each candidate embeds the same real chunks
(the seeded demo-corpus sample of ``eval.bench_index``) and is compared with
``SentenceTransformerEmbedder.encode`` run in torch float32 (``embed.runtime=torch``: length batches,
:func:`pipeline.embed.length_batches`). ``onnx`` is what ``embed.runtime=auto`` runs (the same export and
:class:`pipeline.embed.OnnxEncoder`; the file here goes to ``--workdir``)::

    python -m eval.bench_embed                        # all candidates whose packages are installed
    python -m eval.bench_embed --candidates torch,onnx-int8 --chunks 300 --json runs/bench_embed.json

Reported per candidate: throughput (chunks/s, median of ``--repeats`` interleaved passes), speed-up
over the baseline, cosine between its vectors and the baseline's on every chunk (mean and minimum;
a candidate needs a mean of at least 0.99 to be acceptable), and the overlap of the top 10 chunks
for BioASQ questions when queries and chunks are both embedded by the candidate.

The ``onnx*`` candidates use ``onnxruntime`` and ``onnx`` (dependencies of medcite):
sentence-transformers' own ``backend="onnx"`` needs optimum-onnx, which pins transformers below 4.58 and
so cannot be installed beside transformers 5, so the model is exported with ``torch.onnx.export``
from the bundled folder (offline, :func:`pipeline.embed.export_onnx`) and run with ONNX Runtime, tokenised,
mean-pooled and normalised as sentence-transformers does.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import copy  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

Encode = Callable[[list[str]], np.ndarray]

BATCH = 32


def _unit(x: Any) -> np.ndarray:
    v = np.asarray(x, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- candidates


def _baseline(threads: int, workdir: Path) -> Encode:
    from pipeline.embed import SentenceTransformerEmbedder
    from pipeline.settings import EmbedSettings

    emb = SentenceTransformerEmbedder(EmbedSettings(runtime="torch"))
    return lambda texts: emb.encode(texts)


def _st_model() -> Any:
    from sentence_transformers import SentenceTransformer

    from pipeline.embed import bundled_model_path
    from pipeline.settings import EmbedSettings

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = EmbedSettings().max_tokens
    return model


def _torch_batch128(threads: int, workdir: Path) -> Encode:
    model = _st_model()
    return lambda texts: _unit(model.encode(texts, batch_size=128, convert_to_numpy=True))


def _torch_bf16(threads: int, workdir: Path) -> Encode:
    import torch

    model = _st_model().to(torch.bfloat16)
    return lambda texts: _unit(model.encode(texts, batch_size=BATCH, convert_to_tensor=True).float().numpy())


def _torch_autocast_bf16(threads: int, workdir: Path) -> Encode:
    import torch

    model = _st_model()

    def encode(texts: list[str]) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model.encode(texts, batch_size=BATCH, convert_to_tensor=True)
        return _unit(out.float().numpy())

    return encode


def _torch_int8_dynamic(threads: int, workdir: Path) -> Encode:
    import torch

    model = _st_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        qmodel = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    return lambda texts: _unit(qmodel.encode(texts, batch_size=BATCH, convert_to_numpy=True))


def _onnx_files(workdir: Path, kind: str) -> Path:
    from pipeline.embed import bundled_model_path, export_onnx

    fp32 = workdir / "model.onnx"
    if not fp32.exists():
        export_onnx(bundled_model_path(), fp32)
    if kind == "fp32":
        return fp32
    if kind == "opt":  # onnxruntime's BERT fusions (attention, GELU, layer norm)
        opt = workdir / "model.opt.onnx"
        if not opt.exists():
            from onnxruntime.transformers.optimizer import optimize_model

            optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(opt))
        return opt
    # int8: dynamic quantisation of the plain export (quantising the fused "opt" graph fails: its fused
    # MatMuls lose their type information in shape inference).
    q = workdir / "model.int8.onnx"
    if not q.exists():
        from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

        prep = workdir / "model.prep.onnx"  # ONNX shape inference, as onnxruntime recommends before quantising
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_dynamic(str(prep), str(q), weight_type=QuantType.QInt8, per_channel=True)
    return q


def _onnx(kind: str) -> Callable[[int, Path], Encode]:
    """A variant of the ONNX file run as ``embed.runtime=onnx`` runs its own: OnnxEncoder over length batches."""

    def make(threads: int, workdir: Path) -> Encode:
        from pipeline.embed import OnnxEncoder, SentenceTransformerEmbedder, bundled_model_path
        from pipeline.settings import EmbedSettings

        emb = SentenceTransformerEmbedder(EmbedSettings(runtime="torch"))
        emb._onnx = OnnxEncoder(_onnx_files(workdir, kind), bundled_model_path(), emb.max_tokens, threads)
        emb._runtime_chosen = True
        return lambda texts: emb.encode(texts)

    return make


CANDIDATES: dict[str, tuple[Callable[[int, Path], Encode], str | None]] = {
    "torch": (_baseline, None),  # embed.runtime=torch: the baseline
    "torch-b128": (_torch_batch128, None),
    "torch-bf16": (_torch_bf16, None),
    "torch-autocast-bf16": (_torch_autocast_bf16, None),
    "torch-int8-dynamic": (_torch_int8_dynamic, None),
    "onnx": (_onnx("fp32"), "onnxruntime"),
    "onnx-opt": (_onnx("opt"), "onnxruntime"),
    "onnx-int8": (_onnx("int8"), "onnxruntime"),
}


# --------------------------------------------------------------------------- main


def _top10(queries: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ chunks.T), axis=1)[:, :10]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_embed", description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=400, help="real chunks to embed (default 400)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per candidate, interleaved (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for torch and ONNX Runtime (default 1)")
    ap.add_argument("--queries", type=int, default=100, help="BioASQ questions for the top-10 overlap (default 100)")
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated; 'torch' is always run")
    ap.add_argument("--corpus", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="keep the exported ONNX files here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from eval.bench_index import bioasq_questions, sample_chunks
    from pipeline.settings import Settings

    torch.set_num_threads(args.threads)
    names = ["torch", *(c for c in args.candidates.split(",") if c and c != "torch")]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    _, texts = sample_chunks(args.corpus, args.chunks, args.seed, Settings())
    queries = bioasq_questions(args.queries, args.seed)
    print(f"{len(texts)} chunks, {len(queries)} BioASQ questions, {args.threads} thread(s)", flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="bench-embed-")
    workdir = args.workdir or Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    encoders: dict[str, Encode] = {}
    skipped: dict[str, str] = {}
    for name in names:
        make, needs = CANDIDATES[name]
        if needs and importlib.util.find_spec(needs) is None:
            skipped[name] = f"{needs} is not installed"
            continue
        t = time.perf_counter()
        try:
            enc = make(args.threads, workdir)
            enc(texts[:4])  # warm up
        except Exception as e:  # noqa: BLE001 - one candidate failing is a finding, not a crash
            skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            continue
        encoders[name] = enc
        print(f"  {name}: ready in {time.perf_counter() - t:.1f} s", flush=True)

    seconds: dict[str, list[float]] = {n: [] for n in encoders}
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for name in encoders if r % 2 == 0 else reversed(list(encoders)):
            t = time.perf_counter()
            vectors[name] = encoders[name](texts)
            seconds[name].append(time.perf_counter() - t)
        print(f"  pass {r + 1}/{args.repeats} done", flush=True)

    base = vectors["torch"]
    base_top = _top10(encoders["torch"](queries), base)
    base_tput = len(texts) / statistics.median(seconds["torch"])
    results = []
    for name in encoders:
        tput = len(texts) / statistics.median(seconds[name])
        cos = np.sum(vectors[name] * base, axis=1)
        top = _top10(encoders[name](queries), vectors[name])
        overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, base_top, strict=True)]))
        results.append(
            {
                "candidate": name,
                "chunks_per_s": tput,
                "speedup": tput / base_tput,
                "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()),
                "top10_overlap": overlap,
                "seconds": seconds[name],
            }
        )
    print(f"\n{'candidate':<22} {'chunks/s':>9} {'speed-up':>9} {'cos mean':>9} {'cos min':>9} {'top10 overlap':>14}")
    for x in results:
        print(
            f"{x['candidate']:<22} {x['chunks_per_s']:>9.1f} {x['speedup']:>8.2f}x {x['cos_mean']:>9.5f} "
            f"{x['cos_min']:>9.5f} {x['top10_overlap']:>14.3f}"
        )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "skipped": skipped}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
