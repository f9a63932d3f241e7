"""Query expansion with the generator's own chat model: a hypothetical answer passage and reformulations.

HyDE (Gao et al., 2022) searches with a passage the model imagines would answer the question: a passage
shares the vocabulary of the documents ("metastasectomy", "stereotactic body radiotherapy") where a question
has only its own words. Multi-query retrieval asks the same thing in other words. Either way the extra
queries are searched like the question and every ranked list is fused with the question's own by
reciprocal rank (:func:`pipeline.index.fuse_hits`), so a poor expansion can add candidates but never removes
the question's own best hits from the fusion.

What the model writes is used to search, never shown as an answer or cited: the statements still come only
from retrieved passages. The answer records the queries it searched with (``Answer.expansions``) and the
seconds the expansion took (``stats["expansion_ms"]``).

Switched by ``Settings().expand.mode`` (``off``, ``passage``, ``queries``, ``both``); it needs a chat model, so
the extractive generator never expands.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.generate.base import ChatBackend, complete
from pipeline.prompts import Prompt, load_prompt

log = logging.getLogger(__name__)

ExpandMode = Literal["off", "passage", "queries", "both"]
EXPAND_MODES: tuple[str, ...] = ("off", "passage", "queries", "both")
MAX_QUERY_CHARS = 300  # a reformulation longer than this is cut there
MAX_PASSAGE_CHARS = 900

_STR = r'"((?:[^"\\]|\\.)*)"'


def expand_schema(mode: ExpandMode) -> dict[str, Any]:
    """The JSON the model is held to: a passage, two queries, or both.

    No string length bounds: llama.cpp turns ``maxLength`` into a grammar rule per character, which made one
    expansion take minutes; ``max_tokens`` bounds the reply instead and :func:`parse_expansion` cuts it.
    """
    props: dict[str, Any] = {}
    # The short queries first: a reply cut at max_tokens then loses the passage's end, not the queries.
    if mode in ("queries", "both"):
        props["queries"] = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}
    if mode in ("passage", "both"):
        props["passage"] = {"type": "string"}
    return {"type": "object", "properties": props, "required": list(props)}


@dataclass(frozen=True, slots=True)
class Expansion:
    """What one expansion gave: a hypothetical passage, reformulations, the seconds it took, why it gave none."""

    passage: str = ""
    queries: tuple[str, ...] = ()
    seconds: float = 0.0
    failed: str | None = None

    @property
    def searches(self) -> tuple[str, ...]:
        """Every extra text to search with, the passage first."""
        return ((self.passage,) if self.passage else ()) + self.queries


def _unescape(s: str) -> str:
    s = s[:-1] if s.endswith("\\") and not s.endswith("\\\\") else s  # cut inside an escape
    try:
        return str(json.loads(f'"{s}"'))
    except ValueError:
        return s


def _clean(text: Any, limit: int) -> str:
    return " ".join(text.split())[:limit].strip() if isinstance(text, str) else ""


def parse_expansion(text: str, mode: ExpandMode) -> tuple[str, tuple[str, ...]]:
    """The passage and the queries (without repeats) of a model reply; tolerant of a reply cut short."""
    passage: Any = None
    queries: Any = None
    try:
        d = json.loads(text)
        if isinstance(d, dict):
            passage, queries = d.get("passage"), d.get("queries")
    except (ValueError, RecursionError):  # a reply cut at max_tokens: the complete queries, the passage so far
        m = re.search(r'"passage"\s*:\s*"((?:[^"\\]|\\.)*)', text)
        passage = _unescape(m.group(1)) if m else None
        q = re.search(r'"queries"\s*:\s*\[', text)
        queries = [json.loads(f'"{x}"') for x in re.findall(_STR, text[q.end() :])] if q else None
    p = _clean(passage, MAX_PASSAGE_CHARS) if mode in ("passage", "both") else ""
    qs: list[str] = []
    if mode in ("queries", "both") and isinstance(queries, list):
        qs = [_clean(x, MAX_QUERY_CHARS) for x in queries[:2]]
    p = p if len(p) >= 3 else ""
    return p, tuple(dict.fromkeys(q for q in qs if len(q) >= 3 and q != p))


class LLMExpander:
    """Extra queries for a question, written by a chat model with ``prompts/expand.txt``."""

    def __init__(
        self, backend: ChatBackend, mode: ExpandMode = "both", *, max_tokens: int = 120, prompt: Prompt | None = None
    ) -> None:
        if mode not in EXPAND_MODES or mode == "off":
            raise ValueError(f"expansion mode is {mode!r}; choose passage, queries or both")
        self.backend = backend
        self.mode: ExpandMode = mode
        self.max_tokens = max_tokens
        self.prompt = prompt or load_prompt("expand")

    @property
    def name(self) -> str:
        return f"{self.mode}:{self.backend.model}:{self.prompt.hash}"

    def messages(self, question: str) -> list[dict[str, str]]:
        return self.prompt.render(question=" ".join(question.split()), request=self.prompt.text(f"want {self.mode}"))

    def expand(self, question: str) -> Expansion:
        """The extra queries for ``question``; a model error or an unusable reply gives none (logged), never raises
        an error of its own: the question's own search still answers."""
        t0 = time.perf_counter()
        try:
            text = complete(
                self.backend, self.messages(question), expand_schema(self.mode), self.max_tokens, cut_ok=True
            )
        except Exception as e:  # noqa: BLE001 - expansion is an aid to search; the answer goes on without it
            log.warning("query expansion failed (%s: %s); searching with the question alone", type(e).__name__, e)
            return Expansion(seconds=time.perf_counter() - t0, failed=f"{type(e).__name__}: {e}")
        passage, queries = parse_expansion(text, self.mode)
        same = " ".join(question.split()).casefold()
        passage = "" if passage.casefold() == same else passage
        queries = tuple(q for q in queries if q.casefold() != same)
        failed = None if passage or queries else f"no usable expansion in the reply {text[:120]!r}"
        if failed:
            log.warning("query expansion: %s; searching with the question alone", failed)
        return Expansion(passage, queries, time.perf_counter() - t0, failed)
