"""Quotes: the exact words of a source that a statement restates, and where in the sources they are.

A generated statement carries a ``quote``, one span of the passage it cites. The pipeline looks the quote up in
the section's passages after normalising both sides the same way, and nothing more:

- Unicode compatibility forms (NFKC: ligatures, full-width letters, non-breaking spaces), then case (casefold);
- hyphenation: soft hyphens removed, a word broken at a line end ("treat-\\nment") joined, every dash or hyphen
  variant read as a space ("first-line" = "first line" = "first‑line");
- quotation marks and apostrophes of every style read as one;
- whitespace runs as one space; punctuation at either end of the quote ignored.

No fuzzy matching beyond that: a quote the model paraphrased is not found, and that is the point. A quote must
also be long enough to ground something (:data:`MIN_QUOTE_WORDS`); "colorectal cancer" occurs everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from pipeline.text import sentences

MIN_QUOTE_WORDS = 4  # shorter quotes (unless the whole statement is shorter) ground nothing
MAX_QUOTE_WORDS = 60  # the prompt asks for about 40; a longer one is a copied passage, still checked

_SOFT_HYPHEN = "\u00ad"
_LINE_BREAK_HYPHEN = re.compile(r"(\w)[-\u2010\u2011]\s*\n\s*(\w)")
_DASHES = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")
_QUOTES = str.maketrans(
    {c: '"' for c in "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033"} | {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032`"}
)
_EDGE = re.compile(r"^[\s\"'.,;:!?…()\[\]]+|[\s\"'.,;:!?…()\[\]]+$")


def normalise(text: str) -> str:
    """``text`` as quotes are compared: NFKC, case-folded, hyphenation and quote marks unified, one-spaced."""
    t = unicodedata.normalize("NFKC", text).replace(_SOFT_HYPHEN, "")
    t = _LINE_BREAK_HYPHEN.sub(r"\1\2", t)
    t = _DASHES.sub(" ", t).translate(_QUOTES).casefold()
    return " ".join(t.split())


def quote_key(quote: str) -> str:
    """The normalised quote with the punctuation at its ends dropped (a model closes a quote with its own period)."""
    return _EDGE.sub("", normalise(quote))


def too_short(quote: str, statement: str = "") -> bool:
    """Whether ``quote`` is too short to ground ``statement`` (fewer than :data:`MIN_QUOTE_WORDS` words, unless the
    statement itself is that short)."""
    words = len(quote_key(quote).split())
    return words < min(MIN_QUOTE_WORDS, max(1, len(quote_key(statement).split()) if statement else MIN_QUOTE_WORDS))


class QuoteFinder:
    """Finds a quote in a fixed list of passage texts (a section's sources), normalising each passage once."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = [f" {normalise(t)} " for t in texts]

    def find(self, quote: str, among: Sequence[int] | None = None) -> int | None:
        """The position (0-based) of the first passage, of ``among`` (positions) or all, that contains ``quote``."""
        key = quote_key(quote)
        if not key:
            return None
        for i in among if among is not None else range(len(self._texts)):
            if 0 <= i < len(self._texts) and key in self._texts[i]:
                return i
        return None


def quote_span(passage: str, quote: str) -> tuple[int, int] | None:
    """The character span of ``passage`` where ``quote`` first occurs (normalised as above), to mark it on a page;
    None when the quote is not in the passage."""
    key = quote_key(quote)
    norm = normalise(passage)
    at = norm.find(key) if key else -1
    if at < 0:
        return None
    start = _prefix_reaching(passage, at + 1) - 1
    end = _prefix_reaching(passage, at + len(key))
    return (start, end) if 0 <= start < end else None


def quote_context(passage: str, quote: str) -> str | None:
    """The whole sentences of ``passage`` that ``quote`` falls in: what a judge reads a quoted statement against
    (short enough for a small checker, and the quote's qualifiers with it). None when the quote is not there."""
    span = quote_span(passage, quote)
    if span is None:
        return None
    a, b = span
    out, at = [], 0
    for sent in sentences(passage):
        start = passage.find(sent, at)
        if start < 0:  # the splitter joined or trimmed: fall back to the quote alone
            return passage[a:b]
        end = at = start + len(sent)
        if end > a and start < b:
            out.append(sent)
    return " ".join(out) or passage[a:b]


def _prefix_reaching(passage: str, target: int) -> int:
    """The length of the shortest prefix of ``passage`` whose normalised form has ``target`` characters or more."""
    lo, hi = 0, len(passage)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(normalise(passage[:mid])) < target:
            lo = mid + 1
        else:
            hi = mid
    return lo
