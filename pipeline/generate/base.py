"""What every generator shares: the sources it is shown, the request, the drafted items, the protocols.

A generator streams :class:`DraftItem` values in order; :mod:`pipeline.answer` checks the citation
numbers, renumbers them and builds the answer. No generator ever falls back to another.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipeline.errors import ReplyError
from pipeline.types import Hit, Kind

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
    unmentioned: tuple[str, ...] = ()  # words of the question that no indexed document of this kind contains


@dataclass(frozen=True, slots=True)
class DraftItem:
    """A statement as a generator wrote it; ``cites`` are local source numbers, unchecked."""

    heading: str | None  # None: the lead paragraph (guidelines) or an ungrouped bullet
    text: str
    cites: tuple[int, ...] = ()
    # The exact words of a cited source that the statement restates (pipeline.quotes checks them); None: this
    # generator gives no quotes, and the statement is checked by its citations only.
    quote: str | None = None


class Generator(Protocol):
    name: str

    @property
    def model(self) -> str: ...

    @property
    def prompt_hash(self) -> str: ...

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]: ...

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]: ...


class ChatBackend(Protocol):
    """Streams the text of one chat completion held to a JSON schema."""

    @property
    def model(self) -> str: ...

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> Iterator[str]: ...


def complete(
    backend: ChatBackend,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    max_tokens: int,
    *,
    cut_ok: bool = False,
) -> str:
    """The whole text of one short completion (a follow-up rewrite, a list of questions): no streaming needed.

    With ``cut_ok``, a reply cut at ``max_tokens`` is returned as far as it got (its caller parses what is
    complete); otherwise, and for a reply interrupted any other way, :class:`~pipeline.errors.ReplyError`.
    """
    pieces: list[str] = []
    try:
        for piece in backend.stream(messages, schema, max_tokens):
            pieces.append(piece)
    except ReplyError as e:
        if not (cut_ok and e.reason == "length"):
            raise
    return "".join(pieces)


def heading_leaf(heading: str) -> str:
    """The last part of a heading path ("Treatment > Stage IV" -> "Stage IV")."""
    return heading.rsplit(" > ", 1)[-1].strip()
