"""What a support judge is: (claim, passage) pairs in, support scores out, and a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipeline.crossencoder import RELATIONS  # what a three-way judge's relations() columns are

Pair = tuple[str, str]  # (claim, passage)


class Judge(Protocol):
    name: str
    threshold: float  # score >= threshold means supported

    def fingerprint(self) -> str:
        """Changes whenever scores could change (model files, parameters, prompt)."""
        ...

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        """Support scores, one per pair, higher = better supported."""
        ...


def relations_of(judge: object, pairs: Sequence[Pair]) -> np.ndarray | None:
    """P(supported), P(contradicted), P(nei) per pair, shape ``(n, 3)``, from a judge that reads three ways
    (``three_way`` true and a ``relations`` method, as the trained checker has); None from any other judge."""
    if not getattr(judge, "three_way", False):
        return None
    if not pairs:
        return np.zeros((0, len(RELATIONS)), dtype=np.float32)
    return np.asarray(judge.relations(pairs), dtype=np.float32)  # type: ignore[attr-defined]


def is_contradicted(relations: np.ndarray) -> np.ndarray:
    """Rows whose most likely relation is "contradicted"."""
    best: np.ndarray = np.asarray(relations).argmax(axis=1)
    return np.asarray(best == RELATIONS.index("contradicted"), dtype=bool)
