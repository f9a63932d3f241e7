"""The trained judges: our claim checker (:mod:`pipeline.judge.checker`) alone, and blended with two others."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.judge.base import Pair
from pipeline.judge.checker import WEIGHTS, ClaimChecker
from pipeline.judge.embedding import EmbeddingJudge
from pipeline.judge.lexical import LexicalJudge


class TrainedJudge:
    """The trained claim checker (a MiniLM cross-encoder, :mod:`pipeline.checker`): P(supported)."""

    name = "trained"

    def __init__(
        self, path: str | Path | None = None, *, threshold: float | None = None, bf16: bool | None = None
    ) -> None:
        self.checker = ClaimChecker(path or WEIGHTS, bf16=bf16)
        self.threshold = self.checker.config.threshold if threshold is None else threshold

    def fingerprint(self) -> str:
        return self.checker.fingerprint()

    @property
    def three_way(self) -> bool:
        """Whether the weights give supported / contradicted / nei (:meth:`relations`)."""
        return self.checker.three_way

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return self.checker.score(pairs)

    def relations(self, pairs: Sequence[Pair]) -> np.ndarray:
        """P(supported), P(contradicted), P(nei) per pair (a three-way checker only)."""
        return self.checker.relations(pairs)


class BlendJudge:
    """A logistic blend of the trained checker's logit with the embedding and lexical scores.

    Its coefficients are fitted on the checker's development pairs (``medcite judge train``) and stored
    in ``checker.json`` as ``blend``.
    """

    name = "blend"

    def __init__(self, path: str | Path | None = None, *, threshold: float | None = None, embedder: Any = None) -> None:
        self.trained = TrainedJudge(path)
        blend = self.trained.checker.config.blend
        if not blend:
            raise InputError(f"{self.trained.checker.path}: no blend fitted; run `medcite judge train`")
        self.coef = np.asarray(blend["coef"], dtype=np.float64)
        self.intercept = float(blend["intercept"])
        self.embedding = EmbeddingJudge(embedder=embedder)
        self.lexical = LexicalJudge()
        self.threshold = float(blend["threshold"]) if threshold is None else threshold

    @property
    def three_way(self) -> bool:
        return self.trained.three_way

    def relations(self, pairs: Sequence[Pair]) -> np.ndarray:
        """The checker's three-way reading; the blend itself scores only P(supported)."""
        return self.trained.relations(pairs)

    def fingerprint(self) -> str:
        return f"blend-v1:{self.trained.fingerprint()}:{self.embedding.fingerprint()}:{self.lexical.fingerprint()}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        z = self.trained.checker.logits(pairs).astype(np.float64)
        x = np.column_stack(
            [np.where(np.isfinite(z), z, -10.0), self.embedding.score(pairs), self.lexical.score(pairs)]
        )
        return (1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))).astype(np.float32)
