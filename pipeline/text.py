"""Plain-text helpers every floor may use: sentences and content words, cheap and dependency-free."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an the of in on at to for from by with and or as is are was were be been being this that these those it its "
    "their there which who what when where how than then also may can could should would will do does did has have "
    "had such into over under about between during after before more most less other some any each all why whom "
    "whose".split()
)
_STOP = STOP_WORDS


_ABBREVIATION = re.compile(r"\b(?:fig|figs|tab|eq|ref|vs|al|e\.g|i\.e|approx|no|dr|st|cf|ca)\.$", re.I)


def sentences(text: str) -> list[str]:
    """Sentences by punctuation and blank lines; cheap and good enough for windowing ("Fig. 2", "et al." kept)."""
    out: list[str] = []
    for piece in (x.strip() for x in _SENTENCE.split(text)):
        if not piece:
            continue
        if out and _ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}
