"""Citation markers: parse what a model wrote, keep only numbers it was shown, renumber by first use.

The pipeline owns the numbering. A generator sees its section's sources as ``[1]..[m]`` and may
only choose among them; every number it writes is checked here, out-of-range numbers are dropped
and counted, and the surviving ones are mapped to answer-wide reference numbers ``1..n`` in order
of first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.errors import InputError
from pipeline.types import Hit, Passage, Reference

# [1] [1, 2] [1,2] [1-3] [1–3] [1; 2] — a bracket holding only numbers, commas, semicolons, dashes.
MARKER = re.compile(r" ?\[(\d+(?:\s*(?:[,;]|[-–—]|and)\s*\d+)*)\]")
_SPACE_BEFORE_PUNCT = re.compile(r" ([.,;:!?])")
MAX_RANGE = 50  # "[1-999]" is not a range anyone means
MAX_DIGITS = 9  # a longer number is no source number (and int() refuses numbers past 4,300 digits)
_PASSES = 4  # removing "[1]" from "[[1]2]" leaves "[2]": look again, a few times


@dataclass(frozen=True, slots=True)
class ParsedCitations:
    text: str  # the text on one line, with every marker removed
    numbers: tuple[int, ...]  # every number written, in order, duplicates removed
    valid: tuple[int, ...]  # those within 1..n_sources
    invalid: tuple[int, ...]  # those outside it


def _int(digits: str) -> int:
    return int(digits) if len(digits) <= MAX_DIGITS else 10**MAX_DIGITS


def _expand(body: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:[,;]|and)\s*", body):
        m = re.fullmatch(r"(\d+)\s*[-–—]\s*(\d+)", part)
        if m:
            a, b = _int(m.group(1)), _int(m.group(2))
            out.extend(range(a, b + 1) if 0 <= b - a <= MAX_RANGE else (a, b))
        elif part.strip().isdigit():
            out.append(_int(part.strip()))
    return out


def parse_citations(text: str, n_sources: int, extra: Iterable[int] = ()) -> ParsedCitations:
    """Strip ``[n]`` markers from ``text`` and sort their numbers into valid and invalid.

    ``extra`` adds numbers given outside the text (a structured ``cite`` field), checked the same way.
    Markers before or after the final period are both accepted; the cleaned text keeps its punctuation.
    It is one line (whitespace runs become one space), so model output cannot add lines, headings or
    list items to a rendered answer, and no marker is left in it: what a reader sees as a citation
    was checked. Linear in the length of ``text``, whatever it holds.
    """
    numbers: list[int] = []
    clean = " ".join(text.split())
    for _ in range(_PASSES):
        found = [m.group(1) for m in MARKER.finditer(clean)]
        if not found:
            break
        for body in found:
            numbers.extend(_expand(body))
        clean = MARKER.sub("", clean)
    else:  # still a marker after several passes: a pathological nesting; defuse what is left
        clean = MARKER.sub(lambda m: f" ({m.group(1)})", clean)
    numbers.extend(int(x) for x in extra)
    clean = _SPACE_BEFORE_PUNCT.sub(r"\1", clean).strip()
    seen: list[int] = list(dict.fromkeys(numbers))
    valid = tuple(n for n in seen if 1 <= n <= n_sources)
    invalid = tuple(n for n in seen if not 1 <= n <= n_sources)
    return ParsedCitations(clean, tuple(seen), valid, invalid)


@dataclass
class References:
    """Answer-wide reference numbers, assigned by first use; one reference per document.

    ``seed`` (document id -> number) continues a numbering begun elsewhere, as a conversation does: a
    seeded document keeps its number, and a new one gets the number after the highest given so far.
    Only documents cited here are counted and built.
    """

    seed: Mapping[str, int] = field(default_factory=dict)
    _by_doc: dict[str, int] = field(default_factory=dict)
    _hits: dict[int, list[Hit]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        numbers = list(self.seed.values())
        if any(not isinstance(n, int) or n < 1 for n in numbers) or len(set(numbers)) != len(numbers):
            raise InputError(f"reference numbering seed must map documents to distinct numbers >= 1, got {numbers}")
        self._by_doc = {**self.seed, **self._by_doc}

    def number(self, hit: Hit) -> int:
        doc = hit.chunk.doc_id
        if doc not in self._by_doc:
            self._by_doc[doc] = max(self._by_doc.values(), default=0) + 1
        n = self._by_doc[doc]
        hits = self._hits.setdefault(n, [])
        if all(h.chunk.id != hit.chunk.id for h in hits):
            hits.append(hit)
        return n

    def snapshot(self) -> tuple[dict[str, int], dict[int, list[Hit]]]:
        """The numbering so far, for :meth:`restore`."""
        return dict(self._by_doc), {n: list(hs) for n, hs in self._hits.items()}

    def restore(self, state: tuple[dict[str, int], dict[int, list[Hit]]]) -> None:
        """Go back to a :meth:`snapshot`: numbers given since are free again."""
        self._by_doc, self._hits = dict(state[0]), {n: list(hs) for n, hs in state[1].items()}

    def __len__(self) -> int:
        return len(self._hits)

    def build(self) -> tuple[Reference, ...]:
        refs = []
        for n in sorted(self._hits):
            hits = self._hits[n]
            d = hits[0].document
            refs.append(
                Reference(
                    n=n,
                    kind=hits[0].chunk.kind,
                    title=d.title,
                    source=d.source,
                    year=d.year,
                    id=f"PMID {d.pmid}" if d.pmid else (f"DOI {d.doi}" if d.doi else d.id),
                    url=d.url,
                    doc_id=d.id,
                    passages=tuple(
                        Passage(h.chunk.id, h.chunk.page, h.chunk.text, h.chunk.heading, h.relevance) for h in hits
                    ),
                )
            )
        return tuple(refs)
