"""The lexical judge: share of the claim's content words found in the passage, with number and negation checks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import Stemmer

from pipeline.judge.base import Pair

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
# Quantities only: digits inside names (COVID-19, IL-6, SARS-CoV-2, Covid19) are not numbers to check.
_NUMBER = re.compile(r"(?<![A-Za-z])(?<![A-Za-z]-)\b\d+(?:[.,]\d+)?\b(?!-?[A-Za-z])")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|doesn't|don't|didn't|isn't|aren't|wasn't|weren't"
    r"|fails?|failed|lack(?:s|ed)?|absence)\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_STOP = frozenset(
    (
        "a an the of in on at to for from by with and or as is are was were be been being this that these those it "
        "its their there which who whom whose what when where how than then also may can could should would will "
        "shall do does did has have had such into over under about between during after before more most less other "
        "some any each all"
    ).split()
)


def _stem(words: list[str]) -> list[str]:
    return list(Stemmer.Stemmer("english").stemWords(words))


def _content(text: str) -> list[str]:
    return _stem([t for t in _TOKEN.findall(text.lower()) if t not in _STOP and len(t) > 1])


class LexicalJudge:
    """Token overlap with number and negation checks; fast, transparent, no model."""

    name = "lexical"

    def __init__(self, threshold: float = 0.6, number_penalty: float = 0.5, negation_penalty: float = 0.5) -> None:
        self.threshold = threshold
        self.number_penalty = number_penalty
        self.negation_penalty = negation_penalty

    def fingerprint(self) -> str:
        return f"lexical-v2:{self.number_penalty}:{self.negation_penalty}"

    def score_one(self, claim: str, passage: str) -> float:
        c = _content(claim)
        if not c:
            return 0.0
        p = set(_content(passage))
        s = sum(1 for t in c if t in p) / len(c)
        numbers = {n.replace(",", "") for n in _NUMBER.findall(claim)}
        passage_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
        if numbers - passage_numbers:
            s *= self.number_penalty
        # Negation is compared with the passage sentences that best match the claim, not the whole passage:
        # a passage that says "not" somewhere else does not contradict the claim.
        sents = [x for x in _SENTENCE.split(passage) if x.strip()] or [passage]
        windows = sents + [f"{a} {b}" for a, b in zip(sents, sents[1:], strict=False)]
        cset = set(c)
        best = max(windows, key=lambda w: (len(cset & set(_content(w))), -len(w)))
        if bool(_NEGATION.search(claim)) != bool(_NEGATION.search(best)):
            s *= self.negation_penalty
        return s

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return np.array([self.score_one(c, p) for c, p in pairs], dtype=np.float32)
