"""The nli judge: any local Hugging Face sequence-classification NLI model (a folder), P(entailment)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.embed import hash_files
from pipeline.errors import InputError
from pipeline.judge.base import Pair


class NLIJudge:
    """Any local Hugging Face NLI / claim-verification model (a folder): P(entailment | passage, claim)."""

    name = "nli"

    def __init__(self, path: str | Path, *, threshold: float = 0.5, max_length: int = 512, batch_size: int = 8) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer  # heavy: only when used

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise InputError(f"{self.path}: not a Hugging Face model folder (no config.json)")
        # local_files_only: a model folder is read as it is, never completed from a hub.
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(self.path), local_files_only=True).eval()
        labels = {int(k): str(v).lower() for k, v in self.model.config.id2label.items()}
        entail = [k for k, v in labels.items() if "entail" in v and "not" not in v] or [
            k for k, v in labels.items() if v in ("supported", "support", "yes", "true", "label_1")
        ]
        if not entail:
            raise InputError(f"{self.path}: no entailment label among {sorted(labels.values())}")
        self.entail = entail[0]
        self.threshold = threshold
        self.max_length = max_length
        self.batch_size = batch_size
        self._fp = hash_files(self.path)[:16]

    def fingerprint(self) -> str:
        return f"nli-v1:{self._fp}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        import torch

        out: list[float] = []
        for i in range(0, len(pairs), self.batch_size):
            batch = pairs[i : i + self.batch_size]
            enc = self.tokenizer(
                [p for _, p in batch],
                [c for c, _ in batch],
                truncation="only_first",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                probs = torch.softmax(self.model(**enc).logits, dim=-1)[:, self.entail]
            out.extend(float(x) for x in probs)
        return np.array(out, dtype=np.float32)
