"""Support judges: how strongly does a passage support a claim? One protocol, several families.

Every judge maps (claim, passage) pairs to scores, higher meaning better supported, and has a
threshold at which a score counts as supported (calibrated by ``medcite eval calibrate``). Judges are
deterministic; :class:`CachedJudge` stores scores on disk by judge fingerprint, claim and passage
hash, so a re-run costs nothing. The judge is one of the pipeline's costly seams: ``medcite ask
--verify`` uses one at answer time, ``medcite eval`` to measure answers.

- ``lexical``: share of the claim's content words found in the passage, with penalties for numbers
  the passage does not contain and for a negation on one side only.
- ``embedding``: highest cosine between the claim and any one or two consecutive passage sentences
  (bundled MiniLM).
- ``llm``: the bundled instruct model asked whether the passage fully supports the claim, scored
  by logit(Yes) - logit(No). The passage comes first in the prompt, so claims that cite the same
  passage reuse its KV cache.
- ``nli``: any local Hugging Face sequence-classification NLI model (a folder), P(entailment).
- ``openai``: a served model asked the same yes/no question, scored from its log-probabilities.
- ``trained``: our own claim checker, a MiniLM cross-encoder fine-tuned on labelled and synthetic
  claim/passage pairs (``medcite judge train``); P(supported), best sentence window of the passage.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.errors import GenerationError, InputError

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- lexical

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
# Quantities only: digits inside names (COVID-19, IL-6, SARS-CoV-2, Covid19) are not numbers to check.
_NUMBER = re.compile(r"(?<![A-Za-z])(?<![A-Za-z]-)\b\d+(?:[.,]\d+)?\b(?!-?[A-Za-z])")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|doesn't|don't|didn't|isn't|aren't|wasn't|weren't"
    r"|fails?|failed|lack(?:s|ed)?|absence)\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_STOP = frozenset(
    (
        "a an the of in on at to for from by with and or as is are was were be been being this that these those it "
        "its their there which who whom whose what when where how than then also may can could should would will "
        "shall do does did has have had such into over under about between during after before more most less other "
        "some any each all"
    ).split()
)


def _stem(words: list[str]) -> list[str]:
    import Stemmer

    return list(Stemmer.Stemmer("english").stemWords(words))


def _content(text: str) -> list[str]:
    return _stem([t for t in _TOKEN.findall(text.lower()) if t not in _STOP and len(t) > 1])


class LexicalJudge:
    """Token overlap with number and negation checks; fast, transparent, no model."""

    name = "lexical"

    def __init__(self, threshold: float = 0.6, number_penalty: float = 0.5, negation_penalty: float = 0.5) -> None:
        self.threshold = threshold
        self.number_penalty = number_penalty
        self.negation_penalty = negation_penalty

    def fingerprint(self) -> str:
        return f"lexical-v2:{self.number_penalty}:{self.negation_penalty}"

    def score_one(self, claim: str, passage: str) -> float:
        c = _content(claim)
        if not c:
            return 0.0
        p = set(_content(passage))
        s = sum(1 for t in c if t in p) / len(c)
        numbers = {n.replace(",", "") for n in _NUMBER.findall(claim)}
        passage_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
        if numbers - passage_numbers:
            s *= self.number_penalty
        # Negation is compared with the passage sentences that best match the claim, not the whole passage:
        # a passage that says "not" somewhere else does not contradict the claim.
        sents = [x for x in _SENTENCE.split(passage) if x.strip()] or [passage]
        windows = sents + [f"{a} {b}" for a, b in zip(sents, sents[1:], strict=False)]
        cset = set(c)
        best = max(windows, key=lambda w: (len(cset & set(_content(w))), -len(w)))
        if bool(_NEGATION.search(claim)) != bool(_NEGATION.search(best)):
            s *= self.negation_penalty
        return s

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return np.array([self.score_one(c, p) for c, p in pairs], dtype=np.float32)


# --------------------------------------------------------------------------- embedding


class EmbeddingJudge:
    """Max cosine between the claim and passage windows of one or two sentences (bundled MiniLM)."""

    name = "embedding"

    def __init__(self, embedder: Any = None, splitter: Any = None, threshold: float = 0.6) -> None:
        from pipeline.chunk import SpacySentences
        from pipeline.embed import default_embedder

        self.embedder = embedder or default_embedder()
        self.splitter = splitter or SpacySentences()
        self.threshold = threshold

    def fingerprint(self) -> str:
        return f"embedding-v1:{self.embedder.fingerprint()[:16]}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        passages = list(dict.fromkeys(p for _, p in pairs))
        sents = self.splitter.split(passages)
        windows: dict[str, list[str]] = {}
        for p, ss in zip(passages, sents, strict=True):
            ss = ss or [p]
            windows[p] = ss + [f"{a} {b}" for a, b in zip(ss, ss[1:], strict=False)]
        texts = list(dict.fromkeys([c for c, _ in pairs] + [w for ws in windows.values() for w in ws]))
        vecs = dict(zip(texts, self.embedder.encode(texts), strict=True))
        out = np.zeros(len(pairs), dtype=np.float32)
        for i, (c, p) in enumerate(pairs):
            w = np.stack([vecs[x] for x in windows[p]])
            out[i] = float((w @ vecs[c]).max())
        return out


# --------------------------------------------------------------------------- cache


class LLMJudge:
    """The bundled instruct model's yes/no judgement: score = logit(Yes) - logit(No)."""

    name = "llm"

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        threshold: float = 0.0,
        reuse_prefix: bool = True,
        llm: Any = None,
    ) -> None:
        from pipeline.prompts import load_prompt

        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.threshold = threshold
        self.reuse_prefix = reuse_prefix
        self.prompt = load_prompt("judge")
        self._llm = llm
        self._yes_no: tuple[list[int], list[int]] | None = None
        self.evaluated_tokens = 0  # tokens actually run through the model (prefix reuse lowers it)

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            path = self.model_path
            if path is None:
                from pipeline.models import bundled_gguf
                from pipeline.settings import LlamaSettings

                path = str(bundled_gguf(LlamaSettings().cache_dir))
            self.model_path = path
            self._llm = Llama(
                model_path=path, n_ctx=self.n_ctx, n_threads=self.n_threads, n_batch=256, seed=0, verbose=False
            )
        return self._llm

    def fingerprint(self) -> str:
        from pathlib import Path as _P

        model = _P(self.model_path).name if self.model_path else "bundled-qwen2.5-1.5b"
        return f"llm-v1:{model}:{self.prompt.hash}"

    def _tokens(self, claim: str, passage: str) -> list[int]:
        llm = self.llm
        msgs = self.prompt.render(passage=passage, claim=claim)
        text = (
            f"<|im_start|>system\n{msgs[0]['content']}<|im_end|>\n"
            f"<|im_start|>user\n{msgs[1]['content']}<|im_end|>\n<|im_start|>assistant\n"
        )
        toks: list[int] = llm.tokenize(text.encode(), add_bos=False, special=True)
        budget = self.n_ctx - 8
        if len(toks) > budget:  # cut the passage, keep the claim and question
            head = llm.tokenize(f"Passage:\n{passage}".encode(), add_bos=False, special=False)
            cut = len(toks) - budget
            short = llm.detokenize(head[: max(16, len(head) - cut - 8)]).decode(errors="ignore")
            return self._tokens(claim, short.removeprefix("Passage:\n") + " …")
        return toks

    def _ids(self) -> tuple[list[int], list[int]]:
        if self._yes_no is None:
            llm = self.llm
            yes = {llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("Yes", " Yes", "yes")}
            no = {llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("No", " No", "no")}
            self._yes_no = (sorted(yes), sorted(no))
        return self._yes_no

    def _logits_after(self, tokens: list[int]) -> np.ndarray:
        llm = self.llm
        keep = 0
        if self.reuse_prefix and llm.n_tokens:
            prev = llm.input_ids[: llm.n_tokens]
            n = min(len(prev), len(tokens) - 1)
            while keep < n and prev[keep] == tokens[keep]:
                keep += 1
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        self.evaluated_tokens += len(tokens) - keep
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return np.array(logits, dtype=np.float32)

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        out = np.zeros(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        yes, no = self._ids()
        # Same passage, then same claim, next to each other: the shared prefix is evaluated once.
        order = sorted(range(len(pairs)), key=lambda i: (pairs[i][1], pairs[i][0]))
        for i in order:
            claim, passage = pairs[i]
            logits = self._logits_after(self._tokens(claim, passage))
            out[i] = float(np.logaddexp.reduce(logits[yes]) - np.logaddexp.reduce(logits[no]))
        return out


class NLIJudge:
    """Any local Hugging Face NLI / claim-verification model (a folder): P(entailment | passage, claim)."""

    name = "nli"

    def __init__(self, path: str | Path, *, threshold: float = 0.5, max_length: int = 512, batch_size: int = 8) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise InputError(f"{self.path}: not a Hugging Face model folder (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(self.path)).eval()
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
        from pipeline.embed import _hash_files

        self._fp = _hash_files(self.path)[:16]

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


class TrainedJudge:
    """The trained claim checker (a MiniLM cross-encoder, :mod:`pipeline.checker`): P(supported)."""

    name = "trained"

    def __init__(
        self, path: str | Path | None = None, *, threshold: float | None = None, bf16: bool | None = None
    ) -> None:
        from pipeline.checker import WEIGHTS, ClaimChecker

        self.checker = ClaimChecker(path or WEIGHTS, bf16=bf16)
        self.threshold = self.checker.config.threshold if threshold is None else threshold

    def fingerprint(self) -> str:
        return self.checker.fingerprint()

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return self.checker.score(pairs)


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


class OpenAIJudge:
    """A served model (OpenAI-compatible) asked the yes/no question; score from its log-probabilities."""

    name = "openai"

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 60.0, threshold: float = 0.0
    ) -> None:
        from pipeline.prompts import load_prompt

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.threshold = threshold
        self.prompt = load_prompt("judge")

    def fingerprint(self) -> str:
        return f"openai-v1:{self.base_url}:{self.model}:{self.prompt.hash}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        import httpx

        url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        out: list[float] = []
        with httpx.Client(timeout=self.timeout_s) as client:
            for claim, passage in pairs:
                body = {
                    "model": self.model,
                    "messages": self.prompt.render(passage=passage, claim=claim),
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "logprobs": True,
                    "top_logprobs": 10,
                }
                try:
                    r = client.post(url, json=body, headers=headers)
                except httpx.HTTPError as e:
                    raise GenerationError(f"{url}: cannot reach the judge server ({e})") from None
                if r.status_code != 200:
                    raise GenerationError(f"{url}: HTTP {r.status_code}: {r.text[:200]}")
                choice = r.json()["choices"][0]
                top = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
                lp = {t["token"].strip().lower(): t["logprob"] for t in top}
                if "yes" in lp or "no" in lp:
                    out.append(lp.get("yes", -30.0) - lp.get("no", -30.0))
                else:
                    text = str(choice.get("message", {}).get("content", "")).strip().lower()
                    out.append(1.0 if text.startswith("yes") else -1.0)
        return np.array(out, dtype=np.float32)


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CachedJudge:
    """Wraps a judge with an SQLite cache keyed by (judge fingerprint, claim sha256, passage sha256)."""

    def __init__(self, judge: Judge, path: str | Path) -> None:
        self.judge = judge
        self.name = judge.name
        self.threshold = judge.threshold
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS scores (judge TEXT, claim TEXT, passage TEXT, score REAL, "
            "PRIMARY KEY (judge, claim, passage))"
        )
        self.hits = 0
        self.misses = 0

    def fingerprint(self) -> str:
        return self.judge.fingerprint()

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        fp = self.judge.fingerprint()
        keys = [(fp, _h(c), _h(p)) for c, p in pairs]
        found: dict[tuple[str, str, str], float] = {}
        with self._lock:
            for k in dict.fromkeys(keys):
                row = self._db.execute("SELECT score FROM scores WHERE judge=? AND claim=? AND passage=?", k).fetchone()
                if row is not None:
                    found[k] = float(row[0])
        todo = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(pairs) - len(todo)
        self.misses += len(todo)
        if todo:
            uniq = list(dict.fromkeys(keys[i] for i in todo))
            first = {k: next(i for i in todo if keys[i] == k) for k in uniq}
            scores = self.judge.score([pairs[first[k]] for k in uniq])
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
                    [(*k, float(s)) for k, s in zip(uniq, scores, strict=True)],
                )
                self._db.commit()
            found.update({k: float(s) for k, s in zip(uniq, scores, strict=True)})
        return np.array([found[k] for k in keys], dtype=np.float32)

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------- registry

JUDGES: dict[str, Callable[..., Judge]] = {
    "lexical": LexicalJudge,
    "embedding": EmbeddingJudge,
    "llm": LLMJudge,
    "nli": NLIJudge,
    "openai": OpenAIJudge,
    "trained": TrainedJudge,
    "blend": BlendJudge,
}


def make_judge(name: str, **kwargs: Any) -> Judge:
    """A judge by name (lexical, embedding, llm, nli, openai, trained, or one registered in ``JUDGES``)."""
    if name not in JUDGES:
        raise InputError(f"unknown judge {name!r}; choose one of {sorted(JUDGES)}")
    return JUDGES[name](**kwargs)


def judge_from_settings(settings: Any, name: str | None = None, *, embedder: Any = None) -> Judge:
    """The judge that settings (``settings.judge``) describe, wrapped in its on-disk cache."""
    js = settings.judge
    name = name or js.name
    kwargs: dict[str, Any] = {}
    if name in ("embedding", "blend") and embedder is not None:
        kwargs["embedder"] = embedder
    if name == "nli":
        if js.nli_path is None:
            raise InputError("the nli judge needs a model folder: set MEDCITE_JUDGE__NLI_PATH")
        kwargs["path"] = js.nli_path
    if name == "openai":
        o = settings.openai
        kwargs.update(base_url=o.base_url, model=o.model, api_key=o.api_key.get_secret_value() if o.api_key else None)
    if name in ("trained", "blend") and js.trained_path is not None:
        kwargs["path"] = js.trained_path
    if name == "llm" and settings.llama.model_path:
        kwargs["model_path"] = str(settings.llama.model_path)
    judge = make_judge(name, **kwargs)
    if js.threshold is not None:
        judge.threshold = js.threshold
    return CachedJudge(judge, js.cache) if js.cache else judge
