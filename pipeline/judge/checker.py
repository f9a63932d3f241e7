"""The trained claim checker: a MiniLM cross-encoder that reads (passage, claim) and gives P(supported).

Built the way MiniCheck was built, small enough for two CPU cores (see :mod:`pipeline.crossencoder` for the
machinery it shares with the relevance model). Its weights are ``pipeline/weights/checker``; ``medcite judge
train`` (``eval/train_judge.py``) reproduces them.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.crossencoder import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckerConfig,
    CrossEncoder,
    base_model_path,
    best_window,
    cpu_has_bf16,
    encode,
    load_base,
    passage_windows,
    save_weights,
    trainable,
)
from pipeline.text import content_words, sentences

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "checker"


class ClaimChecker(CrossEncoder):
    """P(supported) for (claim, passage) pairs; the bundled weights unless ``path`` names others."""

    what = "claim checker"
    train_command = "medcite judge train"

    def __init__(self, path: str | Path = WEIGHTS, *, bf16: bool | None = None, batch_size: int = 32) -> None:
        super().__init__(path, bf16=bf16, batch_size=batch_size)


__all__ = [
    "CONFIG_FILE",
    "WEIGHTS",
    "WEIGHTS_FILE",
    "CheckerConfig",
    "ClaimChecker",
    "CrossEncoder",
    "base_model_path",
    "best_window",
    "content_words",
    "cpu_has_bf16",
    "encode",
    "load_base",
    "passage_windows",
    "save_weights",
    "sentences",
    "trainable",
]
