"""One client for OpenAI-compatible servers (vLLM, Ollama, llama.cpp's server, a hosted API).

The ``openai`` generator and the ``openai`` judge both talk through :class:`OpenAIClient`: one place builds
the URL and the ``Authorization`` header, reads the server-sent event stream, and turns transport failures
and non-200 replies into :class:`~pipeline.errors.GenerationError` naming the URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

from pipeline.errors import GenerationError, ServerError
from pipeline.settings import OpenAISettings


def api_key(settings: OpenAISettings) -> str | None:
    """The key from settings (``MEDCITE_OPENAI__API_KEY``), else ``OPENAI_API_KEY``, else none."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return key or os.environ.get("OPENAI_API_KEY") or None


class OpenAIClient:
    """``POST`` JSON to ``base_url + path``, whole or streamed as server-sent events."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        role: str = "the OpenAI-compatible server",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.role = role  # how errors name the server: "the judge server", ...
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _unreachable(self, url: str, e: Exception) -> GenerationError:
        return GenerationError(f"{url}: cannot reach {self.role} ({e}); is it running?")

    @classmethod
    def from_settings(cls, settings: OpenAISettings) -> OpenAIClient:
        return cls(settings.base_url, api_key=api_key(settings), timeout_s=settings.timeout_s)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON reply to one request."""
        url = self.url(path)
        try:
            r = httpx.post(url, json=body, headers=self._headers, timeout=self.timeout_s)
        except httpx.HTTPError as e:
            raise self._unreachable(url, e) from None
        if r.status_code != 200:
            raise ServerError(f"{url}: HTTP {r.status_code}: {r.text[:200]}", r.status_code, r.text[:2000])
        try:
            reply = r.json()
        except ValueError:
            raise GenerationError(f"{url}: the reply is not JSON: {r.text[:120]}") from None
        if not isinstance(reply, dict):
            raise GenerationError(f"{url}: the reply is not a JSON object: {r.text[:120]}")
        return reply

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The ``data:`` events of a streamed reply, parsed, up to ``[DONE]``."""
        url = self.url(path)
        try:
            with httpx.stream("POST", url, json=body, headers=self._headers, timeout=self.timeout_s) as resp:
                if resp.status_code != 200:
                    resp.read()
                    code, text = resp.status_code, resp.text
                    raise ServerError(f"{url}: HTTP {code}: {text[:200]}", code, text[:2000])
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        event = json.loads(data)
                    except json.JSONDecodeError as e:
                        raise GenerationError(f"{url}: unexpected stream event ({e}): {data[:120]}") from None
                    if not isinstance(event, dict):
                        raise GenerationError(f"{url}: unexpected stream event: {data[:120]}")
                    yield event
        except httpx.HTTPError as e:
            raise self._unreachable(url, e) from None
