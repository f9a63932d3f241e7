"""Generators write one answer section from numbered sources. The LLM is one of the costly seams.

- ``extractive``: no language model. Picks, orders and de-duplicates the sentences of the sources
  closest to the question (bundled MiniLM cosine), groups them by heading and cites each.
- ``llama``: the bundled Qwen2.5-1.5B-Instruct GGUF through llama-cpp-python, its output held to a
  JSON schema whose citation field may only hold the numbers of the sources shown.
- ``openai``: any OpenAI-compatible server, same prompts and schema.

A generator streams :class:`DraftItem` values in order; :mod:`pipeline.answer` checks the citation
numbers, renumbers them and builds the answer. No generator ever falls back to another.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from pipeline.chunk import SentenceSplitter, SpacySentences
from pipeline.embed import Embedder
from pipeline.errors import GenerationError
from pipeline.prompts import Prompt, load_prompt
from pipeline.types import SECTION_TITLES, Hit, Kind

log = logging.getLogger(__name__)

Audience = Literal["clinician", "patient"]


@dataclass(frozen=True, slots=True)
class Source:
    """A passage as shown to a generator, under its local number ``n`` (1..m within the section)."""

    n: int
    hit: Hit


@dataclass(frozen=True, slots=True)
class SectionRequest:
    question: str
    kind: Kind
    sources: tuple[Source, ...]
    audience: Audience = "clinician"


@dataclass(frozen=True, slots=True)
class DraftItem:
    """A statement as a generator wrote it; ``cites`` are local source numbers, unchecked."""

    heading: str | None  # None: the lead paragraph (guidelines) or an ungrouped bullet
    text: str
    cites: tuple[int, ...] = ()


class Generator(Protocol):
    name: str

    @property
    def model(self) -> str: ...

    @property
    def prompt_hash(self) -> str: ...

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]: ...

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]: ...


AUDIENCE = {
    "clinician": (
        "a clinician",
        "Write for a clinician: precise, concise, clinical terminology, doses and evidence levels when the "
        "sources give them.",
    ),
    "patient": (
        "a patient or family member",
        "Write for a patient: plain words, short sentences, explain medical terms, no doses; the evidence is the same.",
    ),
}


_NAVIGATION = re.compile(r"^(for more information|for information|see |go to |refer to |\(?level of evidence)", re.I)
_GENERIC_HEADINGS = {
    "general information",
    "incidence and mortality",
    "current clinical trials",
    "latest updates to this summary",
    "references",
    "about this pdq summary",
    "introduction",
    "overview",
}


def _leaf(heading: str) -> str:
    return heading.rsplit(" > ", 1)[-1].strip()


def source_label(hit: Hit) -> str:
    d = hit.document
    bits = [x for x in (d.source, str(d.year) if d.year else "") if x]
    return f"{d.title}" + (f" ({', '.join(bits)})" if bits else "")


# --------------------------------------------------------------------------- extractive


class ExtractiveGenerator:
    """Sentences of the sources, chosen by similarity to the question; faithful by construction."""

    name = "extractive"

    def __init__(
        self,
        embedder: Embedder,
        splitter: SentenceSplitter | None = None,
        *,
        max_items: int = 6,
        min_score: float = 0.30,
        margin: float = 0.12,
        duplicate_cosine: float = 0.85,
    ) -> None:
        self.embedder = embedder
        self.splitter = splitter or SpacySentences()
        self.max_items = max_items
        self.min_score = min_score
        self.margin = margin
        self.duplicate_cosine = duplicate_cosine

    @property
    def model(self) -> str:
        return f"extractive ({self.embedder.name})"

    @property
    def prompt_hash(self) -> str:
        return "none"

    def _candidates(self, request: SectionRequest) -> list[tuple[float, int, int, str, np.ndarray]]:
        sents = self.splitter.split([s.hit.chunk.text for s in request.sources])
        flat = [
            (si, pos, t)
            for si, ss in enumerate(sents)
            for pos, t in enumerate(ss)
            if 6 <= len(t.split()) <= 80 and not _NAVIGATION.match(t)
        ]
        if not flat:
            return []
        vecs = self.embedder.encode([request.question] + [t for _, _, t in flat])
        q, sv = vecs[0], vecs[1:]
        scores = sv @ q
        return [(float(scores[i]), si, pos, t, sv[i]) for i, (si, pos, t) in enumerate(flat)]

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]:
        cands = sorted(self._candidates(request), key=lambda c: -c[0])
        if not cands:
            return
        # Keep sentences close to the best one: a passage's weaker sentences are context, not answer.
        floor = max(self.min_score, cands[0][0] - self.margin)
        picked: list[tuple[float, int, int, str, np.ndarray]] = []
        for c in cands:
            if len(picked) >= self.max_items or c[0] < floor:
                break
            if any(float(c[4] @ p[4]) > self.duplicate_cosine for p in picked):
                continue
            picked.append(c)
        if not picked:
            return
        sources = request.sources
        if request.kind == "guideline":
            best = picked[0]
            hit = sources[best[1]].hit
            d = hit.document
            who = ", ".join(x for x in (d.source, str(d.year) if d.year else "") if x)
            intro = "According to" if request.audience == "clinician" else "Guidance from"
            verb = "" if request.audience == "clinician" else " says"
            lead = f"{intro} {d.title}{f' ({who})' if who else ''}{verb}: {best[3]}"
            yield DraftItem(None, lead, (sources[best[1]].n,))
            rest = picked[1:]
        else:
            rest = picked
        # Group by the heading the sentence came from (guidelines) and keep reading order inside a group.
        groups: dict[str | None, list[tuple[float, int, int, str, np.ndarray]]] = {}
        for c in rest:
            hit = sources[c[1]].hit
            key = (_leaf(hit.chunk.heading) or hit.document.title) if request.kind == "guideline" else None
            groups.setdefault(key, []).append(c)
        for heading, items in groups.items():
            for c in sorted(items, key=lambda c: (c[1], c[2])):
                yield DraftItem(heading, c[3], (sources[c[1]].n,))

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]:
        out: list[str] = []
        for s in sources:
            leaf = _leaf(s.hit.chunk.heading)
            if not leaf or len(leaf.split()) > 10 or leaf.lower() in question.lower():
                continue
            if leaf.lower() in _GENERIC_HEADINGS or leaf.lower().startswith(("general information", "latest updates")):
                continue
            q = f"What does the evidence say about {leaf[0].lower() + leaf[1:]}?"
            if q not in out:
                out.append(q)
            if len(out) == 3:
                break
        return out


# --------------------------------------------------------------------------- LLM generators


class ChatBackend(Protocol):
    """Streams the text of one chat completion held to a JSON schema."""

    @property
    def model(self) -> str: ...

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]: ...


def complete(backend: ChatBackend, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> str:
    """The whole text of one short completion (a follow-up rewrite, a list of questions): no streaming needed."""
    return "".join(backend.stream(messages, schema, max_tokens))


def _point_schema(allowed: list[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "cite": {"type": "array", "items": {"type": "integer", "enum": allowed}, "minItems": 1, "maxItems": 3},
        },
        "required": ["text", "cite"],
    }


def section_schema(kind: Kind, n_sources: int) -> dict[str, Any]:
    """JSON schema of a section: citations may only be the numbers 1..n_sources."""
    point = _point_schema(list(range(1, n_sources + 1)))
    group = {
        "type": "object",
        "properties": {
            "heading": {"type": "string"},
            "points": {"type": "array", "items": point, "minItems": 1, "maxItems": 4},
        },
        "required": ["heading", "points"],
    }
    props: dict[str, Any] = {}
    if kind == "guideline":
        props["lead"] = {"type": "array", "items": point, "minItems": 1, "maxItems": 2}
    props["groups"] = {"type": "array", "items": group, "minItems": 1, "maxItems": 3}
    return {"type": "object", "properties": props, "required": list(props)}


FOLLOW_UPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3}},
    "required": ["questions"],
}

SHAPE = {
    "guideline": (
        'Give JSON {"lead": [...], "groups": [{"heading": ..., "points": [...]}]}. "lead" is the main '
        "recommendation in one or two statements and names the guideline it comes from (organisation, year). "
        'Then up to three groups with short headings for distinct themes (for example "Local therapy", '
        '"Systemic therapy"). Each point is {"text": ..., "cite": [numbers]}.'
    ),
    "research": (
        'Give JSON {"groups": [{"heading": ..., "points": [...]}]}: the main findings of the studies as points '
        '{"text": ..., "cite": [numbers]}, in one group with heading "" or in up to three headed groups when the '
        "findings have distinct themes. Say what kind of study found what."
    ),
}

_STR = r'"((?:[^"\\]|\\.)*)"'
_POINT = re.compile(r'\{\s*"text"\s*:\s*' + _STR + r'\s*,\s*"cite"\s*:\s*\[([^\]]*)\]\s*\}')
_HEADING = re.compile(r'"heading"\s*:\s*' + _STR)
_GROUPS = re.compile(r'"groups"\s*:')
_DELIM = re.compile(r"</?source[^>]*>", re.I)


def _unescape(s: str) -> str:
    try:
        return str(json.loads(f'"{s}"'))
    except json.JSONDecodeError:
        return s


def format_sources(sources: Sequence[Source]) -> str:
    """Sources as numbered, delimited blocks; document text cannot close the delimiter."""
    blocks = []
    for s in sources:
        h = s.hit
        where = f"; section: {h.chunk.heading}" if h.chunk.heading else ""
        text = _DELIM.sub(" ", h.chunk.text)
        blocks.append(f'<source n="{s.n}">\n[{s.n}] {source_label(h)}{where}\n{text}\n</source n="{s.n}">')
    return "\n\n".join(blocks)


class StreamParser:
    """Pulls complete points out of a growing JSON text, in order, with their group heading."""

    def __init__(self) -> None:
        self.text = ""
        self.pos = 0
        self.heading: str | None = None

    def feed(self, piece: str) -> list[DraftItem]:
        self.text += piece
        out: list[DraftItem] = []
        while True:
            m = _POINT.search(self.text, self.pos)
            if not m:
                return out
            before = self.text[: m.start()]
            g = _GROUPS.search(before)
            if g:
                heads = list(_HEADING.finditer(before, g.end()))
                self.heading = (_unescape(heads[-1].group(1)).strip() or None) if heads else None
            # A number past 9 digits is no source number; int() of thousands of digits would raise.
            cites = tuple(int(x) if len(x) <= 10 else 0 for x in re.findall(r"-?\d+", m.group(2)))
            out.append(DraftItem(self.heading if g else None, _unescape(m.group(1)).strip(), cites))
            self.pos = m.end()


class LLMGenerator:
    """Writes sections with a chat model behind :class:`ChatBackend`, held to :func:`section_schema`."""

    def __init__(self, backend: ChatBackend, *, name: str, max_tokens: int = 450) -> None:
        self.backend = backend
        self.name = name
        self.max_tokens = max_tokens
        self.section_prompt: Prompt = load_prompt("section")
        self.follow_prompt: Prompt = load_prompt("follow_ups")

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def prompt_hash(self) -> str:
        return f"{self.section_prompt.hash}+{self.follow_prompt.hash}"

    def messages(self, request: SectionRequest) -> list[dict[str, str]]:
        label, style = AUDIENCE[request.audience]
        m = len(request.sources)
        return self.section_prompt.render(
            audience_label=label,
            audience_style=style,
            allowed=", ".join(str(i) for i in range(1, m + 1)),
            question=request.question,
            section_title=SECTION_TITLES[request.kind],
            kind_label="guideline" if request.kind == "guideline" else "research",
            sources=format_sources(request.sources),
            shape_instructions=SHAPE[request.kind],
        )

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]:
        schema = section_schema(request.kind, len(request.sources))
        parser = StreamParser()
        for piece in self.backend.stream(self.messages(request), schema, self.max_tokens):
            yield from parser.feed(piece)

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]:
        topics = "\n".join(
            sorted(
                {
                    f"- {s.hit.document.title}" + (f": {_leaf(s.hit.chunk.heading)}" if s.hit.chunk.heading else "")
                    for s in sources
                }
            )
        )
        msgs = self.follow_prompt.render(audience_label=AUDIENCE[audience][0], question=question, topics=topics)
        text = complete(self.backend, msgs, FOLLOW_UPS_SCHEMA, 160)
        try:
            qs = json.loads(text).get("questions", [])
        except (ValueError, AttributeError, RecursionError):  # JSONDecodeError is a ValueError, as are huge ints
            qs = [_unescape(x) for x in re.findall(_STR, text.split("[", 1)[-1])]
        if not isinstance(qs, list):  # {"questions": 5}
            qs = []
        return [q.strip() for q in qs if isinstance(q, str) and q.strip()][:3]


# --------------------------------------------------------------------------- backends


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
        from pathlib import Path

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
        self.base_url = base_url.rstrip("/")
        self._model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.json_schema = json_schema

    @property
    def model(self) -> str:
        return self._model

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]:
        import httpx

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
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.base_url}/chat/completions"
        try:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=self.timeout_s) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise GenerationError(f"{url}: HTTP {resp.status_code}: {resp.text[:200]}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        piece = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    except (json.JSONDecodeError, KeyError, IndexError) as e:
                        raise GenerationError(f"{url}: unexpected stream event ({e}): {data[:120]}") from None
                    if piece:
                        yield piece
        except httpx.HTTPError as e:
            raise GenerationError(f"{url}: cannot reach the OpenAI-compatible server ({e}); is it running?") from None
