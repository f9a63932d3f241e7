"""Sectioned, cited answers: retrieve per kind, draft each section, check and renumber citations.

``From the Guidelines`` is written only from guideline passages and ``From the Research`` only from
research passages: each section's generator call sees its own kind's sources and nothing else. A
section with no passage relevant enough abstains in one sentence instead of filling space.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.cite import References, parse_citations
from pipeline.errors import InputError
from pipeline.generate import (
    Audience,
    DraftItem,
    ExtractiveGenerator,
    Generator,
    LlamaBackend,
    LLMGenerator,
    OpenAIBackend,
    SectionRequest,
    Source,
)
from pipeline.judge import Judge
from pipeline.retrieve import Index
from pipeline.settings import Settings
from pipeline.types import KINDS, SECTION_TITLES, Answer, Group, Hit, Kind, RunInfo, Section, Statement

log = logging.getLogger(__name__)

ABSTAIN = {
    "guideline": "No guideline in the indexed corpus addresses this question.",
    "research": "No research paper in the indexed corpus addresses this question.",
}
DISCLAIMER = {
    "clinician": (
        "This summary is generated automatically from the indexed guideline and research documents for "
        "professional reference. It may be incomplete or out of date, and it is not a substitute for clinical "
        "judgement or the full guideline: check the cited sources before acting on it."
    ),
    "patient": (
        "This information comes from medical guidelines and research and is for general education only. It is "
        "not medical advice. Talk with your doctor or care team about what is right for you."
    ),
}
UNCITED_MARK = "(unsupported: no valid citation)"
UNSUPPORTED_MARK = "(not supported by the cited passages)"


# --------------------------------------------------------------------------- events (for streaming)


@dataclass(frozen=True, slots=True)
class SectionStarted:
    title: str


@dataclass(frozen=True, slots=True)
class ItemWritten:
    section: str
    heading: str | None
    statement: Statement
    first_in_group: bool


@dataclass(frozen=True, slots=True)
class SectionDone:
    section: Section


@dataclass(frozen=True, slots=True)
class AnswerDone:
    answer: Answer


Event = SectionStarted | ItemWritten | SectionDone | AnswerDone


# --------------------------------------------------------------------------- generators


def make_generator(name: str, settings: Settings, index: Index | None = None) -> Generator:
    """The generator called ``name`` (llama, extractive, openai), configured from settings."""
    if name == "extractive":
        if index is None:
            raise InputError("the extractive generator needs an index (for its embedding model)")
        return ExtractiveGenerator(index._embedder(), max_items=settings.answer.max_items)
    if name == "llama":
        from pipeline.models import bundled_gguf

        path = settings.llama.model_path or bundled_gguf(settings.llama.cache_dir)
        s = settings.llama
        backend = LlamaBackend(
            str(path), n_ctx=s.n_ctx, n_threads=s.n_threads, n_batch=s.n_batch, seed=s.seed, temperature=s.temperature
        )
        return LLMGenerator(backend, name="llama", max_tokens=s.max_tokens)
    if name == "openai":
        o = settings.openai
        key = o.api_key.get_secret_value() if o.api_key else None
        import os

        key = key or os.environ.get("OPENAI_API_KEY")
        backend_o = OpenAIBackend(
            o.base_url,
            o.model,
            api_key=key,
            timeout_s=o.timeout_s,
            temperature=o.temperature,
            json_schema=o.json_schema,
        )
        return LLMGenerator(backend_o, name="openai", max_tokens=o.max_tokens)
    raise InputError(f"unknown generator {name!r}; choose llama, extractive or openai")


# --------------------------------------------------------------------------- ask


@dataclass
class _Stats:
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "statements": 0,
            "out_of_range_citations": 0,
            "uncited_dropped": 0,
            "uncited_marked": 0,
            "sections_abstained": 0,
            "sources_shown": 0,
        }
    )

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def select_sources(
    index: Index, question: str, kind: Kind, k: int, settings: Settings, evidence: Sequence[str] = ()
) -> tuple[list[Hit], float]:
    """Top ``k`` hits of ``kind`` whose cosine with the question reaches ``min_source_score``, and the best cosine.

    ``evidence`` (chunk ids, e.g. the passages earlier turns of a conversation cited) competes with the search
    results on cosine: a passage of ``kind`` that fits the question at least as well as the weakest hit kept
    is shown too, after the hits, and the weakest hits make room for it.
    """
    if k <= 0 or index.ranges[kind][0] == index.ranges[kind][1]:
        return [], -1.0
    hits = index.search(question, k, kind=kind)
    found = {h.chunk.id for h in hits}
    for cid in dict.fromkeys(evidence):
        if cid in found:
            continue
        try:
            chunk = index.chunk(cid)
        except InputError:  # a passage of an index since rebuilt is just not reused
            continue
        if chunk.kind == kind:
            hits.append(Hit(rank=len(hits) + 1, score=0.0, chunk=chunk, document=index.documents[chunk.doc_id]))
    if not hits:
        return [], -1.0
    sims = index.similarity(question, [h.chunk.id for h in hits])
    keep = [i for i, s in enumerate(sims) if s >= settings.answer.min_source_score]
    if len(keep) > k:  # only when evidence was added: drop the weakest, keep the order
        best = set(sorted(keep, key=lambda i: -sims[i])[:k])
        keep = [i for i in keep if i in best]
    return [hits[i] for i in keep], float(sims.max())


@dataclass
class _Verify:
    """Answer-time check of each statement against the passages it cites (``ask --verify``)."""

    judge: Judge
    action: Literal["drop", "mark"] = "drop"
    checked: int = 0
    removed: list[dict[str, Any]] = field(default_factory=list)
    marked: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "judge": self.judge.name,
            "fingerprint": self.judge.fingerprint(),
            "threshold": self.judge.threshold,
            "action": self.action,
            "checked": self.checked,
            "removed": self.removed,
            "marked": self.marked,
        }


def ask_stream(
    question: str,
    index: Index,
    *,
    generator: Generator | None = None,
    settings: Settings | None = None,
    audience: Audience | None = None,
    verifier: Judge | None = None,
    verify_action: Literal["drop", "mark"] = "drop",
    numbering: Mapping[str, int] | None = None,
    evidence: Sequence[str] = (),
) -> Iterator[Event]:
    """Answer ``question`` from ``index``, yielding events as statements are written.

    The last event is :class:`AnswerDone` with the whole :class:`~pipeline.types.Answer`.

    Args:
        numbering: document id -> reference number already given (a conversation's earlier turns): those
            documents keep their numbers and new ones continue after the highest. The answer then lists
            only the references it cites, so ``[n]`` is the reference whose ``n`` is n.
        evidence: chunk ids that may be shown again where they still fit the question (see
            :func:`select_sources`).
    """
    settings = settings or index.settings
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; ask something")
    audience = audience or settings.answer.audience
    if audience not in ("clinician", "patient"):
        raise InputError(f"audience is {audience!r}; choose clinician or patient")
    generator = generator or make_generator(settings.answer.generator, settings, index)
    verify = _Verify(verifier, verify_action) if verifier is not None else None
    stats = _Stats()
    refs = References(seed=numbering or {})
    sections: list[Section] = []
    all_sources: list[Source] = []
    quotas: dict[Kind, int] = {"guideline": settings.answer.k_guideline, "research": settings.answer.k_research}
    for kind in KINDS:
        title = SECTION_TITLES[kind]
        yield SectionStarted(title)
        hits, best = select_sources(index, question, kind, quotas[kind], settings, evidence)
        groups: list[tuple[str | None, list[Statement]]] = []
        if hits and best >= settings.answer.min_relevance:
            sources = tuple(Source(i + 1, h) for i, h in enumerate(hits))
            all_sources.extend(sources)
            stats.add("sources_shown", len(sources))
            for draft in generator.draft_section(SectionRequest(question, kind, sources, audience)):
                st = _check(draft, sources, refs, stats, settings, verify, title)
                if st is None:
                    continue
                first = not groups or groups[-1][0] != draft.heading
                if first:
                    groups.append((draft.heading, []))
                groups[-1][1].append(st)
                yield ItemWritten(title, draft.heading, st, first)
        if groups:
            section = Section(title, tuple(Group(h, tuple(items)) for h, items in groups))
        else:  # nothing relevant enough, or every statement was dropped: say so rather than fill space
            stats.add("sections_abstained")
            abstain = Statement(ABSTAIN[kind])
            yield ItemWritten(title, None, abstain, True)
            section = Section(title, (Group(None, (abstain,)),), abstained=True)
        sections.append(section)
        yield SectionDone(section)
    follow_ups = tuple(generator.follow_ups(question, all_sources, audience)) if all_sources else ()
    answer = Answer(
        question=question,
        sections=tuple(sections),
        references=refs.build(),
        disclaimer=DISCLAIMER[audience],
        follow_ups=follow_ups,
        run=RunInfo(
            generator=generator.name,
            model=generator.model,
            prompt_hash=generator.prompt_hash,
            settings_hash=settings.hash(),
            index_id=index.id,
        ),
        audience=audience,
        id=hashlib.sha256(f"{question}\x00{index.id}\x00{time.time_ns()}".encode()).hexdigest()[:12],
        stats=dict(stats.counts),
        verification=verify.report() if verify else None,
    )
    yield AnswerDone(answer)


def _source_text(hit: Hit) -> str:
    """A cited passage under a header naming its source, as the judge sees it (see eval.faithfulness)."""
    d = hit.document
    where = ", ".join(x for x in (d.source, str(d.year) if d.year else "") if x)
    return f"{d.title}" + (f" ({where})" if where else "") + "\n" + hit.chunk.text


def _check(
    draft: DraftItem,
    sources: tuple[Source, ...],
    refs: References,
    stats: _Stats,
    settings: Settings,
    verify: _Verify | None = None,
    section: str = "",
) -> Statement | None:
    """Validate a drafted statement's citations, verify it if asked, and number its references.

    Verification runs before numbering, so a dropped statement never leaves an uncited reference behind.
    """
    parsed = parse_citations(draft.text, len(sources), extra=draft.cites)
    if not parsed.text:
        return None
    stats.add("out_of_range_citations", len(parsed.invalid))
    text = parsed.text
    if parsed.valid and verify is not None:
        passage = "\n\n".join(_source_text(sources[n - 1].hit) for n in parsed.valid)
        score = float(verify.judge.score([(parsed.text, passage)])[0])
        verify.checked += 1
        if score < verify.judge.threshold:
            record = {
                "section": section,
                "text": parsed.text,
                "score": round(score, 4),
                "chunk_ids": [sources[n - 1].hit.chunk.id for n in parsed.valid],
            }
            if verify.action == "drop":
                verify.removed.append(record)
                stats.add("unsupported_dropped")
                return None
            verify.marked.append(record)
            stats.add("unsupported_marked")
            text = f"{parsed.text} {UNSUPPORTED_MARK}"
    numbers = tuple(dict.fromkeys(refs.number(sources[n - 1].hit) for n in parsed.valid))
    if not numbers:
        if settings.answer.uncited == "drop":
            stats.add("uncited_dropped")
            return None
        stats.add("uncited_marked")
        stats.add("statements")
        return Statement(f"{parsed.text} {UNCITED_MARK}")
    stats.add("statements")
    return Statement(text, numbers)


def ask(
    question: str,
    index: Index,
    *,
    generator: Generator | None = None,
    settings: Settings | None = None,
    audience: Audience | None = None,
    verifier: Judge | None = None,
    verify_action: Literal["drop", "mark"] = "drop",
    numbering: Mapping[str, int] | None = None,
    evidence: Sequence[str] = (),
) -> Answer:
    """Answer ``question`` from ``index`` (see :func:`ask_stream`)."""
    events = ask_stream(
        question,
        index,
        generator=generator,
        settings=settings,
        audience=audience,
        verifier=verifier,
        verify_action=verify_action,
        numbering=numbering,
        evidence=evidence,
    )
    for event in events:
        if isinstance(event, AnswerDone):
            return event.answer
    raise AssertionError("ask_stream ended without an answer")
