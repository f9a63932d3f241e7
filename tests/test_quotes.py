"""Quotes: how they are compared, where they are found, and what happens to a statement whose quote is not there."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pipeline import Settings
from pipeline.answer import BEYOND_MARK, QUOTE_MARK, ask, by_section, grounded_heading, select_sources
from pipeline.embed import common_words
from pipeline.generate import LLMGenerator, section_schema
from pipeline.generate.base import SectionRequest, Source
from pipeline.generate.llm import MAX_CHOICE_WORDS, MAX_CHOICES, best_quote_choices, quote_choices
from pipeline.quotes import QuoteFinder, beyond_quote, normalise, quote_key, quote_span, title_keys, too_short
from pipeline.render import to_html, to_markdown
from pipeline.text import without_preamble
from pipeline.types import Block, Chunk, Document, Hit, Statement, from_dict, to_dict
from tests.fakes import ScriptedBackend, hashed_index

LOCAL = "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions."
SYSTEMIC = "FOLFOX chemotherapy treats metastatic colorectal cancer."
Q = "What is the treatment for oligoprogressive colorectal cancer?"


# --------------------------------------------------------------------------- comparing


@pytest.mark.parametrize(
    ("passage", "quote"),
    [
        ("Adjuvant FOLFOX is the stan-\ndard of care.", "FOLFOX is the standard of care"),  # line-end hyphenation
        ("first\u2011line therapy with FOLFOX", "First-line therapy with FOLFOX"),  # hyphen variants, case
        ("first-line therapy with FOLFOX", "first line therapy with FOLFOX"),
        ("the \ufb01rst option\u00a0is  surgery", "the first option is surgery"),  # ligature, no-break space
        ("patients\u2019 \u201cbest\u201d outcome here", 'patients\' "best" outcome here'),  # quotation marks
        ("co\u00adlorectal cancer is common", "colorectal cancer is common."),  # soft hyphen; the model's period
    ],
)
def test_a_quote_is_found_through_case_spacing_hyphenation_and_unicode(passage: str, quote: str) -> None:
    assert QuoteFinder([passage]).find(quote) == 0
    span = quote_span(passage, quote)
    assert span is not None and quote_key(passage[span[0] : span[1]]) == quote_key(quote)


@pytest.mark.parametrize(
    "quote",
    [
        "FOLFOX is the preferred standard of care",  # a word added
        "FOLFOX is standard of care",  # a word left out
        "FOLFIRI is the standard of care",  # one letter changed
        "",
        " ... ",
    ],
)
def test_no_fuzzy_matching_beyond_normalisation(quote: str) -> None:
    assert QuoteFinder(["Adjuvant FOLFOX is the standard of care."]).find(quote) is None
    assert quote_span("Adjuvant FOLFOX is the standard of care.", quote) is None


def test_word_boundaries_and_where_to_look() -> None:
    finder = QuoteFinder(["Surgery for stage II disease.", "FOLFOX for stage III disease."])
    assert finder.find("for stage III disease") == 1
    assert finder.find("for stage III disease", among=[0]) is None
    assert finder.find("for stage III disease", among=[5, 1]) == 1, "positions out of range are skipped"
    assert normalise("A  B\nc") == "a b c"


def test_a_quote_must_be_long_enough_to_ground_its_statement() -> None:
    assert too_short("colorectal cancer", "Local therapy treats colorectal cancer in most patients.")
    assert not too_short("local therapy treats colorectal cancer", "Local therapy treats it.")
    assert not too_short("Surgery.", "Surgery."), "a statement as short as its quote"


# --------------------------------------------------------------------------- what a statement says beyond its quote

# Statements the bundled model wrote on the validity set (runs of issue 15), each with the quote it gave, which was
# found in the passage it cited. The first three say what their quote does not.
P53_QUOTE = (
    "The rate of pathological complete response was equivalent at 16% in both arms "
    "(odds ratio, 0.98; 95% CI, 0.66–1.44; P =.904)."
)
FERTILITY_QUOTE = "Omission of radiation is beneficial for patients desiring to preserve fertility."
ANTIBODY_QUOTE = (
    "Therefore, when developing anti-tumor therapeutic antibodies, including single-targeted antibodies, "
    "bi-specific antibodies (BsAbs), and antibody-drug conjugates (ADCs), many factors, such as target biology, "
    "cellular distribution of the targets, the environments of particular tumor types, as well as the proposed "
    "mechanism of action (MOA), must be taken into consideration."
)
FROZEN_QUOTE = (
    "Conclusions: In breast cancer patients having SLN biopsy, the failure of routine intraoperative FS is "
    "largely the failure to detect micrometastatic disease."
)


@pytest.mark.parametrize(
    ("statement", "quote", "why"),
    [
        (
            "P53 alterations can be used to predict tumour response to pre-operative chemo-radiotherapy in "
            "locally advanced rectal cancer.",
            P53_QUOTE,
            'adds "P53"',
        ),
        (
            "The omission of radiation therapy was possible in select patients without compromising oncologic "
            "outcomes based on a noninferiority study design.",
            FERTILITY_QUOTE,
            'adds "oncologic"',
        ),
        (
            "Single-targeted antibodies are available, including anti-TROP2 antibodies, bi-specific antibodies "
            "(BsAbs), and antibody-drug conjugates (ADCs).",
            ANTIBODY_QUOTE,
            'adds "TROP2"',
        ),
        (
            "FOLFOX is not recommended for stage III colon cancer.",
            "FOLFOX is recommended for stage III colon cancer",
            "negates",
        ),
        ("FOLFIRI is preferred in 40% of patients.", "FOLFIRI is preferred for most patients", 'adds "40"'),
        (
            "Bevacizumab improves survival in metastatic disease.",
            "Capecitabine improves survival in metastatic disease",
            'adds "Bevacizumab"',
        ),
        (
            "Patients should rest, walk and sleep and eat well daily.",
            "Patients should rest",
            "content words are not in",
        ),
    ],
)
def test_a_statement_that_says_more_than_its_quote_is_caught(statement: str, quote: str, why: str) -> None:
    b = beyond_quote(statement, quote, quote, common_words())
    assert not b.within() and why in b.why(), b


@pytest.mark.parametrize(
    ("statement", "quote"),
    [
        (
            "The failure of routine intraoperative frozen-section examination of sentinel lymph nodes in breast "
            "cancer is largely the failure to detect micrometastatic disease.",
            FROZEN_QUOTE,
        ),  # acronyms spelled out
        ("Tumours shrank in oesophageal cancer.", "Tumors shrank in esophageal cancer"),  # British and American
        ("pCR was the same in both arms.", "pathological complete response was the same in both arms"),
        ("No significant differences in local failure were seen.", "No significant differences in local failure"),
        ("FOLFIRI is preferred for patients treated with irinotecan.", "when irinotecan is used, FOLFIRI is preferred"),
        (  # who says it is no claim beyond the quote; "guideline" is in the vocabulary only as "guidelines"
            "The guideline states that axillary node status remains the most important predictor of outcome.",
            "Axillary node status remains the most important predictor of outcome in patients with breast cancer.",
        ),
        ("The study found no difference in local failure.", "No difference in local failure"),
    ],
)
def test_a_statement_that_restates_its_quote_passes(statement: str, quote: str) -> None:
    b = beyond_quote(statement, quote, quote, common_words())
    assert b.within(), (b, b.why())


def test_a_verbatim_statement_is_always_within_its_quote() -> None:
    for quote in (P53_QUOTE, FERTILITY_QUOTE, ANTIBODY_QUOTE, FROZEN_QUOTE, LOCAL, SYSTEMIC):
        b = beyond_quote(quote, quote, quote, common_words())
        assert b.within() and b.missing == 0 and not b.why()


def test_the_context_around_a_quote_counts_but_negation_is_read_in_the_quote() -> None:
    context = "In stage III colon cancer, adjuvant FOLFOX is recommended. It is not given to frail patients."
    b = beyond_quote(
        "Adjuvant FOLFOX is recommended in stage III colon cancer.", context, "FOLFOX is recommended", common_words()
    )
    assert b.within(), b
    b = beyond_quote("FOLFOX is not recommended.", context, "FOLFOX is recommended", common_words())
    assert b.negation and not b.within()


# --------------------------------------------------------------------------- in answers


def _docs() -> list[Document]:
    return [
        Document(
            id="g-colon",
            kind="guideline",
            title="Colon cancer treatment",
            source="NCI",
            year=2025,
            blocks=(Block(LOCAL, heading="Local therapy"),),
        ),
        Document(
            id="g-meta",
            kind="guideline",
            title="Metastatic colorectal cancer",
            source="NCI",
            year=2025,
            blocks=(Block(SYSTEMIC, heading="Systemic therapy"),),
        ),
        Document(
            id="pmid:1",
            kind="research",
            title="SBRT trial",
            pmid="1",
            blocks=(Block("Radiotherapy of oligoprogressive colorectal cancer sites delayed a change of therapy."),),
        ),
    ]


def _settings(**answer: object) -> Settings:
    base = {"min_relevance": 0.0, "min_source_score": -1.0, "k_guideline": 2, "k_research": 1}
    return Settings.preset("test", answer=base | answer)


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), _settings(), splitter)


def _number_of(backend: ScriptedBackend, title: str) -> int:
    shown = backend.calls[0][0][1]["content"]
    return next(int(line[1]) for line in shown.splitlines() if line.startswith("[") and f"] {title} (" in line)


def _ask(index, points: list[dict[str, object]], **answer: object):  # type: ignore[no-untyped-def]
    guideline = json.dumps({"lead": points[:1], "groups": [{"heading": "Therapy", "points": points[1:]}]})
    research = json.dumps({"groups": [{"heading": "", "points": [{"text": "No quote.", "cite": [1]}]}]})
    backend = ScriptedBackend([guideline, research, json.dumps({"questions": []})])
    answer_ = ask(Q, index, generator=LLMGenerator(backend, name="s"), settings=_settings(**answer))
    return answer_, backend


def test_quotes_keep_move_or_drop_a_statement(index) -> None:  # type: ignore[no-untyped-def]
    # Which local number each guideline got depends on retrieval: cite both ways round and look at the result.
    points = [
        {"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [1]},
        {"text": "FOLFOX treats metastatic disease.", "quote": "FOLFOX chemotherapy treats metastatic", "cite": [1]},
        {"text": "FOLFIRI is preferred.", "quote": "FOLFIRI is preferred for all patients", "cite": [2]},
        {"text": "Surgery helps.", "quote": "cancer", "cite": [2]},  # too short to ground anything
        {"text": "Colon cancer treatment.", "quote": "Colon cancer treatment", "cite": [1]},  # a title, no finding
        {"text": "It works.", "cite": [1]},  # no quote at all
    ]
    answer, backend = _ask(index, points)
    g = answer.sections[0]
    shown = [st for grp in g.groups for st in grp.items]
    assert [st.text for st in shown] == [
        "Stereotactic radiotherapy treats oligoprogressive lesions.",
        "FOLFOX treats metastatic disease.",
    ]
    refs = {r.n: r for r in answer.references}
    for st in shown:  # each kept statement cites the sources whose words it quotes, whatever number it gave
        assert all(QuoteFinder([p.text for p in refs[n].passages]).find(st.quote) is not None for n in st.citations)
    assert refs[shown[0].citations[0]].title == "Colon cancer treatment"
    assert refs[shown[1].citations[0]].title == "Metastatic colorectal cancer"
    moved = 1 if _number_of(backend, "Colon cancer treatment") == 1 else 0
    s = answer.stats
    assert s["quotes_found"] == 2 - moved and s.get("quotes_moved", 0) == moved
    assert s["quotes_not_found"] == 3 + 1, "three guideline statements and the research one"
    assert s["quotes_of_titles"] == 1
    assert answer.sections[1].abstained, "a section whose every quote is missing says nothing"
    assert shown[0].quote == LOCAL


def test_a_statement_cites_only_the_passages_that_hold_its_quote(index) -> None:  # type: ignore[no-untyped-def]
    # The RAS follow-up's research statement cited [5, 3, 4] for words only [3] held.
    points = [{"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [2, 1]}]
    answer, _ = _ask(index, points)
    lead = answer.sections[0].groups[0].items[0]
    refs = {r.n: r for r in answer.references}
    assert len(lead.citations) == 1 and refs[lead.citations[0]].title == "Colon cancer treatment"
    assert answer.stats["citations_without_quote_dropped"] == 1 and answer.stats["quotes_found"] >= 1
    assert all(QuoteFinder([p.text for p in refs[n].passages]).find(LOCAL) is not None for n in lead.citations)


def test_mark_keeps_a_statement_whose_quote_is_missing_and_says_so(index) -> None:  # type: ignore[no-untyped-def]
    points = [{"text": "FOLFIRI is preferred.", "quote": "FOLFIRI is preferred for all patients", "cite": [1]}]
    answer, _ = _ask(index, points, uncited="mark")
    lead = answer.sections[0].groups[0].items[0]
    assert lead.text == f"FOLFIRI is preferred. {QUOTE_MARK}" and lead.quote == "" and lead.citations
    assert answer.stats["quotes_not_found"] >= 1


def test_a_found_quote_that_does_not_carry_its_statement_gives_way_to_its_sentence(index) -> None:  # type: ignore[no-untyped-def]
    said = {"text": "Capecitabine treats oligoprogressive colorectal cancer lesions.", "quote": LOCAL, "cite": [1, 2]}
    answer, _ = _ask(index, [said])
    shown = [st for grp in answer.sections[0].groups for st in grp.items]
    assert [st.text for st in shown] == [LOCAL], "what the source says, in its words, not the drug the model added"
    assert shown[0].quote and shown[0].citations and answer.stats["beyond_quote_restated"] == 1
    assert "beyond_quote_dropped" not in answer.stats


def test_a_found_quote_that_does_not_carry_its_statement_drops_or_marks_it(index) -> None:  # type: ignore[no-untyped-def]
    points = [
        {"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [1, 2]},
        {"text": "Capecitabine treats oligoprogressive colorectal cancer lesions.", "quote": LOCAL, "cite": [1, 2]},
    ]
    answer, _ = _ask(index, points, overreach="uncited")
    shown = [st.text for grp in answer.sections[0].groups for st in grp.items]
    assert shown == ["Stereotactic radiotherapy treats oligoprogressive lesions."]
    assert (
        answer.stats["beyond_quote_dropped"] == 1
        and answer.stats["quotes_found"] + answer.stats.get("quotes_moved", 0) == 2
    )
    marked, _ = _ask(index, points, uncited="mark", overreach="uncited")
    texts = [st.text for grp in marked.sections[0].groups for st in grp.items]
    assert texts[1] == f"Capecitabine treats oligoprogressive colorectal cancer lesions. {BEYOND_MARK}"
    assert marked.stats["beyond_quote_marked"] == 1
    restated, _ = _ask(index, points)  # by default the second gives way to its quote's sentence: the first's again
    assert restated.stats["beyond_quote_restated"] == 1 and restated.stats["repeats_dropped"] == 1
    found_only, _ = _ask(index, points, quotes="found")
    # Not read against its quote, the second statement passes that check, and is then a repeat of the first's quote.
    assert "beyond_quote_dropped" not in found_only.stats and found_only.stats["repeats_dropped"] == 1


def test_quotes_off_trusts_the_citations(index) -> None:  # type: ignore[no-untyped-def]
    answer, _ = _ask(
        index, [{"text": "FOLFIRI is preferred.", "quote": "not there at all really", "cite": [1]}], quotes="off"
    )
    assert answer.sections[0].groups[0].items[0].text == "FOLFIRI is preferred."
    assert "quotes_not_found" not in answer.stats


def test_extractive_statements_are_their_own_quotes_and_every_face_shows_them(index) -> None:  # type: ignore[no-untyped-def]
    answer = ask(Q, index, generator="extractive", settings=_settings())
    items = [st for s in answer.sections for g in s.groups for st in g.items if not st.text.startswith("The indexed")]
    assert items and all(st.quote for st in items), items
    assert answer.stats.get("quotes_not_found", 0) == 0 and answer.stats["quotes_found"] == len(items)
    d = to_dict(answer)
    assert d["sections"][0]["blocks"][0]["items"][0]["quote"] == items[0].quote
    assert from_dict(json.loads(json.dumps(d))) == answer
    md = to_markdown(answer)
    assert f'"{items[0].quote}"' in md.split("## References", 1)[1], "Markdown lists the quoted words"
    page = to_html(answer)
    assert "<mark>" in page, "the revealed passage marks the quoted words"


# --------------------------------------------------------------------------- quotes chosen from the sources' sentences


def _source(n: int, text: str, title: str = "A guideline") -> Source:
    doc = Document(id=f"d{n}", kind="guideline", title=title, blocks=(Block(text),))
    chunk = Chunk(id=f"d{n}:0", doc_id=doc.id, kind="guideline", text=text)
    return Source(n, Hit(rank=n, score=1.0, chunk=chunk, document=doc))


def test_quote_choices_are_the_sources_sentences_each_once() -> None:
    long = "Word " + " ".join(f"w{i}" for i in range(54)) + "."
    sources = [
        _source(1, f"A guideline. FOLFOX is the standard of care. Too short here. {long}"),
        _source(
            2, "FOLFOX is the standard of care. Capecitabine may replace infusional fluorouracil in most patients."
        ),
    ]
    choices = quote_choices(sources)
    assert choices == [
        "FOLFOX is the standard of care.",
        " ".join(long.split()[:MAX_CHOICE_WORDS]),  # a long sentence: its first 40 words, still a span of it
        "Capecitabine may replace infusional fluorouracil in most patients.",
    ], "the title, short pieces and a repeat are not offered"
    finder = QuoteFinder([s.hit.chunk.text for s in sources])
    assert all(finder.find(c, [0, 1]) is not None for c in choices), "every choice is found where it came from"


def test_a_record_named_by_its_own_first_sentence_can_be_quoted() -> None:
    own = "Carcinoma en cuirasse is a form of cutaneous metastasis"  # a BioASQ snippet with no title of its own
    assert title_keys([(own, own), ("Updated analysis of IROX", "IROX was well tolerated in most patients.")]) == [
        "updated analysis of irox"
    ]
    assert quote_choices([_source(1, own + ".", title=own)]) == [own + "."]
    # Two passages of one such record: the one that does not begin with the sentence does not make it a title.
    assert title_keys([(own, own), (own, "Skin biopsy confirmed the diagnosis in all cases.")]) == []


def test_quote_choices_carry_no_character_that_breaks_llama_cpp_python_s_grammar() -> None:
    quoted = 'TBC1D16 expression was categorized as "high expression" in most tumours.'
    sources = [_source(1, f"{quoted} A path C:\\data\\x was used by the authors here.")]
    choices = quote_choices(sources)
    assert choices == ["TBC1D16 expression was categorized as \u201dhigh expression\u201d in most tumours."]
    assert QuoteFinder([sources[0].hit.chunk.text]).find(choices[0], [0]) is not None, "and it is still found"


def test_the_schema_offers_only_the_choices_and_asks_for_the_quote_first() -> None:
    free = section_schema("guideline", 2)
    point = free["properties"]["lead"]["items"]
    assert list(point["properties"]) == ["quote", "text", "cite"] and "enum" not in point["properties"]["quote"]
    chosen = section_schema("guideline", 2, ["FOLFOX is the standard of care."])
    for point in (
        chosen["properties"]["lead"]["items"],
        chosen["properties"]["groups"]["items"]["properties"]["points"]["items"],
    ):
        assert point["properties"]["quote"]["enum"] == ["FOLFOX is the standard of care."]
        assert point["required"][0] == "quote"


def test_the_llm_generator_sends_the_choices_unless_quotes_are_free(index) -> None:  # type: ignore[no-untyped-def]
    for mode, offered in (("sentences", True), ("free", False)):
        backend = ScriptedBackend([json.dumps({"lead": [], "groups": []}), json.dumps({"groups": []})])
        ask(Q, index, generator=LLMGenerator(backend, name="s", quotes=mode), settings=_settings())  # type: ignore[arg-type]
        point = backend.calls[0][1]["properties"]["lead"]["items"]  # type: ignore[index]
        enum = point["properties"]["quote"].get("enum")
        assert (enum is not None) == offered
        if offered:
            assert "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions." in enum


def test_a_statement_said_or_quoted_twice_in_a_section_is_shown_once(index) -> None:  # type: ignore[no-untyped-def]
    points = [
        {"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [1, 2]},
        {"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [1, 2]},
        {"text": "Radiotherapy treats oligoprogressive colorectal cancer lesions.", "quote": LOCAL, "cite": [1, 2]},
    ]
    answer, _ = _ask(index, points)
    shown = [st.text for grp in answer.sections[0].groups for st in grp.items]
    assert shown == ["Stereotactic radiotherapy treats oligoprogressive lesions."]
    assert answer.stats["repeats_dropped"] == 2
    cited = {n for sec in answer.sections for grp in sec.groups for st in grp.items for n in st.citations}
    assert cited == set(range(1, len(answer.references) + 1)), "no reference is left behind by a repeat"


def test_a_heading_that_names_what_its_statement_does_not_gives_way_to_the_source_heading(index) -> None:  # type: ignore[no-untyped-def]
    systemic = {"text": "FOLFOX chemotherapy treats metastatic colorectal cancer.", "quote": SYSTEMIC, "cite": [1, 2]}
    local = {"text": "Stereotactic radiotherapy treats oligoprogressive lesions.", "quote": LOCAL, "cite": [1]}
    guideline = {  # the bundled model's heading in turn 2 of the RAS follow-up
        "lead": [systemic],
        "groups": [{"heading": "Response to CAPOX in RAS-mutant CRC", "points": [local]}],
    }
    research_quote = "Radiotherapy of oligoprogressive colorectal cancer sites delayed a change of therapy."
    research = {
        "groups": [
            {
                "heading": "Survival in KRAS-mutant tumours",
                "points": [{"text": "Radiotherapy delayed a change of therapy.", "quote": research_quote, "cite": [1]}],
            }
        ]
    }
    backend = ScriptedBackend([json.dumps(guideline), json.dumps(research), json.dumps({"questions": []})])
    answer = ask(Q, index, generator=LLMGenerator(backend, name="s"), settings=_settings())
    g, r = answer.sections
    assert [grp.heading for grp in g.groups] == [None, "Local therapy"]
    assert [grp.heading for grp in r.groups] == [None] and r.groups[0].items[-1].quote == research_quote
    assert answer.stats["headings_replaced"] == 2


def test_a_heading_is_kept_when_it_says_what_its_statement_or_passage_says() -> None:
    doc = Document(id="g1", kind="guideline", title="Colon cancer treatment", blocks=(Block(SYSTEMIC),))
    heading = "Treatment of Stage IV Colon Cancer > Systemic therapy"
    chunk = Chunk(id="g1:0", doc_id=doc.id, kind="guideline", text=SYSTEMIC, heading=heading)
    sources = [Source(1, Hit(rank=1, score=1.0, chunk=chunk, document=doc))]
    st = Statement("FOLFOX chemotherapy treats metastatic colorectal cancer.", (1,), (chunk.id,), SYSTEMIC)
    # "Treatment" is in the passage's heading path: the seed answer's "Treatment Options" stood over an incidence
    # sentence whose heading path was "General Information About Colon Cancer > Incidence and Mortality".
    for kept in ("Stage IV disease", "FOLFOX", "Metastatic colorectal cancer", "Chemotherapy", "Treatment Options"):
        assert grounded_heading(kept, st, sources, "guideline") == kept
    for replaced in ("Surgical Options", "RAS-mutant tumours", "Chemotherapy in KRAS G12C"):
        assert grounded_heading(replaced, st, sources, "guideline") == "Systemic therapy"
        assert grounded_heading(replaced, st, sources, "research") is None


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("The text states that colorectal cancer affects men and women almost equally.", "Colorectal cancer affects"),
        ("The provided passage clearly indicates that FOLFOX is used after resection.", "FOLFOX is used after"),
        ("According to the passage, adjuvant CAPOX lasts three months.", "Adjuvant CAPOX lasts three"),
        ("The text mentions pCR rates of 16% in both arms.", "pCR rates of 16%"),  # its case kept
        ("The guideline recommends surgery for resectable metastases.", "The guideline recommends"),  # a named source
        ("The study found no difference in local failure.", "The study found"),
        ("The text states that it works.", "The text states that it works."),  # nothing left worth saying
        ("Textbooks state that X is Y in adults.", "Textbooks state"),
    ],
)
def test_an_opening_that_points_at_the_models_input_is_taken_off(said: str, shown: str) -> None:
    assert without_preamble(said).startswith(shown)


def test_a_statement_loses_its_preamble_in_an_answer(index) -> None:  # type: ignore[no-untyped-def]
    points = [
        {
            "text": "The text states that stereotactic radiotherapy treats oligoprogressive lesions.",
            "quote": LOCAL,
            "cite": [1],
        }
    ]
    answer, _ = _ask(index, points)
    assert answer.sections[0].groups[0].items[0].text == "Stereotactic radiotherapy treats oligoprogressive lesions."
    assert answer.stats["preambles_removed"] == 1


def test_with_a_scorer_only_the_sentences_that_best_answer_are_offered() -> None:
    said = [f"Finding number {i} holds for the patients in this cohort." for i in range(1, 16)]
    sources = [_source(1, " ".join(said[:8])), _source(2, " ".join(said[8:]))]
    asked: list[tuple[str, list[str]]] = []

    def scorer(question: str, texts: Sequence[str]) -> np.ndarray:
        asked.append((question, list(texts)))
        return np.array([float(t.split()[2]) % 5 for t in texts])  # 4, 9 and 14 best, then 3, 8, 13 ...

    best = best_quote_choices(Q, sources, scorer, most=4)
    assert best == [said[2], said[3], said[8], said[13]], "the four best (ties by source order), in source order"
    assert asked[0][0] == Q and len(asked[0][1]) == 15
    assert best_quote_choices(Q, sources[:1], scorer, most=8) == said[:8], "no more than that: all, none scored"
    assert len(asked) == 1

    backend = ScriptedBackend([json.dumps({"groups": []})])
    gen = LLMGenerator(backend, name="s").with_scorer(lambda q, texts: scorer(q, texts))
    request = SectionRequest(Q, "research", tuple(sources), "clinician")
    assert list(gen.draft_section(request)) == []
    schema = backend.calls[0][1]
    offered = schema["properties"]["groups"]["items"]["properties"]["points"]["items"]["properties"]["quote"]["enum"]
    assert len(offered) == MAX_CHOICES and set(offered) <= set(said)


def _hit_under(n: int, heading: str, title: str = "Colon Cancer Treatment (PDQ®)") -> Hit:
    doc = Document(id=f"g{n}", kind="guideline", title=title, blocks=(Block("x"),))
    chunk = Chunk(id=f"g{n}:0", doc_id=doc.id, kind="guideline", text=f"passage {n}", heading=heading)
    return Hit(rank=n, score=1.0, chunk=chunk, document=doc)


def test_guideline_passages_are_ordered_by_what_their_section_is_about() -> None:
    hits = [
        _hit_under(1, "General Information About Colon Cancer > Incidence and Mortality"),
        _hit_under(2, "Latest Updates to This Summary (02/12/2025)"),
        _hit_under(3, "Treatment of Stage IV and Recurrent Colon Cancer > Surgery"),
        _hit_under(4, "General Information About Colon Cancer > Risk Factors"),
        _hit_under(5, "Treatment Option Overview > Systemic therapy"),
    ]
    order = [h.rank for h in by_section("What is the treatment for oligoprogressive colorectal cancer?", hits)]
    assert order == [3, 5, 1, 4], "treatment sections first, hybrid order kept; the summary's changes never"
    assert [h.rank for h in by_section("How common is colon cancer?", hits)] == [1, 3, 4, 5]
    # The document title says "Treatment" for every passage of a treatment summary: it decides nothing.
    assert [h.rank for h in by_section("What are the options for managing stage IV disease?", hits[:1])] == [1]


def test_the_seed_question_is_shown_treatment_sections_and_abstention_reads_the_same_cosine(tmp_path, splitter) -> None:  # type: ignore[no-untyped-def]
    docs = [
        Document(
            id="g-colon",
            kind="guideline",
            title="Colon cancer treatment",
            blocks=(
                Block("Colorectal cancer affects men and women almost equally worldwide.", heading="Incidence"),
                Block("Colorectal cancer risk rises with age.", heading="Risk Factors"),
                Block(
                    "Resection of limited metastases is an option for stage IV disease.",
                    heading="Treatment of Stage IV",
                ),
            ),
        )
    ]
    settings = Settings.preset("test", answer={"k_guideline": 1, "min_source_score": -1.0})
    index = hashed_index(tmp_path / "ix", docs, settings, splitter)
    q = "What is the treatment for oligoprogressive colorectal cancer?"
    off = settings.model_copy(update={"answer": settings.answer.model_copy(update={"section_intent": False})})
    before, best_before = select_sources(index, q, "guideline", 1, off)
    after, best_after = select_sources(index, q, "guideline", 1, settings)
    assert [h.chunk.heading for h in after] == ["Treatment of Stage IV"]
    assert best_after == best_before, "abstention reads the first k hybrid hits either way"
    assert [h.chunk.heading for h in before] == ["Incidence"], "the hybrid order led with incidence, as the demo did"
