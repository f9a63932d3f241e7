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


# A statement that opens by pointing at what the model was shown ("The text states that ...", "According to the
# passage, ..."): the reader never saw "the text", and the citation already says where the words come from.
_PREAMBLE = re.compile(
    r"^\s*(?:"
    r"(?:the|this)\s+(?:provided\s+|given\s+|above\s+|cited\s+)?"
    r"(?:text|passage|source|excerpt|snippet|context|document|information|abstract)s?\s+(?:provided\s+)?"
    r"(?:clearly\s+|also\s+|further\s+)?"
    r"(?:states?|says?|mentions?|notes?|indicates?|explains?|reports?|highlights?|emphasi[sz]es?)\s+(?:that\s+)?"
    r"|(?:according\s+to|as\s+(?:stated|mentioned|noted)\s+in|based\s+on)\s+the\s+(?:provided\s+|given\s+)?"
    r"(?:text|passage|source|excerpt|snippet|context|document|information|abstract)s?\s*,\s*"
    r")",
    re.I,
)


def without_preamble(statement: str) -> str:
    """``statement`` without an opening that points at the model's input: "The text states that FOLFOX is used."
    -> "FOLFOX is used."; "According to the passage, X" -> "X". A statement that is nothing but the preamble, or
    one about a named source ("The guideline recommends ...", "The study found ..."), is left as it is."""
    m = _PREAMBLE.match(statement)
    if m is None:
        return statement
    rest = statement[m.end() :].lstrip()
    if len(rest.split()) < 3:
        return statement
    first = rest.split()[0]
    if first[0].isupper() or any(c.isupper() or c.isdigit() for c in first[1:]):  # "pCR", "mRNA", "eGFR", "p53"
        return rest
    return rest[0].upper() + rest[1:]
