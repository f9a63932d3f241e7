"""Judges that ask a model the yes/no question of ``prompts/judge.txt``: the bundled LLM, or a served one.

- ``llm``: the bundled instruct model, scored by logit(Yes) - logit(No). The passage comes first in the prompt,
  so claims that cite the same passage reuse its KV cache.
- ``openai``: a served model (OpenAI-compatible), scored from its log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.judge.base import Pair
from pipeline.models import bundled_gguf
from pipeline.openai_api import OpenAIClient
from pipeline.prompts import load_prompt
from pipeline.settings import LlamaSettings


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
            from llama_cpp import Llama  # imported when first used: a heavy optional binding

            path = self.model_path
            if path is None:
                path = str(bundled_gguf(LlamaSettings().cache_dir))
            self.model_path = path
            self._llm = Llama(
                model_path=path, n_ctx=self.n_ctx, n_threads=self.n_threads, n_batch=256, seed=0, verbose=False
            )
        return self._llm

    def fingerprint(self) -> str:
        model = Path(self.model_path).name if self.model_path else "bundled-qwen2.5-1.5b"
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


MISSING_LOGPROB = -30.0  # a side with no variant among the top log-probabilities


def yes_no_score(top: Sequence[Any]) -> float | None:
    """log P(yes) - log P(no) from a reply's top log-probabilities, each side the log-sum-exp of all its variants
    ("Yes", " yes", "YES", ...): servers list case and spacing variants as separate tokens, and the later ones
    must add to the first, not overwrite it. None when neither side is among them."""
    sides: dict[str, list[float]] = {"yes": [], "no": []}
    for t in top:
        if not isinstance(t, dict):
            continue
        token, lp = t.get("token"), t.get("logprob")
        if isinstance(token, str) and isinstance(lp, (int, float)) and token.strip().lower() in sides:
            sides[token.strip().lower()].append(float(lp))
    if not sides["yes"] and not sides["no"]:
        return None
    yes, no = (float(np.logaddexp.reduce(v)) if v else MISSING_LOGPROB for v in (sides["yes"], sides["no"]))
    return yes - no


class OpenAIJudge:
    """A served model (OpenAI-compatible) asked the yes/no question; score from its log-probabilities."""

    name = "openai"

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 60.0, threshold: float = 0.0
    ) -> None:
        self.client = OpenAIClient(base_url, api_key=api_key, timeout_s=timeout_s, role="the judge server")
        self.model = model
        self.threshold = threshold
        self.prompt = load_prompt("judge")

    def fingerprint(self) -> str:
        return f"openai-v1:{self.client.base_url}:{self.model}:{self.prompt.hash}"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        out: list[float] = []
        for claim, passage in pairs:
            body = {
                "model": self.model,
                "messages": self.prompt.render(passage=passage, claim=claim),
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": 10,
            }
            reply = self.client.post("chat/completions", body)
            choice = reply["choices"][0]
            top = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
            score = yes_no_score(top)
            if score is not None:
                out.append(score)
            else:
                text = str(choice.get("message", {}).get("content", "")).strip().lower()
                out.append(1.0 if text.startswith("yes") else -1.0)
        return np.array(out, dtype=np.float32)
