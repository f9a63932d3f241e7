"""Frozen value types that flow through the pipeline.

``corpus files -> Document -> Chunk -> index -> Hit``. None of them holds a vector: FAISS does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

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
    Ranks are 1-based; ``None`` where that retriever did not return the chunk.
    """

    rank: int
    score: float
    chunk: Chunk
    document: Document
    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None

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
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or record that was not ingested, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --------------------------------------------------------------------------- answers

GUIDELINES_TITLE = "From the Guidelines"
RESEARCH_TITLE = "From the Research"
SECTION_TITLES: dict[Kind, str] = {"guideline": GUIDELINES_TITLE, "research": RESEARCH_TITLE}


@dataclass(frozen=True, slots=True)
class Statement:
    """One sentence or bullet of an answer with the reference numbers it cites (1-based)."""

    text: str
    citations: tuple[int, ...] = ()


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
    chunk_id: str
    page: int | None
    text: str
    heading: str = ""


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
    # With --verify: {"judge", "fingerprint", "threshold", "action", "checked", "removed": [...], "marked": [...]}
    verification: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    def _repr_html_(self) -> str:
        """Jupyter shows this: the sections, citation numbers that reveal their passages, the references."""
        from pipeline.render import to_html_fragment

        return to_html_fragment(self)

    def _repr_markdown_(self) -> str:
        from pipeline.render import to_markdown

        return to_markdown(self)
