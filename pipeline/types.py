"""Frozen value types that flow through the pipeline, the events of a streamed answer, and the answer's JSON shape.

``corpus files -> Document -> Chunk -> index -> Hit -> Answer``. None of them holds a vector: FAISS does.

JSON shape of an answer (:func:`to_dict`, :func:`from_dict`)::

    {"id", "question", "audience",
     "sections": [{"title", "abstained",
                   "blocks": [{"heading": str | null,
                               "items": [{"text", "citations": [int], "chunk_ids": [str], "quote"?: str}]}]}],
     "references": [{"n", "kind", "title", "source", "year", "id", "url", "doc_id",
                     "passages": [{"chunk_id", "page", "heading", "text", "relevance"?}]}],
     "disclaimer", "follow_ups": [str],
     "run": {"generator", "model", "prompt_hash", "settings_hash", "index_id"}, "stats": {...}, "verification"?: {...},
     "expansions"?: [str]}

``chunk_ids`` names the passages a statement was written from (a subset of its references' passages); answers
from other tools may leave it out, and are then judged against every passage of the references they cite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pipeline.errors import InputError
from pipeline.quotes import quote_context
from pipeline.render import (
    GUIDELINES_TITLE,
    RESEARCH_TITLE,
    SECTION_TITLES,
    MarkdownStream,
    source_header,
    to_html_fragment,
    to_markdown,
)

Kind = Literal["guideline", "research"]
KINDS: tuple[Kind, ...] = ("guideline", "research")


@dataclass(frozen=True, slots=True)
class Block:
    """A run of text under one heading, on one page (PDFs) or none (other formats)."""

    text: str
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One guideline or research document with its provenance.

    ``blocks`` holds the text; documents stored in an index keep their metadata only.
    """

    id: str
    kind: Kind
    title: str
    source: str = ""  # organisation (guidelines) or journal (research)
    year: int | None = None
    pmid: str | None = None
    doi: str | None = None
    url: str | None = None
    license: str = ""
    path: str = ""  # where it was read from, relative to the corpus root when known
    blocks: tuple[Block, ...] = field(default=(), repr=False)

    def header(self) -> str:
        """ "Title (source, year)": how this document is named to a generator and a judge."""
        return source_header(self.title, self.source, self.year)

    def content_hash(self) -> str:
        """sha256 over metadata and text: changes when anything a reader would see changes."""
        payload = json.dumps(self.to_dict(with_blocks=True), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def without_text(self) -> Document:
        return replace(self, blocks=())

    def to_dict(self, *, with_blocks: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_blocks:
            d.pop("blocks")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        blocks = tuple(Block(**b) for b in d.get("blocks", ()))
        fields = {k: v for k, v in d.items() if k != "blocks"}
        return cls(**fields, blocks=blocks)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage that fits the embedding model, with the heading and page it came from.

    ``id`` is derived from the document id and the text: same text, same id.
    """

    id: str
    doc_id: str
    kind: Kind
    text: str
    heading: str = ""
    page: int | None = None
    page_end: int | None = None
    ordinal: int = 0
    n_tokens: int = 0
    context: str = ""  # "title — heading", prepended to the text when embedding

    def embedding_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chunk:
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its scores, ranks and the document it belongs to.

    ``score`` is the fused score in hybrid mode (reciprocal rank fusion), else the retriever's own.
    Ranks are 1-based; ``None`` where that retriever did not return the chunk. After reranking, ``rank`` is the
    reranked one and ``relevance`` the score it was chosen with.
    """

    rank: int
    score: float
    chunk: Chunk
    document: Document
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None
    relevance: float | None = None  # P(answers the question) from the relevance model, when it reranked the hit

    @property
    def kind(self) -> Kind:
        return self.chunk.kind

    def to_dict(self) -> dict[str, Any]:
        """The ``medcite search --json`` shape of one hit."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "kind": self.chunk.kind,
            "doc_id": self.chunk.doc_id,
            "chunk_id": self.chunk.id,
            "title": self.document.title,
            "source": self.document.source,
            "year": self.document.year,
            "pmid": self.document.pmid,
            "url": self.document.url,
            "heading": self.chunk.heading,
            "page": self.chunk.page,
            "text": self.chunk.text,
            "dense_score": self.dense_score,
            "dense_rank": self.dense_rank,
            "lexical_score": self.lexical_score,
            "lexical_rank": self.lexical_rank,
            "relevance": None if self.relevance is None else round(self.relevance, 6),
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or record that was not ingested, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --------------------------------------------------------------------------- answers

__all__ = [
    "GUIDELINES_TITLE",
    "KINDS",
    "RESEARCH_TITLE",
    "SECTION_TITLES",
    "Answer",
    "AnswerDone",
    "Block",
    "Chunk",
    "Document",
    "Event",
    "Group",
    "Hit",
    "ItemWritten",
    "Kind",
    "Passage",
    "Reference",
    "RunInfo",
    "Section",
    "SectionDone",
    "SectionStarted",
    "Skipped",
    "Statement",
    "cited_evidence",
    "from_dict",
    "judged_text",
    "to_dict",
]


@dataclass(frozen=True, slots=True)
class Statement:
    """One sentence or bullet of an answer with the reference numbers it cites (1-based).

    ``chunk_ids`` are the passages it was written from, in the order it cited them (empty for answers
    from tools that do not record them).
    """

    text: str
    citations: tuple[int, ...] = ()
    chunk_ids: tuple[str, ...] = ()
    quote: str = ""  # the exact words of a cited passage that it restates ("" when its generator gives none)


@dataclass(frozen=True, slots=True)
class Group:
    """Statements under one heading; ``heading=None`` is the lead paragraph (or plain bullets)."""

    heading: str | None
    items: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    groups: tuple[Group, ...]
    abstained: bool = False  # True when no passage was relevant enough; the one item says so


@dataclass(frozen=True, slots=True)
class Passage:
    """A cited passage; ``relevance`` is the P(answers) it was chosen with, when the relevance model reranked."""

    chunk_id: str
    page: int | None
    text: str
    heading: str = ""
    relevance: float | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """Reference ``n`` of an answer: a document and the passages of it that were cited."""

    n: int
    kind: Kind
    title: str
    source: str
    year: int | None
    id: str  # PMID, DOI or document id
    url: str | None
    doc_id: str
    passages: tuple[Passage, ...]

    def header(self) -> str:
        """ "Title (source, year)", as :meth:`Document.header` names the same document."""
        return source_header(self.title, self.source, self.year)


@dataclass(frozen=True, slots=True)
class RunInfo:
    generator: str
    model: str
    prompt_hash: str
    settings_hash: str
    index_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A sectioned, cited answer. Citation ``[n]`` is the reference numbered ``n``: ``references[n - 1]`` in a
    lone answer; in a conversation numbers carry over from earlier turns and only the cited ones are listed."""

    question: str
    sections: tuple[Section, ...]
    references: tuple[Reference, ...]
    disclaimer: str
    follow_ups: tuple[str, ...]
    run: RunInfo
    audience: str = "clinician"
    id: str | None = None
    stats: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    # With --verify: {"judge", "fingerprint", "threshold", "action", "checked", "contradicted", "removed": [...],
    # "marked": [...]}; each removed or marked record has "relation": "contradicted" or "unsupported"
    verification: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    # With query expansion (``expand.mode``): the extra queries searched beside the question, passage first.
    expansions: tuple[str, ...] = field(default=(), hash=False, compare=False)

    def _repr_html_(self) -> str:
        """Jupyter shows this: the sections, citation numbers that reveal their passages, the references."""
        return to_html_fragment(self)

    def _repr_markdown_(self) -> str:
        return to_markdown(self)


# --------------------------------------------------------------------------- what a judge reads


def judged_text(header: str, passages: Sequence[str]) -> str:
    """One cited source as a judge reads it: its header (a claim may name the source), then the cited passages.

    ``ask --verify`` and ``medcite eval`` both judge a statement against these texts joined by a blank line,
    so a statement gets the same score from both.
    """
    return header + "\n" + "\n".join(passages)


def cited_evidence(
    statement: Statement, references: Mapping[int, Reference], numbers: Sequence[int] | None = None
) -> list[str]:
    """The :func:`judged_text` of each reference ``statement`` cites that resolves, in citation order.

    Only the passages the statement was written from are read when it records them (``chunk_ids``, in that
    order); otherwise every passage of the reference. ``numbers``: the citations to read, when not the
    statement's own (an answer from another tool may write its markers into the text). A statement with a
    ``quote`` found in one of them is read against that quote's sentences alone (:func:`quoted_evidence`).
    """
    out = [
        judged_text(references[n].header(), [p.text for p in _own(statement, references[n])])
        for n in (statement.citations if numbers is None else numbers)
        if n in references
    ]
    if statement.quote:  # judged against the sentences its quote is in (the same in ask --verify)
        quoted = quoted_evidence(
            statement.quote,
            [
                (references[n].header(), [p.text for p in _own(statement, references[n])])
                for n in (statement.citations if numbers is None else numbers)
                if n in references
            ],
        )
        if quoted is not None:
            return [quoted]
    return out


def _own(statement: Statement, ref: Reference) -> list[Passage]:
    by_id = {p.chunk_id: p for p in ref.passages}
    return [by_id[c] for c in statement.chunk_ids if c in by_id] or list(ref.passages)


def quoted_evidence(quote: str, sources: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    """What a judge reads a quoted statement against: the header of the first source (``(header, passages)``, in
    citation order) whose passage holds the quote, and the sentences the quote falls in. None when none holds it.

    ``ask --verify`` and ``medcite eval`` both read a quoted statement this way, so it scores the same in both.
    """
    for header, passages in sources:
        for text in passages:
            context = quote_context(text, quote)
            if context is not None:
                return judged_text(header, [context])
    return None


# --------------------------------------------------------------------------- events of a streamed answer


@dataclass(frozen=True, slots=True)
class SectionStarted:
    title: str

    def markdown(self, stream: MarkdownStream) -> str:
        return stream.section_started(self.title)


@dataclass(frozen=True, slots=True)
class ItemWritten:
    section: str
    heading: str | None
    statement: Statement
    first_in_group: bool

    def markdown(self, stream: MarkdownStream) -> str:
        return stream.item_written(self.section, self.heading, self.statement, self.first_in_group)


@dataclass(frozen=True, slots=True)
class SectionDone:
    section: Section

    def markdown(self, stream: MarkdownStream) -> str:
        return stream.section_done()


@dataclass(frozen=True, slots=True)
class AnswerDone:
    answer: Answer

    def markdown(self, stream: MarkdownStream) -> str:
        return stream.answer_done(self.answer)


Event = SectionStarted | ItemWritten | SectionDone | AnswerDone


# --------------------------------------------------------------------------- the JSON shape


def to_dict(answer: Answer) -> dict[str, Any]:
    """The answer in its JSON shape (see the module docs)."""
    return {
        "id": answer.id,
        "question": answer.question,
        "audience": answer.audience,
        "sections": [
            {
                "title": s.title,
                "abstained": s.abstained,
                "blocks": [
                    {
                        "heading": g.heading,
                        "items": [
                            {"text": st.text, "citations": list(st.citations), "chunk_ids": list(st.chunk_ids)}
                            | ({"quote": st.quote} if st.quote else {})
                            for st in g.items
                        ],
                    }
                    for g in s.groups
                ],
            }
            for s in answer.sections
        ],
        "references": [
            {
                "n": r.n,
                "kind": r.kind,
                "title": r.title,
                "source": r.source,
                "year": r.year,
                "id": r.id,
                "url": r.url,
                "doc_id": r.doc_id,
                "passages": [
                    {"chunk_id": p.chunk_id, "page": p.page, "heading": p.heading, "text": p.text}
                    | ({"relevance": round(p.relevance, 6)} if p.relevance is not None else {})
                    for p in r.passages
                ],
            }
            for r in answer.references
        ],
        "disclaimer": answer.disclaimer,
        "follow_ups": list(answer.follow_ups),
        "run": {
            "generator": answer.run.generator,
            "model": answer.run.model,
            "prompt_hash": answer.run.prompt_hash,
            "settings_hash": answer.run.settings_hash,
            "index_id": answer.run.index_id,
        },
        "stats": dict(answer.stats),
        **({"verification": answer.verification} if answer.verification is not None else {}),
        **({"expansions": list(answer.expansions)} if answer.expansions else {}),
    }


def from_dict(d: dict[str, Any]) -> Answer:
    """An :class:`Answer` from its JSON shape (as written by :func:`to_dict` or another tool)."""
    try:
        sections = tuple(
            Section(
                title=str(s["title"]),
                groups=tuple(
                    Group(
                        b.get("heading"),
                        tuple(
                            Statement(
                                str(i["text"]),
                                tuple(int(c) for c in i.get("citations", [])),
                                tuple(str(c) for c in i.get("chunk_ids", [])),
                                str(i.get("quote") or ""),
                            )
                            for i in b["items"]
                        ),
                    )
                    for b in s["blocks"]
                ),
                abstained=bool(s.get("abstained", False)),
            )
            for s in d["sections"]
        )
        refs = tuple(
            Reference(
                n=int(r["n"]),
                kind=r.get("kind", "research"),
                title=str(r.get("title", "")),
                source=str(r.get("source", "")),
                year=r.get("year"),
                id=str(r.get("id", "")),
                url=r.get("url"),
                doc_id=str(r.get("doc_id", r.get("id", ""))),
                passages=tuple(
                    Passage(
                        str(p.get("chunk_id", "")),
                        p.get("page"),
                        str(p.get("text", "")),
                        str(p.get("heading", "")),
                        None if p.get("relevance") is None else float(p["relevance"]),
                    )
                    for p in r.get("passages", [])
                ),
            )
            for r in d.get("references", [])
        )
        run = d.get("run") or {}
        return Answer(
            question=str(d["question"]),
            sections=sections,
            references=refs,
            disclaimer=str(d.get("disclaimer", "")),
            follow_ups=tuple(str(q) for q in d.get("follow_ups", [])),
            run=RunInfo(
                *(str(run.get(k, "")) for k in ("generator", "model", "prompt_hash", "settings_hash", "index_id"))
            ),
            audience=str(d.get("audience", "clinician")),
            id=d.get("id"),
            stats=dict(d.get("stats", {})),
            verification=d.get("verification"),
            expansions=tuple(str(q) for q in d.get("expansions", [])),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"not an answer in medcite's JSON shape ({type(e).__name__}: {e})") from None
