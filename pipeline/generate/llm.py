"""LLM generators: a chat model writes a section as JSON held to a schema whose citations are the numbers shown.

- ``llama``: the bundled Qwen2.5-1.5B-Instruct GGUF through llama-cpp-python
  (:class:`~pipeline.generate.backends.LlamaBackend`).
- ``openai``: any OpenAI-compatible server (:class:`~pipeline.generate.backends.OpenAIBackend`), same prompts
  and schema.

Every word the model is shown comes from ``prompts/`` (section, follow-ups, audience), and the generator's
``prompt_hash`` covers those files.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from pipeline.errors import ReplyError
from pipeline.generate.base import Audience, ChatBackend, DraftItem, SectionRequest, Source, complete, heading_leaf
from pipeline.generate.extractive import SentenceScorer, answerable_sentence
from pipeline.prompts import Prompt, load_prompt
from pipeline.quotes import is_title, title_keys, too_short
from pipeline.text import sentences
from pipeline.types import SECTION_TITLES, Kind

log = logging.getLogger(__name__)

# How a statement's quote is given: chosen from the sources' sentences by the reply's schema, or written freely
# (and then looked up; a small model rewords most of them).
QuoteChoice = Literal["sentences", "free"]


MAX_CHOICE_WORDS = 40  # a quote offered to the model is a sentence, or its first 40 words (the prompt's limit)


MAX_CHOICES = 12  # with a sentence scorer, the quotes offered are the sentences that best answer the question


def quote_choices(sources: Sequence[Source]) -> list[str]:
    """The quotes a statement may give: each source's sentences that can stand as an answer
    (:func:`~pipeline.generate.extractive.answerable_sentence`: no study aim or method, cross-reference, reference
    entry or sentence that points back; a finding's "Results:" label cut off), a longer one cut to its first
    :data:`MAX_CHOICE_WORDS` words, in source order, each once, never a source's title (a title is no finding),
    with straight double quotes as curly ones (see below).

    Offered as the schema's ``enum`` for ``quote``, they make a constrained model (llama.cpp's grammar, a server's
    structured output) copy its source's words exactly: a 1.5B model asked to copy freely rewords most quotes.
    """
    return list(_quote_candidates(sources))


def _quote_candidates(sources: Sequence[Source]) -> dict[str, Source]:
    """:func:`quote_choices`, each with the source it is from."""
    titles = title_keys([(s.hit.document.title, s.hit.chunk.text) for s in sources])
    out: dict[str, Source] = {}
    for s in sources:
        complete = s.hit.document.kind == "research"  # an abstract's excerpt may stop mid-word
        for sentence in sentences(s.hit.chunk.text):
            said = answerable_sentence(sentence, complete=complete)
            if said is None or too_short(said) or is_title(said, titles) or "\\" in said:
                continue
            words = said.split()
            # llama-cpp-python 0.3.36 writes a '"' inside an enum value into its grammar as '\\"', which ends the
            # literal: the grammar does not parse and the process dies. A closing curly quote reads the same to
            # the quote finder (pipeline.quotes.normalise unifies quote marks); a backslash is left out above.
            out.setdefault(" ".join(words[:MAX_CHOICE_WORDS]).replace('"', "\u201d"), s)
    return out


def best_quote_choices(
    question: str, sources: Sequence[Source], scorer: SentenceScorer, most: int = MAX_CHOICES
) -> list[str]:
    """The ``most`` of :func:`quote_choices` that ``scorer`` (the relevance model's P(answers), each sentence read
    with its passage's "title — heading" line) rates best for ``question``, in source order.

    Offered all of a section's sentences, the bundled model led the seed answer with "colorectal cancer affects men
    and women almost equally" and a risk factor: true, quoted, and no answer to a question about treatment.
    """
    cands = _quote_candidates(sources)
    if len(cands) <= most:
        return list(cands)
    texts = [f"{s.hit.chunk.context}\n{q}" if s.hit.chunk.context else q for q, s in cands.items()]
    scores = np.asarray(scorer(question, texts), dtype=np.float32)
    keep = set(np.argsort(-scores, kind="stable")[:most].tolist())
    return [q for i, q in enumerate(cands) if i in keep]


def _point_schema(allowed: list[int], quotes: Sequence[str] = ()) -> dict[str, Any]:
    """A statement: the exact words of its source that it restates (``quote``, one of ``quotes`` when given),
    the statement, and the sources it cites. The quote comes first, so a model picks its evidence, then says it."""
    return {
        "type": "object",
        "properties": {
            "quote": {"type": "string", "enum": list(quotes)} if quotes else {"type": "string"},
            "text": {"type": "string"},
            "cite": {"type": "array", "items": {"type": "integer", "enum": allowed}, "minItems": 1, "maxItems": 3},
        },
        "required": ["quote", "text", "cite"],
    }


def section_schema(kind: Kind, n_sources: int, quotes: Sequence[str] = ()) -> dict[str, Any]:
    """JSON schema of a section: citations may only be the numbers 1..n_sources, and quotes only ``quotes``
    (:func:`quote_choices`) when given."""
    point = _point_schema(list(range(1, n_sources + 1)), quotes)
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

_STR = r'"((?:[^"\\]|\\.)*)"'
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|\[[^\]]*\])'
_FIELD = r'"(?:text|quote|cite)"\s*:\s*' + _VALUE
# A point object: its fields in any order (servers differ), each a string or a list of numbers.
_POINT = re.compile(r"\{\s*" + _FIELD + r"(?:\s*,\s*" + _FIELD + r")*\s*\}")
_FIELDS = re.compile(r'"(text|quote|cite)"\s*:\s*(?:' + _STR + r"|\[([^\]]*)\])")
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
        blocks.append(f'<source n="{s.n}">\n[{s.n}] {h.document.header()}{where}\n{text}\n</source n="{s.n}">')
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
            self.pos = m.end()
            item = _point(m.group(0), self.heading if g else None)
            if item is not None:
                out.append(item)


def _point(obj: str, heading: str | None) -> DraftItem | None:
    """A drafted statement from one point object's text; None without a "text" field."""
    fields: dict[str, str] = {}
    for f in _FIELDS.finditer(obj):  # left to right: a string value is consumed whole, never searched inside
        fields.setdefault(f.group(1), f.group(2) if f.group(2) is not None else f"[{f.group(3)}]")
    if "text" not in fields:
        return None
    # A number past 9 digits is no source number; int() of thousands of digits would raise.
    cites = tuple(int(x) if len(x) <= 10 else 0 for x in re.findall(r"-?\d+", fields.get("cite", "")))
    quote = _unescape(fields["quote"]).strip() if "quote" in fields else None
    return DraftItem(heading, _unescape(fields["text"]).strip(), cites, quote)


class LLMGenerator:
    """Writes sections with a chat model behind :class:`ChatBackend`, held to :func:`section_schema`.

    With ``quotes="sentences"`` (the default) each statement's quote is one of :func:`quote_choices`, held there by
    the schema (with a ``scorer``, the :data:`MAX_CHOICES` that best answer the question: :func:`best_quote_choices`);
    with ``"free"`` the model writes it and the pipeline looks it up.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        name: str,
        max_tokens: int = 450,
        quotes: QuoteChoice = "sentences",
        scorer: SentenceScorer | None = None,
    ) -> None:
        self.backend = backend
        self.name = name
        self.max_tokens = max_tokens
        self.quotes = quotes
        self.scorer = scorer
        self.section_prompt: Prompt = load_prompt("section")
        self.follow_prompt: Prompt = load_prompt("follow_ups")
        self.audience_prompt: Prompt = load_prompt("audience")

    @property
    def model(self) -> str:
        return self.backend.model

    def with_scorer(self, scorer: SentenceScorer) -> LLMGenerator:
        """A copy that offers as quotes only the sentences ``scorer`` rates best (:func:`best_quote_choices`)."""
        other = copy.copy(self)
        other.scorer = scorer
        return other

    @property
    def prompt_hash(self) -> str:
        return f"{self.section_prompt.hash}+{self.follow_prompt.hash}+{self.audience_prompt.hash}"

    def messages(self, request: SectionRequest) -> list[dict[str, str]]:
        m = len(request.sources)
        return self.section_prompt.render(
            audience_label=self.audience_prompt.text(f"{request.audience} label"),
            audience_style=self.audience_prompt.text(f"{request.audience} style"),
            allowed=", ".join(str(i) for i in range(1, m + 1)),
            question=request.question,
            section_title=SECTION_TITLES[request.kind],
            kind_label="guideline" if request.kind == "guideline" else "research",
            sources=format_sources(request.sources),
            shape_instructions=self.section_prompt.text(f"shape {request.kind}"),
        )

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]:
        """The section's statements as the reply streams in.

        A reply cut short before its first statement is asked for once more (a reply cut at ``max_tokens`` with
        half again as many); cut short after one, or again, it raises :class:`~pipeline.errors.ReplyError` and
        the statements already given stand. A whole reply with no statement in the schema's shape raises
        ``ReplyError("unusable")``: the section then says generation failed, never that no source addresses the
        question.
        """
        choices: list[str] = []
        if self.quotes == "sentences":
            choices = (
                best_quote_choices(request.question, request.sources, self.scorer)
                if self.scorer is not None
                else quote_choices(request.sources)
            )
        schema = section_schema(request.kind, len(request.sources), choices)
        messages = self.messages(request)
        max_tokens = self.max_tokens
        for attempt in (1, 2):
            parser = StreamParser()
            given = 0
            try:
                for piece in self.backend.stream(messages, schema, max_tokens):
                    for item in parser.feed(piece):
                        given += 1
                        # The schema asks every point for its quote: one left out is a quote not found, not a pass.
                        yield item if item.quote is not None else DraftItem(item.heading, item.text, item.cites, "")
            except ReplyError as e:
                if given or attempt == 2:
                    raise
                log.warning("%s; asking once more", e)
                max_tokens = max_tokens * 3 // 2 if e.reason == "length" else max_tokens
                continue
            if not given and not _empty_section(parser.text):
                raise ReplyError(
                    "unusable", f"the model's reply held no statement in the asked shape: {parser.text[:160]!r}"
                )
            return

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]:
        topics = "\n".join(
            sorted(
                {
                    f"- {s.hit.document.title}"
                    + (f": {heading_leaf(s.hit.chunk.heading)}" if s.hit.chunk.heading else "")
                    for s in sources
                }
            )
        )
        label = self.audience_prompt.text(f"{audience} label")
        msgs = self.follow_prompt.render(audience_label=label, question=question, topics=topics)
        for attempt in (1, 2):  # an interrupted reply is asked for once more, then gives none: never a failed answer
            try:
                return parse_follow_ups(complete(self.backend, msgs, FOLLOW_UPS_SCHEMA, 160, cut_ok=True))
            except ReplyError as e:
                log.warning("follow-up questions: %s%s", e, "; asking once more" if attempt == 1 else "; none given")
        return []


def _empty_section(text: str) -> bool:
    """Whether a reply is a well-formed section with no statement (``{"groups": []}``): the model wrote nothing
    on purpose, and the section abstains."""
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(d, dict) and isinstance(d.get("groups"), list) and not d["groups"] and not d.get("lead")


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
_QUESTION_FIELD = re.compile(r'"(?:question|q|text)"\s*:\s*' + _STR)


def parse_follow_ups(text: str) -> list[str]:
    """Up to three questions from a model's reply: ``{"questions": [...]}`` as asked, a bare list, a list of
    ``{"question": ...}`` objects, inside a Markdown code fence or cut short. Key names are never questions."""
    body = _FENCE.sub("", text.strip())
    try:
        found: Any = json.loads(body)
    except (ValueError, RecursionError):  # cut short or not JSON: the complete strings it holds
        fields = [_unescape(x) for x in _QUESTION_FIELD.findall(body)]
        strings = fields or [_unescape(x) for x in re.findall(_STR, body.split("[", 1)[-1])]
        found = [q for q in strings if q.rstrip().endswith("?")]
    if isinstance(found, dict):
        found = found.get("questions", found.get("follow_ups", []))
    if not isinstance(found, list):  # {"questions": 5}
        return []
    out: list[str] = []
    for q in found:
        if isinstance(q, dict):
            q = q.get("question", q.get("q", q.get("text")))
        if isinstance(q, str) and q.strip() and len(q.split()) >= 3:
            out.append(" ".join(q.split()))
    return list(dict.fromkeys(out))[:3]
