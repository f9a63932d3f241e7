"""The generators by name: one registry, each entry making its generator from the run's settings."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.errors import InputError
from pipeline.generate.backends import LlamaBackend, OpenAIBackend
from pipeline.generate.base import Generator
from pipeline.generate.extractive import ExtractiveGenerator
from pipeline.generate.llm import LLMGenerator
from pipeline.index import Index
from pipeline.models import bundled_gguf
from pipeline.openai_api import api_key
from pipeline.settings import Settings


def _extractive(settings: Settings, index: Index | None) -> Generator:
    if index is None:
        raise InputError("the extractive generator needs an index (for its embedding model)")
    return ExtractiveGenerator(index.query_embedder(), max_items=settings.answer.max_items)


def _llama(settings: Settings, index: Index | None) -> Generator:
    s = settings.llama
    path = s.model_path or bundled_gguf(s.cache_dir)
    backend = LlamaBackend(
        str(path), n_ctx=s.n_ctx, n_threads=s.n_threads, n_batch=s.n_batch, seed=s.seed, temperature=s.temperature
    )
    return LLMGenerator(backend, name="llama", max_tokens=s.max_tokens, quotes=settings.answer.quote_from)


def _openai(settings: Settings, index: Index | None) -> Generator:
    o = settings.openai
    backend = OpenAIBackend(
        o.base_url,
        o.model,
        api_key=api_key(o),
        timeout_s=o.timeout_s,
        temperature=o.temperature,
        structured=o.structured,
    )
    return LLMGenerator(backend, name="openai", max_tokens=o.max_tokens, quotes=settings.answer.quote_from)


GENERATORS: dict[str, Callable[[Settings, Index | None], Generator]] = {
    "extractive": _extractive,
    "llama": _llama,
    "openai": _openai,
}


def make_generator(name: str, settings: Settings, index: Index | None = None) -> Generator:
    """The generator called ``name`` (llama, extractive, openai, or one added to :data:`GENERATORS`).

    Args:
        name: the generator's name.
        settings: the run's settings (model paths, token limits, the server's URL).
        index: the index it will answer from; the extractive generator uses its query embedder.

    Raises:
        InputError: no generator has that name.
    """
    try:
        make = GENERATORS[name]
    except KeyError:
        raise InputError(f"unknown generator {name!r}; choose one of {sorted(GENERATORS)}") from None
    return make(settings, index)
