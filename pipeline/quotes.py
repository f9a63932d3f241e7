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

A quote that is found proves the words exist, not that the statement says what they say: a model quoted "The rate
of pathological complete response was equivalent at 16% in both arms" under "P53 alterations can be used to
predict tumour response". :func:`beyond_quote` reads what a statement says that its quote's sentences do not:
specialised terms (drugs, genes, numbers, acronyms: words outside a general-English vocabulary) they do not hold,
a negation one side has and the other lacks, and the share of its content words they do not hold. A statement
that restates its quote passes; one that adds a term, flips a negation, or is mostly new words does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

from pipeline.text import STOP_WORDS, sentences

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


def title_keys(sources: Sequence[tuple[str, str]]) -> list[str]:
    """The :func:`quote_key` of each source's title that a quote may not be, from ``(title, passage text)`` pairs.

    A paper's title is no finding ("Updated efficacy and toxicity analysis of IROX ..."). But a record with no
    title of its own is named by its first sentence (BioASQ snippets: "Carcinoma en cuirasse is a form of cutaneous
    metastasis"), and that sentence is its passage's words: a title that a passage under it holds (any of the
    pairs with that title: one document's passages) is left out.
    """
    held = {quote_key(title) for title, text in sources if quote_key(title) in normalise(text)}
    return list(dict.fromkeys(key for title, _ in sources if (key := quote_key(title)) and key not in held))


def is_title(quote: str, titles: Sequence[str]) -> bool:
    """Whether ``quote`` is one of ``titles`` (:func:`title_keys`), or most of one: it grounds nothing."""
    key = quote_key(quote)
    return any(t and (key == t or (key in t and len(key) > len(t) // 2)) for t in titles)


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


# --------------------------------------------------------------------------- does a statement stay within its quote?

MAX_UNQUOTED_SHARE = 0.5  # of a statement's content words, at most this share may be missing from its quote's sentences

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.,]\d+)*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|doesn't|don't|didn't|isn't|aren't|wasn't|weren't"
    r"|fails?|failed|lack(?:s|ed)?|absence|absent|unable)\b",
    re.I,
)
# British and American spellings read as one ("tumour" = "tumor", "oesophageal" = "esophageal").
_SPELLING = (
    (re.compile(r"our(s?)$"), r"or\1"),
    # "oedema", "haemoglobin", "foetal"; not "does" or "shoes" (the key must not merge plain English words).
    (re.compile(r"^(?:ae|oe)|(?<=[a-z])(?:ae|oe)(?=[a-z]{2})"), "e"),
    (re.compile("isation"), "ization"),
)


# Words that say who says something ("The guideline states that ...", "The study found ..."): a report of its
# source, not a claim beyond it. "recommends" is not among them: a quote that lists an option recommends nothing.
_ATTRIBUTION = frozenset(
    "guideline guidelines study studies trial trials author authors researcher researchers investigator "
    "investigators review analysis paper article summary source sources state states stated find finds found "
    "show shows showed shown report reports reported note notes noted say says said according".split()
)

# Endings taken off (and what is put back) before a word is looked up in the general vocabulary.
_INFLECTIONS = (("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""))


@dataclass(frozen=True, slots=True)
class Beyond:
    """What a statement says that its quote does not (see :func:`beyond_quote`)."""

    words: int  # the statement's content words, counted with repeats
    missing: int  # of those, how many its quote's sentences do not hold
    unquoted: tuple[str, ...]  # the words missing, once each, as the statement writes them
    terms: tuple[str, ...]  # of those, specialised terms: a drug, gene, number or acronym
    negation: bool  # the statement negates and its quote does not, or the other way round

    @property
    def share(self) -> float:
        return self.missing / self.words if self.words else 0.0

    def within(self, max_share: float = MAX_UNQUOTED_SHARE) -> bool:
        """Whether the statement stays within its quote: no new term, the same polarity, mostly its words."""
        return not self.terms and not self.negation and self.share <= max_share

    def why(self, max_share: float = MAX_UNQUOTED_SHARE) -> str:
        """Why it does not stay within its quote, in words ("" when it does)."""
        if self.terms:
            return "adds " + ", ".join(f'"{t}"' for t in self.terms[:3])
        if self.negation:
            return "negates where its quote does not, or the other way round"
        if self.share > max_share:
            return f"{self.missing} of its {self.words} content words are not in its quote"
        return ""


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def american_spelling(word: str) -> str:
    """``word`` in lower case and American spelling: "Tumours" -> "tumors", "anaemia" -> "anemia", "oesophageal" ->
    "esophageal", "organisation" -> "organization"; "does" and "shoes" stay."""
    w = word.lower()
    for pattern, repl in _SPELLING:
        w = pattern.sub(repl, w)
    return w


def _key(word: str) -> str:
    return str(_stemmer().stemWord(american_spelling(word)))


def _tokens(text: str) -> list[str]:
    t = unicodedata.normalize("NFKC", text).replace(_SOFT_HYPHEN, "")
    return _TOKEN.findall(_DASHES.sub(" ", _LINE_BREAK_HYPHEN.sub(r"\1\2", t)))


def _acronym(token: str) -> str | None:
    """The letters of an acronym ("SLN", "pCR", "BsAbs" -> "sln", "pcr", "bsab"), or None for any other word."""
    if sum(c.isupper() for c in token) < 2 or not token.isalpha():
        return None
    letters = token.lower()
    return letters[:-1] if token.endswith("s") and token[-2:-1].isupper() else letters


def _spelled_out(tokens: Sequence[str], acronyms: Collection[str]) -> set[int]:
    """Positions of ``tokens`` that spell out one of ``acronyms`` by their initials ("sentinel lymph node"),
    with or without the stop words between them ("quality of life" and "quality life" both for QoL)."""
    found: set[int] = set()
    words = [(i, t.lower()) for i, t in enumerate(tokens)]
    for seq in (words, [(i, t) for i, t in words if t not in STOP_WORDS]):
        initials = "".join(t[0] for _, t in seq)
        for a in acronyms:
            at = initials.find(a) if len(a) >= 2 else -1
            while at >= 0:
                found.update(i for i, _ in seq[at : at + len(a)])
                at = initials.find(a, at + 1)
    return found


def _is_term(token: str, common: Collection[str]) -> bool:
    """A specialised term: holds a digit, is an acronym, or is not a word of the general-English ``common``."""
    if any(c.isdigit() for c in token) or _acronym(token) is not None:
        return True
    w = token.lower()
    forms = {w, f"{w}s", f"{w}es"}  # the vocabulary may hold only the plural ("guidelines", not "guideline")
    forms |= {w[: -len(end)] + add for end, add in _INFLECTIONS if w.endswith(end) and len(w) > len(end) + 2}
    return forms.isdisjoint(common)


def beyond_quote(statement: str, context: str, quote: str, common: Collection[str]) -> Beyond:
    """What ``statement`` says that its ``quote`` does not.

    ``context`` is what the quote is read in: the whole sentences it falls in, with its source's title and heading
    (:func:`pipeline.types.quoted_evidence`). Words are compared stemmed, British and American spellings as one; an
    acronym and its spelled-out words match either way round ("SLN" in the quote, "sentinel lymph node" in the
    statement). ``common`` is a general-English vocabulary (lower case): a word outside it is a specialised term,
    and one the quote's sentences do not hold is new content, whatever share of the statement it is. Negation is
    compared with the quote itself: the words restated, not the rest of their sentence.
    """
    said = _tokens(statement)
    source = _tokens(context)
    held = {_key(t) for t in source}
    spelled = _spelled_out(said, {a for t in source if (a := _acronym(t))})
    initials = "".join(t[0].lower() for t in source)
    source_initials = {initials[i : i + n] for n in range(2, 6) for i in range(len(initials))}
    words = missing = 0
    new: list[str] = []
    terms: list[str] = []
    for i, t in enumerate(said):
        if t.lower() in STOP_WORDS or t.lower() in _ATTRIBUTION or (len(t) < 2 and not t.isdigit()):
            continue
        words += 1
        if _key(t) in held or i in spelled or ((a := _acronym(t)) is not None and a in source_initials):
            continue
        missing += 1
        if t not in new:
            new.append(t)
            if _is_term(t, common):
                terms.append(t)
    negation = bool(_NEGATION.search(statement)) != bool(_NEGATION.search(quote))
    return Beyond(words, missing, tuple(new), tuple(terms), negation)


def wordpiece_words(vocab_file: str) -> frozenset[str]:
    """The whole words (alphabetic, lower case) of a WordPiece ``vocab.txt``: a general-English vocabulary, as
    :func:`beyond_quote` takes it (the bundled MiniLM's: 30,522 entries from Wikipedia and books)."""
    with open(vocab_file, encoding="utf-8") as f:
        return frozenset(w for w in (line.strip() for line in f) if w.isalpha() and w.islower())
