"""Which source sentences the extractive generator may state: answers, not study designs or cut-off snippets."""

from __future__ import annotations

import pytest

from pipeline.generate.extractive import answerable_sentence


@pytest.mark.parametrize(
    ("text", "complete", "out"),
    [
        ("Methods: A secondary analysis of one-hundred-sixty-seven patients was done.", True, None),
        ("BACKGROUND: Colorectal cancer is common in older adults worldwide.", True, None),
        ("Objective: To assess whether FOLFOX improves survival in stage III disease.", False, None),
        (
            "Results: EGFR mutations were detected in the serum samples of 11 patients.",
            True,
            "EGFR mutations were detected in the serum samples of 11 patients.",
        ),
        (
            "CONCLUSIONS: Chemotherapy reduced recurrence by a third.",
            True,
            "Chemotherapy reduced recurrence by a third.",
        ),
        ("Hypoalbuminemia can be associated with severe t", True, None),  # a snippet cut mid-word
        (
            "Resection of liver metastases for patients with limited disease",
            False,
            "Resection of liver metastases for patients with limited disease",
        ),
        ("Resection of liver metastases for patients with limited disease", True, None),
        (
            "Adjuvant FOLFOX improves survival in stage III colon cancer (Fig. 2).",
            True,
            "Adjuvant FOLFOX improves survival in stage III colon cancer (Fig. 2).",
        ),
        ("For more information, see the Stage III Colon Cancer section.", False, None),
        ("Surgery is standard.", False, None),  # too short to stand alone
    ],
)
def test_answerable_sentence(text: str, complete: bool, out: str | None) -> None:
    assert answerable_sentence(text, complete=complete) == out
