"""Chat backends for the LLM generators: llama.cpp in this process, or an OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import GenerationError, InputError, ReplyError, ServerError
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
        finish = None
        for chunk in out:
            choice = chunk["choices"][0]
            finish = choice.get("finish_reason") or finish
            piece = choice.get("delta", {}).get("content")
            if piece:
                yield piece
        check_finish(finish, max_tokens, self.model)


def check_finish(finish: str | None, max_tokens: int, where: str) -> None:
    """Raise :class:`ReplyError` unless a streamed reply ended as a whole one does (``finish_reason`` "stop")."""
    if finish in ("stop", "eos", "end_turn"):
        return
    if finish == "length":
        raise ReplyError("length", f"{where}: the reply was cut at max_tokens ({max_tokens})")
    if finish is None:
        raise ReplyError(
            "interrupted",
            f"{where}: the reply stream ended without a finish_reason (interrupted; a llama.cpp server cuts one "
            "stream short when another request arrives unless started with --interrupt_requests False)",
        )
    raise ReplyError("interrupted", f"{where}: the reply ended with finish_reason {finish!r}")


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
        structured: str = "json_schema",
    ) -> None:
        if structured not in STRUCTURED:
            raise InputError(f"openai.structured is {structured!r}; choose one of {list(STRUCTURED)}")
        self.client = OpenAIClient(base_url, api_key=api_key, timeout_s=timeout_s)
        self._model = model
        self.temperature = temperature
        self.structured = structured

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
        body |= STRUCTURED[self.structured](schema)
        url = self.client.url("chat/completions")
        finish = None
        try:
            for event in self.client.stream("chat/completions", body):
                choices = event.get("choices")
                if choices == []:  # a usage-only event (stream_options include_usage)
                    continue
                try:
                    choice = choices[0]  # type: ignore[index]
                    piece = choice.get("delta", {}).get("content")
                    finish = choice.get("finish_reason") or finish
                except (KeyError, IndexError, TypeError, AttributeError) as e:
                    event_text = json.dumps(event)[:120]
                    raise GenerationError(f"{url}: unexpected stream event ({e!r}): {event_text}") from None
                if piece:
                    yield piece
        except ServerError as e:
            if self.structured != "none" and e.status in (400, 422, 500) and _REFUSED.search(e.body):
                others = ", ".join(k for k in STRUCTURED if k != self.structured)
                raise GenerationError(
                    f"{url} refused structured output as {self.structured!r} (HTTP {e.status}: {e.body[:160]}); "
                    f"set MEDCITE_OPENAI__STRUCTURED to what the server takes ({others}): json_object for "
                    "llama.cpp's server, ollama for Ollama, none for a server without constrained output"
                ) from None
            raise
        check_finish(finish, max_tokens, url)


_REFUSED = re.compile(r"response_format|json_schema|json_object|schema|format", re.I)

# How each structured-output mode asks a server to hold its reply to ``schema``: the request body's extra fields.
STRUCTURED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json_schema": lambda schema: {
        "response_format": {"type": "json_schema", "json_schema": {"name": "medcite", "schema": schema, "strict": True}}
    },
    "json_object": lambda schema: {"response_format": {"type": "json_object", "schema": schema}},
    "ollama": lambda schema: {"format": schema},
    "none": lambda schema: {},
}
