"""Sectioned, cited answers: retrieve per kind, draft each section, check and renumber citations.

``From the Guidelines`` is written only from guideline passages and ``From the Research`` only from
research passages: each section's generator call sees its own kind's sources and nothing else. A
section with no passage relevant enough abstains in one sentence instead of filling space, and so does a section
whose kind has no document holding any of the question's specialised terms (:func:`terms_absent`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Generator as Generator_
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from pipeline.cite import References, parse_citations
from pipeline.embed import common_words
from pipeline.errors import InputError, ReplyError
from pipeline.expand import Expansion, LLMExpander
from pipeline.generate import (
    Audience,
    DraftItem,
    ExtractiveGenerator,
    Generator,
    LLMGenerator,
    SectionRequest,
    Source,
    heading_leaf,
    make_generator,
)
from pipeline.generate.extractive import answerable_sentence
from pipeline.index import Index, fuse_hits
from pipeline.judge import Judge, is_contradicted, judge_from_settings, relations_of
from pipeline.quotes import (
    QuoteFinder,
    american_spelling,
    beyond_quote,
    is_title,
    quote_context,
    quote_key,
    title_keys,
    too_short,
)
from pipeline.relevance import WEIGHTS as RELEVANCE_WEIGHTS
from pipeline.relevance import RelevanceModel, rerank
from pipeline.settings import Settings
from pipeline.text import without_preamble
from pipeline.types import (
    KINDS,
    SECTION_TITLES,
    Answer,
    AnswerDone,
    Event,
    Group,
    Hit,
    ItemWritten,
    Kind,
    RunInfo,
    Section,
    SectionDone,
    SectionStarted,
    Statement,
    judged_text,
    quoted_evidence,
)

log = logging.getLogger(__name__)

ABSTAIN = {
    "guideline": "No guideline in the indexed corpus addresses this question.",
    "research": "No research paper in the indexed corpus addresses this question.",
}
# When words of the question occur in no indexed document of a kind, the section says so before anything else.
UNMENTIONED = {
    "guideline": "The indexed guidelines do not mention {terms}",
    "research": "The indexed research papers do not mention {terms}",
}
CLOSEST = {
    "guideline": "; the closest guidance covers {what}.",
    "research": "; the closest papers found are cited here.",
}
ABSTAIN_UNMENTIONED = {
    "guideline": ", and no guideline passage addresses this question.",
    "research": ", and no research passage addresses this question.",
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
CONTRADICTED_MARK = "(contradicted by the cited passages)"
QUOTE_MARK = "(its quote is not in the cited passages)"
BEYOND_MARK = "(says more than its quote)"
# A section whose passages were found but whose model reply gave no statement that survived the checks.
FAILED = "This section could not be written from the {n} passages found: {why}."
CUT_SHORT = "The rest of this section could not be written: {why}."
WHY = {
    "length": "the model's reply was cut at its token limit",
    "interrupted": "the model's reply was interrupted",
    "unusable": "the model's reply held no statement in the shape asked for",
    "dropped": "none of the model's statements cited those passages and said only what its quote from them says",
}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class AskOptions:
    """How questions are answered: one value that the faces hand to :func:`ask`, :func:`ask_stream`,
    :func:`pipeline.ask_many` and :func:`pipeline.run_batch`, instead of the same keywords restated in each.

    Attributes:
        generator: a generator, or its name (llama, extractive, openai); None: ``settings.answer.generator``.
        settings: the run's settings; None: the index's. The index must have been built with the same
            index-shaping settings (:class:`~pipeline.errors.IndexMismatchError` otherwise); retrieval, answer,
            generator and judge settings all come from this one object.
        audience: clinician or patient; None: ``settings.answer.audience``.
        verifier: a judge, or its name, that checks each statement against its cited passages (``--verify``).
        verify_action: ``drop`` or ``mark`` the statements the verifier finds unsupported.
    """

    generator: Generator | str | None = None
    settings: Settings | None = None
    audience: Audience | None = None
    verifier: Judge | str | None = None
    verify_action: Literal["drop", "mark"] = "drop"

    def but(self, **changes: Any) -> AskOptions:
        """A copy with some fields changed; an unknown field is an :class:`~pipeline.errors.InputError`."""
        if not changes:
            return self
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise InputError(f"unknown option(s) {unknown}; AskOptions has {[f.name for f in fields(self)]}")
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Options made concrete for one index: the generator and judge built, the settings checked against it."""

    index: Index
    settings: Settings
    generator: Generator
    verifier: Judge | None
    audience: Audience | None
    verify_action: Literal["drop", "mark"]
    reranker: RelevanceModel | None = None
    expander: LLMExpander | None = None  # query expansion (``expand.mode``), with an LLM generator only

    def min_relevance(self, kind: Kind) -> float:
        """The best source score under which a section of ``kind`` abstains: P(answers) when the relevance model
        reranks and ``rerank.abstain`` is on, else cosine (``answer.min_relevance``, or
        ``answer.min_relevance_guideline`` for the guideline section)."""
        if self.reranker is not None and self.settings.rerank.abstain:
            given = self.settings.rerank.min_relevance
            return self.reranker.config.threshold if given is None else given
        a = self.settings.answer
        if kind == "guideline" and a.min_relevance_guideline is not None:
            return a.min_relevance_guideline
        return a.min_relevance


def prepare(options: AskOptions, index: Index) -> Prepared:
    """Build the generator and judge named in ``options`` (models load on first use) and bind the run's settings.

    Raises:
        IndexMismatchError: the settings ask for another embedding model, chunking or index type than the
            index was built with.
        InputError: an unknown generator, judge or verify action.
    """
    settings = options.settings or index.settings
    bound = index.with_settings(settings)
    gen = options.generator
    if gen is None or isinstance(gen, str):
        generator = make_generator(gen or settings.answer.generator, settings, bound)
    else:
        generator = gen
    verifier = options.verifier
    if isinstance(verifier, str):
        verifier = judge_from_settings(settings, verifier, embedder=bound.query_embedder())
    if options.verify_action not in ("drop", "mark"):
        raise InputError(f"verify_action is {options.verify_action!r}; choose drop or mark")
    # The relevance model scores the extractive generator's sentences, an LLM's quote choices, or the passages.
    scored = (settings.rerank.sentences and isinstance(generator, ExtractiveGenerator)) or (
        settings.rerank.quote_choices and isinstance(generator, LLMGenerator)
    )
    wanted = settings.rerank.enabled or scored
    model = RelevanceModel(settings.rerank.path or RELEVANCE_WEIGHTS) if wanted else None
    reranker = model if settings.rerank.enabled else None
    if model is not None and scored and isinstance(generator, ExtractiveGenerator | LLMGenerator):
        # Extractive: the sentences stated; LLM: the sentences its statements may quote.
        generator = generator if generator.scorer is not None else generator.with_scorer(model.sentences)
    expander = None
    if settings.expand.mode != "off" and isinstance(generator, LLMGenerator):
        expander = LLMExpander(generator.backend, settings.expand.mode, max_tokens=settings.expand.max_tokens)
    return Prepared(bound, settings, generator, verifier, options.audience, options.verify_action, reranker, expander)


def quotas(settings: Settings) -> dict[Kind, int]:
    """Passages shown to the generator per section (``answer.k_guideline``, ``answer.k_research``)."""
    return {"guideline": settings.answer.k_guideline, "research": settings.answer.k_research}


def depths(settings: Settings) -> dict[Kind, int]:
    """Hits retrieved per section (what a batch prefetches): the quota, ``rerank.candidates`` for a section the
    reranker re-scores, or the pool that :func:`by_section` orders."""
    return {k: (_depth(settings, k, n, settings.rerank.enabled) if n > 0 else n) for k, n in quotas(settings).items()}


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
    index: Index,
    question: str,
    kind: Kind,
    k: int,
    settings: Settings,
    evidence: Sequence[str] = (),
    retrieved: Sequence[Hit] | None = None,
    reranker: RelevanceModel | None = None,
    expansions: Sequence[str] = (),
) -> tuple[list[Hit], float]:
    """Top ``k`` hits of ``kind`` whose cosine with the question reaches ``min_source_score``, and the best cosine.

    With a ``reranker`` (``Settings().rerank``), the ``rerank.candidates`` fused hits are re-scored by the
    relevance model instead and the top ``k`` kept; the best cosine returned is that of the first ``k`` hybrid
    hits (what abstention was calibrated on), or with ``rerank.abstain`` the best P(answers).

    ``evidence`` (chunk ids, e.g. the passages earlier turns of a conversation cited) competes with the search
    results on cosine: a passage of ``kind`` that fits the question at least as well as the weakest hit kept
    is shown too, after the hits, and the weakest hits make room for it. ``retrieved``: the hits of ``kind``
    (as many as :func:`depths` says) when they were searched for already (a batch retrieves for many questions at
    once). Guideline hits are ordered by what their section is about first (:func:`by_section`,
    ``answer.section_intent``), from a pool of :data:`SECTION_POOL`.

    ``expansions`` (:mod:`pipeline.expand`: a hypothetical answer passage, reformulations) are searched too and
    their hits fused with the question's own by reciprocal rank; the cosine that abstention reads stays the
    question's own.
    """
    if k <= 0 or index.ranges[kind][0] == index.ranges[kind][1]:
        return [], -1.0
    depth = _depth(settings, kind, k, reranker is not None)
    hits = list(retrieved) if retrieved is not None else index.search(question, depth, kind=kind)
    if expansions:
        more = index.search_many(list(expansions), depth, kind=kind)
        hits = fuse_hits([hits, *more], depth, settings.retrieve.rrf_k)
    first = hits[:k]  # what abstention was calibrated on: the first k of the hybrid order
    if kind == "guideline" and settings.answer.section_intent:
        hits = by_section(question, hits)
    if reranker is None:
        hits = hits[:k]
    found = {h.chunk.id for h in hits}
    added: list[Hit] = []
    for cid in dict.fromkeys(evidence):
        if cid in found:
            continue
        try:
            chunk = index.chunk(cid)
        except InputError:  # a passage of an index since rebuilt is just not reused
            continue
        if chunk.kind == kind:
            rank = len(hits) + len(added) + 1
            added.append(Hit(rank=rank, score=0.0, chunk=chunk, document=index.documents[chunk.doc_id]))
    hits += added
    if not hits:
        return [], -1.0
    # One cosine per passage: those shown (unless the reranker chooses them) and the first k hybrid hits, which
    # abstention reads with the evidence passages however the hits were reordered.
    ids = list(dict.fromkeys(h.chunk.id for h in (*first, *added, *(hits if reranker is None else ()))))
    cosine = dict(zip(ids, index.similarity(question, ids).tolist(), strict=True))
    looked = max(cosine[h.chunk.id] for h in (*first, *added))
    if reranker is not None:
        ranked = rerank(question, hits, reranker, k, fuse=settings.retrieve.rrf_k)
        if settings.rerank.abstain:
            return ranked, max(h.relevance or 0.0 for h in ranked)
        return ranked, looked
    sims = [cosine[h.chunk.id] for h in hits]
    keep = [i for i, s in enumerate(sims) if s >= settings.answer.min_source_score]
    if len(keep) > k:  # only when evidence was added: drop the weakest, keep the order
        best = set(sorted(keep, key=lambda i: -sims[i])[:k])
        keep = [i for i in keep if i in best]
    return [hits[i] for i in keep], looked


# Sections of a guideline that answer no clinical question: what changed in the summary, how it is made.
_META_SECTION = re.compile(
    r"^(?:latest updates to this summary|changes to this summary|about this pdq summary)\b", re.I
)
# A question that asks how to treat or manage, and the section headings that say they tell it.
_TREATMENT_QUESTION = re.compile(
    r"\b(?:treat|treats|treated|treating|treatment|treatments|therapy|therapies|manage|managed|managing|management"
    r"|regimens?|first-line|second-line|options)\b",
    re.I,
)
_TREATMENT_SECTION = re.compile(r"\b(?:treatment|treatments|therapy|therapies|management|treated)\b", re.I)
SECTION_POOL = 20  # guideline hits retrieved, so that the sections that say what was asked can be shown first


def by_section(question: str, hits: Sequence[Hit]) -> list[Hit]:
    """Guideline hits reordered by what their section is about, the hybrid order kept within each tier: a section
    about what changed in the summary (``Latest Updates to This Summary``) is never shown; for a question about
    treatment, passages whose heading path names treatment, therapy or management come before the rest.

    Every chunk of a PDQ treatment summary carries "Treatment" in its document title, so the seed question ("What
    is the treatment for oligoprogressive colorectal cancer?", a word no guideline holds) retrieved the colon and
    rectal summaries' "Incidence and Mortality" and "Risk Factors" passages first, and the bundled model led with
    "colorectal cancer affects men and women almost equally". The heading path, not the title, says what a passage
    is about.
    """
    kept = [h for h in hits if not _META_SECTION.match(h.chunk.heading)]
    if not _TREATMENT_QUESTION.search(question):
        return kept
    on = [h for h in kept if _TREATMENT_SECTION.search(h.chunk.heading)]
    return on + [h for h in kept if not _TREATMENT_SECTION.search(h.chunk.heading)]


def _depth(settings: Settings, kind: Kind, k: int, reranking: bool) -> int:
    """Hits retrieved for a section showing ``k``: the reranker's candidates, or the pool :func:`by_section` orders."""
    if reranking:
        return max(k, settings.rerank.candidates)
    if kind == "guideline" and settings.answer.section_intent:
        return max(k, SECTION_POOL)
    return k


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
            "contradicted": sum(r["relation"] == "contradicted" for r in (*self.removed, *self.marked)),
            "removed": self.removed,
            "marked": self.marked,
        }


def ask_stream(
    question: str,
    index: Index,
    options: AskOptions | Prepared | None = None,
    *,
    numbering: Mapping[str, int] | None = None,
    evidence: Sequence[str] = (),
    retrieved: Mapping[Kind, Sequence[Hit]] | None = None,
    **changes: Any,
) -> Iterator[Event]:
    """Answer ``question`` from ``index``, yielding events as statements are written.

    The last event is :class:`~pipeline.types.AnswerDone` with the whole :class:`~pipeline.types.Answer`.

    Args:
        question: the clinical question.
        index: an opened index.
        options: how to answer (:class:`AskOptions`); keyword arguments change single fields
            (``generator=``, ``settings=``, ``audience=``, ``verifier=``, ``verify_action=``).
        numbering: document id -> reference number already given (a conversation's earlier turns): those
            documents keep their numbers and new ones continue after the highest. The answer then lists
            only the references it cites, so ``[n]`` is the reference whose ``n`` is n.
        evidence: chunk ids that may be shown again where they still fit the question (see
            :func:`select_sources`).
        retrieved: hits per kind searched for already (a batch's retrieval for many questions at once).

    Raises:
        InputError: an empty question, an unknown audience, generator, judge or option.
        IndexMismatchError: the settings do not fit the index.
    """
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; ask something")
    if isinstance(options, Prepared):
        if changes:
            raise InputError(f"options are prepared already; change {sorted(changes)} before prepare()")
        run = options
    else:
        run = prepare((options or AskOptions()).but(**changes), index)
    audience = run.audience or run.settings.answer.audience
    if audience not in ("clinician", "patient"):
        raise InputError(f"audience is {audience!r}; choose clinician or patient")
    verify = _Verify(run.verifier, run.verify_action) if run.verifier is not None else None
    stats = _Stats()
    refs = References(seed=numbering or {})
    sections: list[Section] = []
    all_sources: list[Source] = []
    expansion = _expand(question, run, stats)
    for kind in KINDS:
        hits, best = select_sources(
            run.index,
            question,
            kind,
            quotas(run.settings)[kind],
            run.settings,
            evidence,
            None if retrieved is None else retrieved.get(kind),
            run.reranker,
            expansion.searches,
        )
        unmentioned = tuple(run.index.unmentioned(question, kind))
        sources: tuple[Source, ...] = ()
        if hits and best >= run.min_relevance(kind):
            shown = _shown(question, kind, hits, unmentioned, run, stats)
            sources = tuple(Source(i + 1, h) for i, h in enumerate(shown))
            all_sources.extend(sources)
            stats.add("sources_shown", len(sources))
        request = SectionRequest(question, kind, sources, audience, unmentioned)
        section = yield from _section(request, run, refs, stats, verify)
        sections.append(section)
    suggested = run.generator.follow_ups(question, all_sources, audience) if all_sources else []
    follow_ups = _new_questions(question, suggested)
    answer = _answer(question, run, sections, refs, audience, follow_ups, stats, verify)
    yield AnswerDone(replace(answer, expansions=expansion.searches) if expansion.searches else answer)


def _new_questions(question: str, suggested: Sequence[str]) -> tuple[str, ...]:
    """The suggested follow-ups less any that only asks ``question`` again (the model sometimes offers it back)."""

    def key(q: str) -> str:
        return " ".join(re.findall(r"\w+", q.lower()))

    return tuple(q for q in dict.fromkeys(suggested) if key(q) != key(question))


def _shown(
    question: str, kind: Kind, hits: Sequence[Hit], unmentioned: Sequence[str], run: Prepared, stats: _Stats
) -> list[Hit]:
    """The hits a section may state from: none when its kind holds none of the question's specialised terms
    (:func:`terms_absent`), else, where ``answer.on_topic`` asks it of the kind, those that name one
    (:func:`on_topic`)."""
    if terms_absent(question, unmentioned, run.index, kind):
        stats.add("sections_terms_absent")
        return []
    if run.settings.answer.on_topic not in ("both", kind):
        return list(hits)
    kept = on_topic(question, hits, unmentioned)
    stats.add("off_topic_dropped", len(hits) - len(kept))
    if not kept:
        stats.add("sections_off_topic")
    return kept


def on_topic(question: str, hits: Sequence[Hit], unmentioned: Sequence[str] = ()) -> list[Hit]:
    """The hits whose passage or document title names one of the question's :func:`defining_terms` that some document
    holds (the ``unmentioned`` ones are in none), in British or American spelling; all of them when the question has
    no such term.

    A question that names its disease ("colorectal") is not answered from a passage that names another (an AML drug
    approval found for "RAS-mutant tumours"): such passages came for the question's general words alone.
    """
    absent = {w.lower() for w in unmentioned}
    terms = [t.lower() for t in defining_terms(question) if t.lower() not in absent]
    if not terms:
        return list(hits)
    keys = {k for t in terms for k in (t, american_spelling(t))}
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)) + ")", re.I)
    return [h for h in hits if pattern.search(h.chunk.text) or pattern.search(h.document.title)]


def _expand(question: str, run: Prepared, stats: _Stats) -> Expansion:
    """The question's extra queries when ``run`` expands (``expand.mode``), timed and counted in ``stats``."""
    if run.expander is None:
        return Expansion()
    expansion = run.expander.expand(question)
    stats.add("expansion_ms", round(expansion.seconds * 1000))
    stats.add("expansion_queries", len(expansion.searches))
    if expansion.failed:
        stats.add("expansion_failed")
    return expansion


def _answer(
    question: str,
    run: Prepared,
    sections: list[Section],
    refs: References,
    audience: Audience,
    follow_ups: tuple[str, ...],
    stats: _Stats,
    verify: _Verify | None,
) -> Answer:
    return Answer(
        question=question,
        sections=tuple(sections),
        references=refs.build(),
        disclaimer=DISCLAIMER[audience],
        follow_ups=follow_ups,
        run=RunInfo(
            generator=run.generator.name,
            model=run.generator.model,
            prompt_hash=run.generator.prompt_hash,
            settings_hash=run.settings.hash(),
            index_id=run.index.id,
        ),
        audience=audience,
        id=hashlib.sha256(f"{question}\x00{run.index.id}\x00{time.time_ns()}".encode()).hexdigest()[:12],
        stats=dict(stats.counts),
        verification=verify.report() if verify else None,
    )


def _section(
    request: SectionRequest, run: Prepared, refs: References, stats: _Stats, verify: _Verify | None
) -> Generator_[Event, None, Section]:
    """One section's events; returns the section. With no sources shown, or every statement dropped, it abstains."""
    title = SECTION_TITLES[request.kind]
    yield SectionStarted(title)
    groups: list[tuple[str | None, list[Statement]]] = []
    if request.sources:
        # The notice states what the index holds, not what a passage says: it is not verified against one. It
        # is numbered first (it comes first) but shown only once a statement of the generator's follows it.
        held = _numbered_notice(request, refs, stats, run.settings)
        finder = QuoteFinder([s.hit.chunk.text for s in request.sources])
        drafted = 0
        seen: set[str] = set()
        headings: dict[str, str | None] = {}  # the model's heading -> the one shown
        failure: str | None
        try:
            for draft in run.generator.draft_section(request):
                drafted += 1
                st = _check(draft, request.sources, refs, stats, run.settings, verify, title, finder, seen)
                if st is None:
                    continue
                shown = draft.heading
                if shown and isinstance(run.generator, LLMGenerator):
                    if shown not in headings:
                        headings[shown] = grounded_heading(shown, st, request.sources, request.kind, stats)
                    shown = headings[shown]
                for heading, item in ([(None, held[0])] if held else []) + [(shown, st)]:
                    first = not groups or groups[-1][0] != heading
                    if first:
                        groups.append((heading, []))
                    groups[-1][1].append(item)
                    yield ItemWritten(title, heading, item, first)
                held = None
        except ReplyError as e:  # one reply failed: this section says so, the answer goes on
            log.warning("%s: %s", title, e)
            stats.add(f"replies_{e.reason}")
            failure = e.reason
        else:
            failure = "dropped" if drafted and not groups and isinstance(run.generator, LLMGenerator) else None
        if held:  # nothing followed: the section abstains, and the notice's numbers are given back
            refs.restore(held[1])
            stats.add("statements", -1)
        if failure is not None:
            stats.add("sections_failed")
            text = (CUT_SHORT if groups else FAILED).format(n=len(request.sources), why=WHY[failure])
            note = Statement(text)
            first = not groups or groups[-1][0] is not None
            if first:
                groups.append((None, []))
            groups[-1][1].append(note)
            yield ItemWritten(title, None, note, first)
            if len(groups) == 1 and len(groups[0][1]) == 1:  # the note alone
                section = Section(title, (Group(None, (note,)),), abstained=True)
                yield SectionDone(section)
                return section
    if groups:
        section = Section(title, tuple(Group(h, tuple(items)) for h, items in groups))
    else:  # nothing relevant enough, or every statement was dropped: say so rather than fill space
        stats.add("sections_abstained")
        abstain = Statement(abstain_text(request))
        yield ItemWritten(title, None, abstain, True)
        section = Section(title, (Group(None, (abstain,)),), abstained=True)
    yield SectionDone(section)
    return section


def _named(words: Sequence[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def unmentioned_notice(request: SectionRequest) -> DraftItem | None:
    """The section's first statement when words of the question occur in no indexed document of its kind.

    It names the words and what the closest sources shown cover (their top-level headings), citing them, so a
    reader sees at once that the answer is about something near the question, not the question itself.
    """
    if not request.unmentioned or not request.sources:
        return None
    text = UNMENTIONED[request.kind].format(terms=_named(request.unmentioned))
    shown: dict[str, int] = {}
    for s in request.sources:
        what = s.hit.chunk.heading.split(" > ", 1)[0].strip() or s.hit.document.title
        if len(shown) < 2:
            shown.setdefault(what, s.n)
    what = " and ".join(f'"{w}"' for w in shown)
    return DraftItem(None, text + CLOSEST[request.kind].format(what=what), tuple(shown.values()))


def _numbered_notice(
    request: SectionRequest, refs: References, stats: _Stats, settings: Settings
) -> tuple[Statement, Any] | None:
    """The section's :func:`unmentioned_notice`, numbered, with the numbering as it was before it."""
    notice = unmentioned_notice(request)
    if notice is None:
        return None
    saved = refs.snapshot()
    st = _check(notice, request.sources, refs, stats, settings)
    return (st, saved) if st is not None else None


def defining_terms(question: str) -> tuple[str, ...]:
    """The specialised words of ``question``: what names its drug, test, gene or disease ("amoxicillin", "otitis",
    "HbA1c"), not what it asks about them ("dose", "children", "treatment"), nor numbers or acronyms.

    A specialised word is what :func:`~pipeline.quotes.beyond_quote` takes for one (outside a general-English
    vocabulary, an acronym, or holding a digit); read against no quote, every content word of the question is new
    to it, so its ``terms`` are the question's specialised words. Acronyms are left out: documents that never use
    one often spell it out ("CMS": the Centers for Medicare & Medicaid Services), so its absence says little.
    """
    vocabulary = common_words()
    terms = beyond_quote(question, "", "", vocabulary).terms
    return tuple(
        t
        for t in terms
        if not t.isdigit()
        and not (t.isalpha() and sum(c.isupper() for c in t) >= 2)
        # A British spelling of a general word is no term ("tumours": the vocabulary has "tumors").
        and not (american_spelling(t) != t.lower() and _general(american_spelling(t), vocabulary))
    )


def _general(word: str, vocabulary: frozenset[str]) -> bool:
    """``word`` or its singular is in the general vocabulary."""
    return word in vocabulary or (word.endswith("s") and word[:-1] in vocabulary)


def terms_absent(question: str, unmentioned: Sequence[str], index: Index, kind: Kind) -> bool:
    """Whether no document of ``kind`` holds any of the question's :func:`defining_terms`, in either spelling.

    ``unmentioned`` is what :meth:`~pipeline.index.Index.unmentioned` gives for the question and ``kind``. When this
    holds, the section abstains however close its passages came: they are about something else ("the dose of
    amoxicillin for otitis media in children" found a paediatric imaging paper). A question with no specialised
    word, or with one that some document holds ("oligoprogressive" is in none, "colorectal" is), is left to the
    relevance threshold, and its closest passages are shown under the :func:`unmentioned_notice`.
    """
    terms = defining_terms(question)
    absent = {w.lower() for w in unmentioned}
    if not terms or any(t.lower() not in absent for t in terms):
        return False
    # British spellings the documents may hold in American spelling ("anaemia": the PDQ summaries say "anemia").
    american = {a for t in terms if (a := american_spelling(t.lower())) != t.lower()}
    return not american or american <= {w.lower() for w in index.unmentioned(" ".join(sorted(american)), kind)}


def abstain_text(request: SectionRequest) -> str:
    """The one sentence of an abstaining section; it names the question's words that no document of its kind has."""
    if not request.unmentioned:
        return ABSTAIN[request.kind]
    return UNMENTIONED[request.kind].format(terms=_named(request.unmentioned)) + ABSTAIN_UNMENTIONED[request.kind]


def _by_document(hits: Sequence[Hit]) -> list[tuple[str, list[str]]]:
    """(header, passage texts) per cited document, in order of first citation: a saved answer's references."""
    by_doc: dict[str, list[Hit]] = {}
    for h in hits:
        by_doc.setdefault(h.chunk.doc_id, []).append(h)
    return [(hs[0].document.header(), [h.chunk.text for h in hs]) for hs in by_doc.values()]


def cited_texts(hits: Sequence[Hit]) -> list[str]:
    """What a judge reads for a statement citing ``hits``: one :func:`~pipeline.types.judged_text` per document,
    in order of first citation, its cited passages in citation order (as the saved answer's references and
    ``chunk_ids`` give them to ``medcite eval``)."""
    return [judged_text(header, texts) for header, texts in _by_document(hits)]


def _check(
    draft: DraftItem,
    sources: tuple[Source, ...],
    refs: References,
    stats: _Stats,
    settings: Settings,
    verify: _Verify | None = None,
    section: str = "",
    finder: QuoteFinder | None = None,
    seen: set[str] | None = None,
) -> Statement | None:
    """Validate a drafted statement's citations and quote, verify it if asked, and number its references.

    An opening that points at the model's input ("The text states that ...") is taken off first
    (:func:`~pipeline.text.without_preamble`, ``stats.preambles_removed``). With a ``finder`` (``answer.quotes`` is
    ``check`` or ``found``) a statement that carries a quote keeps the citations of the passages that hold the quote
    (``stats.citations_without_quote_dropped`` counts the others); a quote found in another of the section's
    passages moves the citation there; a quote found nowhere (or too short to ground anything) drops the statement,
    or marks it with ``answer.uncited=mark``. With ``check``, a statement that says more than its quote's sentences
    (:func:`~pipeline.quotes.beyond_quote`) gives way to the sentence its quote is in (``answer.overreach=quote``,
    when that sentence can stand as an answer), or is dropped or marked the same way. Verification runs before
    numbering, so a dropped statement never leaves an uncited reference behind. With ``seen`` (the section's
    statements and quotes so far, as :func:`~pipeline.quotes.quote_key` gives them), a statement that says or
    quotes again what one before it did is dropped (``stats.repeats_dropped``).
    """
    parsed = parse_citations(draft.text, len(sources), extra=draft.cites)
    if not parsed.text:
        return None
    stats.add("out_of_range_citations", len(parsed.invalid))
    said = text = without_preamble(parsed.text)  # said: its words, as judged; text: as shown, with any mark
    if said != parsed.text:
        stats.add("preambles_removed")
    valid, quote = parsed.valid, ""
    if draft.quote is not None and finder is not None and settings.answer.quotes != "off":
        titles = title_keys([(s.hit.document.title, s.hit.chunk.text) for s in sources])
        valid, quote = _ground(draft.quote, said, valid, finder, stats, titles)
        if not quote:
            if settings.answer.uncited == "drop":
                stats.add("quotes_dropped")
                return None
            text = f"{text} {QUOTE_MARK}"
    hits = [sources[n - 1].hit for n in valid]
    quoted = quoted_evidence(quote, _by_document(hits)) if quote and hits else None
    if quoted is not None and settings.answer.quotes == "check":
        kept = _within_quote(said, text, quoted, quote, hits, settings, stats)
        if kept is None:
            return None
        said, text = kept
    if hits and verify is not None:
        passage = quoted if quoted is not None else "\n\n".join(cited_texts(hits))
        mark = _judged(said, passage, [h.chunk.id for h in hits], verify, section, stats)
        if mark is None:
            return None
        text = f"{text} {mark}" if mark else text
    # A statement that repeats one already in the section, or gives its quote again (a marked one stays in view).
    if seen is not None and text == said:
        keys = {quote_key(said)} | ({quote_key(quote)} if quote else set())
        if keys & seen:
            stats.add("repeats_dropped")
            return None
        seen |= keys
    numbers = tuple(dict.fromkeys(refs.number(h) for h in hits))
    if not numbers:
        if settings.answer.uncited == "drop":
            stats.add("uncited_dropped")
            return None
        stats.add("uncited_marked")
        stats.add("statements")
        return Statement(f"{said} {UNCITED_MARK}")
    stats.add("statements")
    chunk_ids = tuple(dict.fromkeys(h.chunk.id for h in hits))
    return Statement(text, numbers, chunk_ids, quote)


def grounded_heading(
    heading: str, opening: Statement, sources: Sequence[Source], kind: Kind, stats: _Stats | None = None
) -> str | None:
    """A model's heading for the group that ``opening`` starts, or what its source calls that part when the heading
    names what neither the statement, its quote's sentences nor the passage's own heading path say.

    The bundled model put "Treatment Options" over "colorectal cancer affects men and women almost equally" and
    "Response to CAPOX in RAS-mutant CRC" over an adjuvant-chemotherapy finding that says nothing of RAS. A heading
    is kept when it adds no specialised term (:func:`~pipeline.quotes.beyond_quote`: a drug, gene, number or
    acronym) and shares at least one content word with those; otherwise a guideline's group takes the last part of
    its passage's heading path ("Incidence and Mortality"), as the extractive generator titles its groups, and a
    research group goes without a heading (``stats.headings_replaced``).
    """
    hits = [s.hit for s in sources if s.hit.chunk.id in opening.chunk_ids]
    said = [opening.text]
    for h in hits:
        said.append((quote_context(h.chunk.text, opening.quote) if opening.quote else None) or h.chunk.text)
        said.append(h.chunk.heading)
    beyond = beyond_quote(heading, "\n".join(said), "", common_words())
    if not beyond.words or (not beyond.terms and beyond.missing < beyond.words):
        return heading
    shown = None
    if kind == "guideline":
        shown = next((leaf for h in hits if (leaf := heading_leaf(h.chunk.heading))), None)
        shown = shown or (hits[0].document.title if hits else heading)
    log.info(
        "heading %r names %s, which its first statement does not say: shown as %r", heading, beyond.unquoted, shown
    )
    if stats is not None:
        stats.add("headings_replaced")
    return shown


def _within_quote(
    said: str, text: str, quoted: str, quote: str, hits: Sequence[Hit], settings: Settings, stats: _Stats
) -> tuple[str, str] | None:
    """``(said, text)`` as they stand once read against the quote's sentences ``quoted``
    (:func:`~pipeline.quotes.beyond_quote`): unchanged, given way to the quote's sentence, marked, or None (dropped)."""
    beyond = beyond_quote(said, quoted, quote, common_words())
    if beyond.within(settings.answer.max_unquoted):
        return said, text
    log.info("statement says more than its quote (%s): %s", beyond.why(settings.answer.max_unquoted), said)
    restated = quoted_sentence(quote, hits) if settings.answer.overreach == "quote" else None
    if restated is not None:  # what the source says, in its own words
        stats.add("beyond_quote_restated")
        return restated, restated
    if settings.answer.uncited == "drop":
        stats.add("beyond_quote_dropped")
        return None
    stats.add("beyond_quote_marked")
    return said, f"{text} {BEYOND_MARK}"


def _judged(said: str, passage: str, chunk_ids: list[str], verify: _Verify, section: str, stats: _Stats) -> str | None:
    """``ask --verify`` on one statement: "" when the judge finds it supported, the mark to add when it is marked,
    None when it is dropped; recorded in ``verify`` and counted in ``stats``."""
    score = float(verify.judge.score([(said, passage)])[0])
    verify.checked += 1
    if score >= verify.judge.threshold:
        return ""
    rel = relations_of(verify.judge, [(said, passage)])
    relation = "contradicted" if rel is not None and is_contradicted(rel)[0] else "unsupported"
    record = {"section": section, "text": said, "score": round(score, 4), "relation": relation, "chunk_ids": chunk_ids}
    if verify.action == "drop":
        verify.removed.append(record)
        stats.add(f"{relation}_dropped")
        return None
    verify.marked.append(record)
    stats.add(f"{relation}_marked")
    return CONTRADICTED_MARK if relation == "contradicted" else UNSUPPORTED_MARK


def quoted_sentence(quote: str, hits: Sequence[Hit]) -> str | None:
    """The whole sentence(s) of the first of ``hits`` that holds ``quote``, as an answer may state them
    (:func:`~pipeline.generate.extractive.answerable_sentence`), or None: a statement that says more than its quote
    gives way to what its source says."""
    for h in hits:
        context = quote_context(h.chunk.text, quote)
        if context is not None:
            return answerable_sentence(context, complete=h.document.kind == "research")
    return None


def _ground(
    quote: str, text: str, cited: tuple[int, ...], finder: QuoteFinder, stats: _Stats, titles: Sequence[str] = ()
) -> tuple[tuple[int, ...], str]:
    """The citations a statement keeps and its quote as checked ("" when not found), counted in ``stats``.

    Of the passages a statement cites, it keeps those that hold its quote: a citation is a claim that the passage
    says what the statement says, and only the quote's words were checked.

    A quote that is a source's title (``titles``, as :func:`~pipeline.quotes.title_keys` gives them) grounds
    nothing: a paper's title is no finding ("Updated efficacy and toxicity analysis of IROX ..."), and it counts
    as ``quotes_of_titles``.
    """
    q = " ".join(quote.split())
    if not q or too_short(q, text):
        stats.add("quotes_not_found")
        return cited, ""
    if is_title(q, titles):
        stats.add("quotes_of_titles")
        return cited, ""
    holding = tuple(n for n in cited if finder.find(q, [n - 1]) is not None)
    if holding:
        stats.add("quotes_found")
        if len(holding) < len(cited):  # [5, 3, 4] for words only [3] holds: [5] and [4] are unchecked
            stats.add("citations_without_quote_dropped", len(cited) - len(holding))
            log.info("cited %s, but only %s hold its quote: %s", list(cited), list(holding), q)
        return holding, q
    other = finder.find(q)
    if other is not None:  # the words are another source's: cite that one
        stats.add("quotes_moved")
        return (other + 1,), q
    stats.add("quotes_not_found")
    return cited, ""


def ask(
    question: str,
    index: Index,
    options: AskOptions | Prepared | None = None,
    *,
    numbering: Mapping[str, int] | None = None,
    evidence: Sequence[str] = (),
    retrieved: Mapping[Kind, Sequence[Hit]] | None = None,
    **changes: Any,
) -> Answer:
    """Answer ``question`` from ``index`` (see :func:`ask_stream`, which takes the same arguments)."""
    events = ask_stream(
        question, index, options, numbering=numbering, evidence=evidence, retrieved=retrieved, **changes
    )
    for event in events:
        if isinstance(event, AnswerDone):
            return event.answer
    raise AssertionError("ask_stream ended without an answer")
