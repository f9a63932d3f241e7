"""The judges by name, and the judge that settings describe (wrapped in its cache)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.embed import Embedder
from pipeline.errors import InputError
from pipeline.judge.ask import LLMJudge, OpenAIJudge
from pipeline.judge.base import Judge
from pipeline.judge.cache import CachedJudge
from pipeline.judge.embedding import EmbeddingJudge
from pipeline.judge.lexical import LexicalJudge
from pipeline.judge.nli import NLIJudge
from pipeline.judge.trained import BlendJudge, TrainedJudge
from pipeline.openai_api import api_key
from pipeline.settings import Settings

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


def judge_from_settings(settings: Settings, name: str | None = None, *, embedder: Embedder | None = None) -> Judge:
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
        kwargs.update(base_url=o.base_url, model=o.model, api_key=api_key(o), timeout_s=o.timeout_s)
    if name in ("trained", "blend") and js.trained_path is not None:
        kwargs["path"] = js.trained_path
    if name == "llm" and settings.llama.model_path:
        kwargs["model_path"] = str(settings.llama.model_path)
    judge = make_judge(name, **kwargs)
    if js.threshold is not None:
        judge.threshold = js.threshold
    return CachedJudge(judge, js.cache) if js.cache else judge
