"""Reciprocal rank fusion, checked against scores worked out by hand: score = sum of 1 / (k + rank)."""

from __future__ import annotations

import pytest

from pipeline.index import rrf

CASES = [
    pytest.param([], 60, [], id="no rankings"),
    pytest.param([[], []], 60, [], id="empty rankings"),
    pytest.param([[7, 3]], 60, [(7, 1 / 61), (3, 1 / 62)], id="one ranking keeps its order"),
    # 1: 1/2 + 1/3 = 0.8333; 3: 1/4 + 1/2 = 0.75; 2: 1/3 only (absent from the second list).
    pytest.param([[1, 2, 3], [3, 1]], 1, [(1, 1 / 2 + 1 / 3), (3, 1 / 4 + 1 / 2), (2, 1 / 3)], id="k=1 two lists"),
    # Same lists, k=60: 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62.
    pytest.param(
        [[1, 2, 3], [3, 1]], 60, [(1, 1 / 61 + 1 / 62), (3, 1 / 63 + 1 / 61), (2, 1 / 62)], id="k=60 two lists"
    ),
    # Agreement beats one first place: 5 is 2nd in both (2/62 = 0.03226) > 9 first in one (1/61 = 0.01639).
    pytest.param(
        [[9, 5, 4], [8, 5, 4]],
        60,
        [(5, 2 / 62), (4, 2 / 63), (8, 1 / 61), (9, 1 / 61)],
        id="agreement beats a single first place",
    ),
    # Mirror-image lists tie on every row (1/61 + 1/62 each): ties fall back to the row id.
    pytest.param([[4, 2], [2, 4]], 60, [(2, 1 / 61 + 1 / 62), (4, 1 / 61 + 1 / 62)], id="ties by row id"),
    # k=1: row 1, second in both lists (1/3 + 1/3), beats rows 0 and 2, each first once (1/2; tie -> row id).
    pytest.param([[0, 1], [2, 1]], 1, [(1, 2 / 3), (0, 1 / 2), (2, 1 / 2)], id="k=1 second twice beats first once"),
    # k=60 flattens ranks: the same lists give 2/62 = 0.0323 to row 1 against 1/61 = 0.0164.
    pytest.param([[0, 1], [2, 1]], 60, [(1, 2 / 62), (0, 1 / 61), (2, 1 / 61)], id="k=60 same lists"),
    # Three retrievers add up: 6 is 1st, 2nd, 3rd (1/11 + 1/12 + 1/13 = 0.2511); 7 is 2nd, 1st, 2nd (0.2576).
    pytest.param(
        [[6, 7], [7, 6], [8, 7, 6]],
        10,
        [(7, 1 / 12 + 1 / 11 + 1 / 12), (6, 1 / 11 + 1 / 12 + 1 / 13), (8, 1 / 11)],
        id="three lists",
    ),
]


@pytest.mark.parametrize(("rankings", "k", "expected"), CASES)
def test_rrf_table(rankings: list[list[int]], k: int, expected: list[tuple[int, float]]) -> None:
    got = rrf(rankings, k=k)
    assert [row for row, _ in got] == [row for row, _ in expected]
    assert [score for _, score in got] == pytest.approx([score for _, score in expected])


def test_rrf_default_k_is_60() -> None:
    assert rrf([[1]]) == [(1, pytest.approx(1 / 61))]
