"""Fakes for the costly seams, passed in as arguments (never monkeypatched)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pipeline.index import Index
    from pipeline.settings import Settings
    from pipeline.types import Document

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Deterministic bag-of-words embedder: each lower-cased word adds +1 to a hashed dimension.

    Texts that share words get a high cosine, which is enough to test retrieval plumbing.
    ``count_tokens`` counts whitespace-separated words, so chunk sizes are easy to reason about.
    """

    def __init__(self, dim: int = 64, max_tokens: int = 256, name: str = "fake/hashing", salt: str = "") -> None:
        self._dim = dim
        self._max_tokens = max_tokens
        self._name = name
        self.salt = salt
        self.encoded: list[str] = []  # every text ever encoded, to assert what was (re-)embedded

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self._name}:{self._dim}:{self.salt}".encode()).hexdigest()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                h = int.from_bytes(hashlib.blake2b(f"{self.salt}{w}".encode(), digest_size=4).digest(), "little")
                out[i, h % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


class FailingEmbedder(HashingEmbedder):
    """Raises on encode: simulates a crash in the middle of a build."""

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        raise RuntimeError("simulated crash while embedding")


class ScriptedBackend:
    """A chat backend that returns scripted replies in small pieces and records what it was sent."""

    def __init__(self, replies: list[str], piece: int = 7, model: str = "scripted") -> None:
        self.replies = list(replies)
        self.piece = piece
        self._model = model
        self.calls: list[tuple[list[dict[str, str]], dict[str, object]]] = []

    @property
    def model(self) -> str:
        return self._model

    def stream(self, messages: list[dict[str, str]], schema: dict[str, object], max_tokens: int):  # type: ignore[no-untyped-def]
        self.calls.append((messages, schema))
        reply = self.replies.pop(0) if self.replies else '{"questions": []}'
        for i in range(0, len(reply), self.piece):
            yield reply[i : i + self.piece]


class KeywordJudge:
    """Supported when every word of the claim (lower-cased, 4+ letters) appears in the passage."""

    name = "keyword"
    threshold = 0.5

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def fingerprint(self) -> str:
        return "keyword-v1"

    def score(self, pairs):  # type: ignore[no-untyped-def]
        self.seen.extend(pairs)
        out = []
        for claim, passage in pairs:
            words = [w for w in re.findall(r"[a-z]{4,}", claim.lower())]
            out.append(1.0 if words and all(w in passage.lower() for w in words) else 0.0)
        return np.array(out, dtype=np.float32)


def hashed_index(folder: Path, documents: Sequence[Document], settings: Settings, splitter: Any) -> Index:
    """A real index of ``documents`` built and opened with the :class:`HashingEmbedder` (the unit tests' index)."""
    from pipeline.index import build_index, open_index

    emb = HashingEmbedder()
    build_index(folder, documents=documents, settings=settings, embedder=emb, splitter=splitter, progress=False)
    return open_index(folder, settings=settings, embedder=emb)


class ContradictionJudge(KeywordJudge):
    """A three-way :class:`KeywordJudge`: a claim holding "never" whose other words are all in the passage is
    contradicted by it (the passage says the thing happens); otherwise supported, or not enough information."""

    name = "contradiction"
    three_way = True

    def fingerprint(self) -> str:
        return "contradiction-v1"

    def relations(self, pairs):  # type: ignore[no-untyped-def]
        out = []
        for claim, passage in pairs:
            words = [w for w in re.findall(r"[a-z]{4,}", claim.lower())]
            rest = [w for w in words if w != "never"]
            if "never" in words and rest and all(w in passage.lower() for w in rest):
                out.append((0.05, 0.9, 0.05))
            elif words and all(w in passage.lower() for w in words):
                out.append((0.9, 0.05, 0.05))
            else:
                out.append((0.1, 0.1, 0.8))
        return np.array(out, dtype=np.float32)

    def score(self, pairs):  # type: ignore[no-untyped-def]
        self.seen.extend(pairs)
        return self.relations(pairs)[:, 0] if pairs else np.zeros(0, dtype=np.float32)
