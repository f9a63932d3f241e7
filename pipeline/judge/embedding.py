"""The embedding judge: highest cosine between the claim and one or two consecutive passage sentences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.chunk import SpacySentences
from pipeline.embed import default_embedder
from pipeline.judge.base import Pair


class EmbeddingJudge:
    """Max cosine between the claim and passage windows of one or two sentences (bundled MiniLM)."""

    name = "embedding"

    def __init__(self, embedder: Any = None, splitter: Any = None, threshold: float = 0.6) -> None:
        self.embedder = embedder or default_embedder()
        self.splitter = splitter or SpacySentences()
        self.threshold = threshold

    def fingerprint(self) -> str:
        return f"embedding-v2:{self.embedder.fingerprint()[:16]}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        passages = list(dict.fromkeys(p for _, p in pairs))
        # Lines first: spaCy runs a title line into the sentence below it ("Title?\nData were ..." is one
        # sentence to it), and a quoted statement is judged against its source's title and sentences.
        lines = {p: [x.strip() for x in p.splitlines() if x.strip()] or [p] for p in passages}
        flat = [x for p in passages for x in lines[p]]
        split = dict(zip(flat, self.splitter.split(flat), strict=True)) if flat else {}
        windows: dict[str, list[str]] = {}
        for p in passages:
            ss = [s for x in lines[p] for s in (split[x] or [x])]
            windows[p] = ss + [f"{a} {b}" for a, b in zip(ss, ss[1:], strict=False)]
        texts = list(dict.fromkeys([c for c, _ in pairs] + [w for ws in windows.values() for w in ws]))
        vecs = dict(zip(texts, self.embedder.encode(texts), strict=True))
        out = np.zeros(len(pairs), dtype=np.float32)
        for i, (c, p) in enumerate(pairs):
            w = np.stack([vecs[x] for x in windows[p]])
            out[i] = float((w @ vecs[c]).max())
        return out
