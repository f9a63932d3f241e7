"""Chat backends for the LLM generators: llama.cpp in this process, or an OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import GenerationError
from pipeline.openai_api import OpenAIClient


class LlamaBackend:
    """llama-cpp-python over a local GGUF; the model is loaded once, on first use."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_batch: int = 256,
        seed: int = 0,
        temperature: float = 0.0,
    ) -> None:
        self.model_path = model_path
        self.kwargs: dict[str, Any] = {"n_ctx": n_ctx, "n_threads": n_threads, "n_batch": n_batch, "seed": seed}
        self.temperature = temperature
        self._llm: Any = None

    @property
    def model(self) -> str:
        return Path(self.model_path).name

    @property
    def llm(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise GenerationError(
                    "the llama generator needs llama-cpp-python: pip install llama-cpp-python==0.3.36 "
                    "(or use --generator extractive)"
                ) from None
            self._llm = Llama(model_path=self.model_path, verbose=False, **self.kwargs)
        return self._llm

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        out = self.llm.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            max_tokens=max_tokens,
            temperature=self.temperature,
            stream=True,
        )
        for chunk in out:
            piece = chunk["choices"][0].get("delta", {}).get("content")
            if piece:
                yield piece


class OpenAIBackend:
    """An OpenAI-compatible ``/chat/completions`` endpoint, streamed over server-sent events."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        temperature: float = 0.0,
        json_schema: bool = True,
    ) -> None:
        self.client = OpenAIClient(base_url, api_key=api_key, timeout_s=timeout_s)
        self._model = model
        self.temperature = temperature
        self.json_schema = json_schema

    @property
    def model(self) -> str:
        return self._model

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        if self.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "medcite", "schema": schema, "strict": True},
            }
        for event in self.client.stream("chat/completions", body):
            try:
                piece = event["choices"][0].get("delta", {}).get("content")
            except (KeyError, IndexError, TypeError, AttributeError) as e:
                url = self.client.url("chat/completions")
                raise GenerationError(f"{url}: unexpected stream event ({e!r}): {json.dumps(event)[:120]}") from None
            if piece:
                yield piece
