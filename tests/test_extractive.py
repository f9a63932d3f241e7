"""Which source sentences the extractive generator may state: answers, not study designs or cut-off snippets."""

from __future__ import annotations

import numpy as np
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
        # sentences that only make sense after the one before them
        ("All these findings were replicated in the UK cohort of the study.", True, None),
        ("This phenomenon, termed therapy-associated polyposis, may be acquired.", False, None),
        (
            "On the contrary, pneumococcal vaccination plays a protective role.",
            True,
            None,
        ),  # contradicts a sentence unseen
        ("However, the benefit was not seen in patients older than 70 years.", True, None),
        (
            "In addition, FOLFOX improved disease-free survival at five years.",
            True,
            "In addition, FOLFOX improved disease-free survival at five years.",
        ),
        (
            "Thiopurines are not recommended for this indication in adults.",
            False,
            "Thiopurines are not recommended for this indication in adults.",
        ),
        # reference-list entries of a guideline's bibliography
        (
            "54 Tronvik E, Stovner LJ, Helde G, Sand T, Bovim G. Prophylactic treatment of migraine with an "
            "angiotensin II receptor blocker: a randomized controlled trial.",
            False,
            None,
        ),
        (
            "JAMA 2003;289(1):65-9. 55 Stovner LJ, Linde M, Gravdahl GB, et al. A comparative study of candesartan.",
            False,
            None,
        ),
        (
            "Available from url: https://effectivehealthcare.ahrq.gov/sites/default/files/migraine.pdf today",
            False,
            None,
        ),
        (
            "R Propranolol (80–160 mg daily) is recommended as a first-line prophylactic treatment for migraine.",
            False,
            "R Propranolol (80–160 mg daily) is recommended as a first-line prophylactic treatment for migraine.",
        ),
        (
            "In the MOSAIC trial (Andre T et al.), FOLFOX4 prolonged overall survival in stage III colon cancer.",
            False,
            "In the MOSAIC trial (Andre T et al.), FOLFOX4 prolonged overall survival in stage III colon cancer.",
        ),
        # a translated title in square brackets, as MEDLINE marks one (a llama answer stated it as a finding)
        (
            "[ Capecitabine and Oxaliplatin(CAPOX)plus Bevacizumab as Second-Line Chemotherapy for Metastatic "
            "Colorectal Cancer].",
            True,
            None,
        ),
        (
            "[Corrected] FOLFOX improved disease-free survival at five years in stage III disease.",
            True,
            "[Corrected] FOLFOX improved disease-free survival at five years in stage III disease.",
        ),
        # a patient summary's list items glued together (the RAS follow-up quoted it under "Immunotherapy")
        (
            "immunotherapy (nivolumab or pembrolizumab, or nivolumab and ipilimumab combined) Treatment of cancer "
            "that has spread to the liver may also include: chemotherapy given before surgery to shrink the tumor,",
            False,
            None,
        ),
        # ... but a research finding may open with a drug or gene in lower case
        (
            "nivolumab plus ipilimumab improved overall survival in MSI-high metastatic colorectal cancer.",
            True,
            "nivolumab plus ipilimumab improved overall survival in MSI-high metastatic colorectal cancer.",
        ),
        (
            "p53 mutations predicted a poor response to preoperative chemoradiotherapy in rectal cancer.",
            False,
            "p53 mutations predicted a poor response to preoperative chemoradiotherapy in rectal cancer.",
        ),
    ],
)
def test_answerable_sentence(text: str, complete: bool, out: str | None) -> None:
    assert answerable_sentence(text, complete=complete) == out


def _request(kind: str = "guideline"):  # type: ignore[no-untyped-def]
    from pipeline.generate.base import SectionRequest, Source
    from pipeline.types import Chunk, Document, Hit

    doc = Document(id="g", kind=kind, title="Colon cancer treatment", source="NCI", blocks=())
    text = (
        "Colon cancer is the third most common cancer in the world today. "
        "Resection of liver metastases is offered to patients with limited metastatic disease. "
        "Local ablation of lung metastases is an option when resection is not possible."
    )
    chunk = Chunk(id="g:0", doc_id="g", kind=kind, text=text, heading="Treatment of Stage IV", context="Colon — IV")
    return SectionRequest("How are limited metastases treated?", kind, (Source(1, Hit(1, 1.0, chunk, doc)),))  # type: ignore[arg-type]


def test_a_relevance_scorer_chooses_the_sentences_that_answer_not_those_that_are_near(splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline.generate.extractive import ExtractiveGenerator
    from tests.fakes import HashingEmbedder

    seen: list[tuple[str, list[str]]] = []

    def scorer(question, texts):  # type: ignore[no-untyped-def]
        seen.append((question, list(texts)))
        return np.array([0.9 if "Resection" in t else 0.6 if "ablation" in t else 0.05 for t in texts])

    plain = ExtractiveGenerator(HashingEmbedder(), splitter, min_score=-1.0, margin=2.0)
    scored = plain.with_scorer(scorer)
    assert plain.scorer is None and "relevance" in scored.model and "relevance" not in plain.model
    drafts = list(scored.draft_section(_request()))
    assert drafts[0].heading is None and "Resection of liver metastases" in drafts[0].text  # the lead answers
    assert [d.text for d in drafts[1:]] == [
        "Local ablation of lung metastases is an option when resection is not possible."
    ]
    # Each sentence is read with its passage's context line; the incidence sentence (0.05) is under the floor.
    assert seen[0][0] == "How are limited metastases treated?"
    assert all(t.startswith("Colon — IV\n") for t in seen[0][1])


def test_settings_switch_sentence_choice_by_relevance_on(tmp_path, splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline.answer import AskOptions, prepare
    from pipeline.generate.extractive import ExtractiveGenerator
    from pipeline.settings import Settings
    from tests.fakes import hashed_index
    from tests.test_answer import SETTINGS, _docs

    index = hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)
    off = prepare(AskOptions(generator="extractive", settings=SETTINGS), index)
    assert isinstance(off.generator, ExtractiveGenerator) and off.generator.scorer is None
    on_settings = Settings.preset("test", answer=SETTINGS.answer.model_dump(), rerank={"sentences": True})
    on = prepare(AskOptions(generator="extractive", settings=on_settings), index)
    assert isinstance(on.generator, ExtractiveGenerator) and on.generator.scorer is not None
    assert on.reranker is None, "sentence choice alone does not rerank the passages"


def test_by_relevance_the_best_sentence_is_stated_even_when_every_score_is_low(splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline.generate.extractive import ExtractiveGenerator
    from tests.fakes import HashingEmbedder

    def scorer(question, texts):  # type: ignore[no-untyped-def]
        return np.array([0.1 if "Resection" in t else 0.01 for t in texts])

    gen = ExtractiveGenerator(HashingEmbedder(), splitter, min_score=-1.0, scorer=scorer)
    drafts = list(gen.draft_section(_request()))
    assert len(drafts) == 1 and "Resection of liver metastases" in drafts[0].text


def test_prepare_gives_the_llm_generator_the_sentence_scorer_when_asked(tmp_path, splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline.answer import AskOptions, prepare
    from pipeline.generate import LLMGenerator
    from pipeline.settings import Settings
    from tests.fakes import ScriptedBackend, hashed_index
    from tests.test_answer import SETTINGS, _docs

    index = hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)
    plain = LLMGenerator(ScriptedBackend([]), name="s")
    off = prepare(AskOptions(generator=plain, settings=SETTINGS), index)
    assert isinstance(off.generator, LLMGenerator) and off.generator.scorer is None
    sentences = Settings.preset("test", answer=SETTINGS.answer.model_dump(), rerank={"sentences": True})
    still_off = prepare(AskOptions(generator=plain, settings=sentences), index)
    assert isinstance(still_off.generator, LLMGenerator) and still_off.generator.scorer is None, "its own switch"
    on_settings = Settings.preset("test", answer=SETTINGS.answer.model_dump(), rerank={"quote_choices": True})
    on = prepare(AskOptions(generator=plain, settings=on_settings), index)
    assert isinstance(on.generator, LLMGenerator) and on.generator.scorer is not None and plain.scorer is None
