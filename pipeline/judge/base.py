"""What a support judge is: (claim, passage) pairs in, support scores out, and a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

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
