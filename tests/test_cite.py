from __future__ import annotations

import pytest

from pipeline.cite import parse_citations
from pipeline.render import format_citations


@pytest.mark.parametrize(
    ("text", "n", "clean", "valid", "invalid"),
    [
        ("Surgery is curative [1].", 3, "Surgery is curative.", (1,), ()),
        ("Surgery is curative. [1]", 3, "Surgery is curative.", (1,), ()),
        ("Use FOLFOX [1, 2].", 3, "Use FOLFOX.", (1, 2), ()),
        ("Use FOLFOX [1,2]", 3, "Use FOLFOX", (1, 2), ()),
        ("Use FOLFOX [1][2].", 3, "Use FOLFOX.", (1, 2), ()),
        ("Use FOLFOX [1] [2].", 3, "Use FOLFOX.", (1, 2), ()),
        ("Ranges count [1-3].", 5, "Ranges count.", (1, 2, 3), ()),
        ("En dash ranges [2–4].", 5, "En dash ranges.", (2, 3, 4), ()),
        ("Semicolons [1; 3].", 3, "Semicolons.", (1, 3), ()),
        ("Out of range [7].", 3, "Out of range.", (), (7,)),
        ("Zero is invalid [0].", 3, "Zero is invalid.", (), (0,)),
        ("Mixed [2, 9].", 3, "Mixed.", (2,), (9,)),
        ("Repeated [1] and again [1].", 3, "Repeated and again.", (1,), ()),
        ("No citation at all.", 3, "No citation at all.", (), ()),
        ("Brackets that are not citations [LV] stay.", 3, "Brackets that are not citations [LV] stay.", (), ()),
        ("A huge range [1-999] is two numbers.", 3, "A huge range is two numbers.", (1,), (999,)),
        ("Mid-sentence [2] markers, too.", 3, "Mid-sentence markers, too.", (2,), ()),
    ],
)
def test_parse_citations(text: str, n: int, clean: str, valid: tuple[int, ...], invalid: tuple[int, ...]) -> None:
    p = parse_citations(text, n)
    assert (p.text, p.valid, p.invalid) == (clean, valid, invalid)


def test_structured_numbers_are_checked_like_inline_ones() -> None:
    p = parse_citations("Claim [2].", 3, extra=[2, 3, 4])
    assert (p.valid, p.invalid) == ((2, 3), (4,))


@pytest.mark.parametrize(("numbers", "out"), [((), ""), ((1,), "[1]"), ((1, 2, 5), "[1, 2, 5]")])
def test_format_citations(numbers: tuple[int, ...], out: str) -> None:
    assert format_citations(numbers) == out
