"""Property-based tests (hypothesis) of the citation parser, the renumbering and the answer renderer.

Arbitrary model output never raises, never yields a citation outside 1..n, and what is rendered parses
back to what was rendered from.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline import Settings, build_index, open_index
from pipeline.answer import ask
from pipeline.cite import MARKER, References, parse_citations
from pipeline.generate import LLMGenerator
from pipeline.quotes import QuoteFinder, too_short
from pipeline.render import GUIDELINES_TITLE, RESEARCH_TITLE, format_citations, statement_md, to_html, to_markdown
from pipeline.render import markdown_line as _line
from pipeline.types import (
    Answer,
    Block,
    Chunk,
    Document,
    Group,
    Hit,
    Passage,
    Reference,
    RunInfo,
    Section,
    Statement,
    from_dict,
    to_dict,
)
from tests.fakes import HashingEmbedder, ScriptedBackend
from tests.hostile import assert_answer_structure, assert_safe_html

# MEDCITE_PROPERTY_EXAMPLES=5000 for a longer run than CI's.
SCALE = int(os.environ.get("MEDCITE_PROPERTY_EXAMPLES", "0"))
FAST = settings(max_examples=SCALE or 300, deadline=None, database=None)

# Text that looks like what models write around citations, with the awkward cases mixed in.
_PIECES = st.sampled_from(
    [
        "[1]", "[2]", "[1, 2]", "[1,2]", "[1-3]", "[2–4]", "[1; 3]", "[1 and 2]", "[0]", "[99]", "[1-999]",
        "[[9]1]", "[[1]", "[1]]", "[ 1]", "[1 ]", "[-1]", "[١]", "[" + "9" * 30 + "]", "[]", "[a]", "[LV]",
        ".", ",", " .", " ;", "\n", "\n## Heading\n", "- ", "#", "   ", "\t", "<script>", "&amp;", "\u202e",
        "Surgery is curative", "FOLFOX", "and", "-", "–",
    ]
)  # fmt: skip
MODEL_TEXT = st.one_of(
    st.text(max_size=200), st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=30).map("".join)
)


# --------------------------------------------------------------------------- parser


@FAST
@given(text=MODEL_TEXT, n=st.integers(0, 12), extra=st.lists(st.integers(-5, 10**12), max_size=5))
def test_parse_never_raises_and_sorts_every_number(text: str, n: int, extra: list[int]) -> None:
    p = parse_citations(text, n, extra=extra)
    assert all(1 <= x <= n for x in p.valid) and all(not 1 <= x <= n for x in p.invalid)
    assert set(p.numbers) == set(p.valid) | set(p.invalid) and len(set(p.numbers)) == len(p.numbers)
    assert set(extra) <= set(p.numbers)
    assert "\n" not in p.text and p.text == p.text.strip() and "  " not in p.text
    assert MARKER.search(p.text) is None, "whatever is left that looks like a citation was checked and removed"


@FAST
@given(text=MODEL_TEXT, n=st.integers(1, 12))
def test_render_then_parse_round_trips(text: str, n: int) -> None:
    p = parse_citations(text, n)
    again = parse_citations(f"{p.text} {format_citations(p.valid)}", n)
    assert (again.text, again.valid, again.invalid) == (p.text, p.valid, ())
    # In Markdown a leading "#", ">" or list marker is escaped ("\\#"), so it stays text; the citations are the same.
    md = parse_citations(statement_md(Statement(p.text, p.valid)), n)
    assert (md.text, md.valid, md.invalid) == (_line(p.text), p.valid, ())


def test_parse_is_linear_on_whitespace_and_nesting() -> None:
    import time

    t0 = time.perf_counter()
    parse_citations("a" + " " * 200_000 + "b", 3)
    parse_citations("[" * 50_000 + "1" + "]2" * 50_000, 3)
    parse_citations("[1 " + " , " * 50_000 + "x", 3)
    assert time.perf_counter() - t0 < 2.0  # quadratic before: 7 s for 32,000 spaces


# --------------------------------------------------------------------------- renumbering


def _hit(doc: str, chunk: str, kind: str = "guideline") -> Hit:
    c = Chunk(id=chunk, doc_id=doc, kind=kind, text=f"text of {chunk}")  # type: ignore[arg-type]
    return Hit(rank=1, score=1.0, chunk=c, document=Document(id=doc, kind=kind, title=f"title {doc}"))  # type: ignore[arg-type]


SECTIONS = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3)), min_size=1, max_size=6),  # sources
        st.lists(st.lists(st.integers(-2, 9), max_size=4), max_size=6),  # each statement's cite field
    ),
    min_size=1,
    max_size=3,
)


@FAST
@given(sections=SECTIONS)
def test_renumbering_is_by_first_use_one_per_document(sections) -> None:  # type: ignore[no-untyped-def]
    refs = References()
    written: list[tuple[int, ...]] = []
    cited_docs: dict[int, set[str]] = {}
    for sources, statements in sections:
        hits = [_hit(doc, f"{doc}{k}") for doc, k in sources]
        for cites in statements:
            p = parse_citations("Claim.", len(hits), extra=cites)
            numbers = tuple(dict.fromkeys(refs.number(hits[n - 1]) for n in p.valid))
            written.append(numbers)
            for n, local in zip(numbers, p.valid, strict=False):
                cited_docs.setdefault(n, set()).add(hits[local - 1].chunk.doc_id)
    built = refs.build()
    assert [r.n for r in built] == list(range(1, len(built) + 1))
    assert all(set(ns) <= {r.n for r in built} for ns in written)
    first_use = list(dict.fromkeys(n for ns in written for n in ns))
    assert first_use == list(range(1, len(first_use) + 1))
    assert len({r.doc_id for r in built}) == len(built), "one reference per document"
    for r in built:
        assert len({p.chunk_id for p in r.passages}) == len(r.passages)
        assert all(p.chunk_id.startswith(r.doc_id) for p in r.passages)


# --------------------------------------------------------------------------- whole answers from arbitrary model output


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, splitter):  # type: ignore[no-untyped-def]
    docs = [
        Document(id=f"g{i}", kind="guideline", title=f"Guideline {i}", blocks=(Block(f"Colon cancer treatment {w}."),))
        for i, w in enumerate(["FOLFOX", "surgery", "radiotherapy", "aspirin"])
    ] + [
        Document(id=f"r{i}", kind="research", title=f"Trial {i}", blocks=(Block(f"Colon cancer trial of {w}."),))
        for i, w in enumerate(["FOLFOX", "surgery", "aspirin"])
    ]
    path = tmp_path_factory.mktemp("prop") / "ix"
    s = Settings.preset("test", answer={"min_relevance": 0.0, "min_source_score": -1.0, "k_guideline": 4})
    build_index(path, documents=docs, settings=s, embedder=HashingEmbedder(), splitter=splitter, progress=False)
    return open_index(path, settings=s, embedder=HashingEmbedder()), s


# Quotes: spans of the corpus (in some source, cited or not), their case and spacing variants, and anything else.
_REAL_QUOTES = st.sampled_from(
    ["Colon cancer treatment FOLFOX", "colon  CANCER treatment surgery.", "Colon cancer trial of aspirin",
     "cancer treatment radiotherapy", "Colon cancer treatment", "treatment FOLFOX surgery radiotherapy"]
)  # fmt: skip
_POINT = st.fixed_dictionaries(
    {"text": MODEL_TEXT, "cite": st.lists(st.one_of(st.integers(-3, 12), st.text(max_size=3)), max_size=4)},
    optional={"quote": st.one_of(_REAL_QUOTES, MODEL_TEXT)},
)
_SECTION_JSON = st.fixed_dictionaries(
    {
        "lead": st.lists(_POINT, max_size=2),
        "groups": st.lists(
            st.fixed_dictionaries({"heading": MODEL_TEXT, "points": st.lists(_POINT, max_size=3)}), max_size=3
        ),
    }
).map(json.dumps)
MODEL_REPLY = st.one_of(_SECTION_JSON, MODEL_TEXT, _SECTION_JSON.map(lambda s: s[: len(s) // 2]))


@settings(max_examples=SCALE or 60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(guideline=MODEL_REPLY, research=MODEL_REPLY)
def test_any_model_output_gives_a_well_formed_answer(index, guideline: str, research: str) -> None:  # type: ignore[no-untyped-def]
    ix, s = index
    follow = json.dumps({"questions": ["What about elderly patients?", "And after surgery?"]})
    backend = ScriptedBackend([guideline, research, follow], piece=11)
    answer = ask("colon cancer treatment", ix, generator=LLMGenerator(backend, name="fuzz"), settings=s)
    assert_answer_structure(answer, 7)
    assert from_dict(json.loads(json.dumps(to_dict(answer)))) == answer
    refs = {r.n: r for r in answer.references}
    for section in answer.sections:
        for group in section.groups:
            for item in group.items:
                if item.quote:  # every shown quote is in a passage of a reference the statement cites
                    texts = [p.text for n in item.citations for p in refs[n].passages]
                    assert QuoteFinder(texts).find(item.quote) is not None, (item, texts)
                    assert not too_short(item.quote, item.text)


# --------------------------------------------------------------------------- renderer

TEXT = st.text(max_size=40)
STATEMENTS = st.lists(
    st.builds(Statement, TEXT, st.lists(st.integers(1, 4), max_size=3).map(tuple)), min_size=1, max_size=3
)
ANSWERS = st.builds(
    Answer,
    question=TEXT,
    sections=st.tuples(
        *(
            st.builds(
                Section,
                st.just(title),
                st.lists(st.builds(Group, st.one_of(st.none(), TEXT), STATEMENTS.map(tuple)), min_size=1, max_size=3).map(tuple),
                st.booleans(),
            )
            for title in ("From the Guidelines", "From the Research")
        )
    ),
    references=st.lists(
        st.builds(
            Reference,
            n=st.just(0),
            kind=st.sampled_from(["guideline", "research"]),
            title=TEXT,
            source=TEXT,
            year=st.one_of(st.none(), st.integers(1900, 2100)),
            id=TEXT,
            url=st.one_of(st.none(), TEXT, st.just("javascript:alert(1)"), TEXT.map(lambda t: "https://x.org/" + t)),
            doc_id=TEXT,
            passages=st.lists(st.builds(Passage, TEXT, st.one_of(st.none(), st.integers(1, 999)), TEXT, TEXT), max_size=2).map(tuple),
        ),
        max_size=4,
    ).map(lambda rs: tuple(Reference(**{**{f: getattr(r, f) for f in r.__slots__}, "n": i + 1}) for i, r in enumerate(rs))),
    disclaimer=TEXT,
    follow_ups=st.lists(TEXT, max_size=3).map(tuple),
    run=st.builds(RunInfo, TEXT, TEXT, TEXT, TEXT, TEXT),
    id=st.one_of(st.none(), TEXT),
)  # fmt: skip


@FAST
@given(answer=ANSWERS)
# Found by hypothesis: a carriage return in the disclaimer or question started a Markdown heading of its own.
@example(
    answer=Answer(
        "\r## q",
        (
            Section(GUIDELINES_TITLE, (Group(None, (Statement("", ()),)),), False),
            Section(RESEARCH_TITLE, (Group(None, (Statement("", ()),)),), False),
        ),
        (),
        "\r## ",
        (),
        RunInfo("", "", "", "", ""),
    )
)
def test_render_json_round_trips_and_html_is_always_safe(answer: Answer) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(answer)))) == answer
    assert_safe_html(to_html(answer))
    md = to_markdown(answer)
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## From the Guidelines", "## From the Research", "## References"], md


# Found by fuzzing model output: each of these once raised in StreamParser.feed or LLMGenerator.follow_ups.
@pytest.mark.parametrize(
    "reply",
    [
        pytest.param('{"questions": 5}', id="follow-ups-not-a-list-TypeError"),
        pytest.param("[" * 100_000, id="follow-ups-deep-nesting-RecursionError"),
        pytest.param('{"questions": [], "n": ' + "9" * 5000 + "}", id="follow-ups-huge-int-ValueError"),
        pytest.param(
            '{"groups": [{"heading": "h", "points": [{"text": "t", "cite": [' + "9" * 5000 + "]}]}]}",
            id="section-cite-huge-int-ValueError",
        ),
    ],
)
def test_generator_parsing_survives_hostile_model_output(reply: str) -> None:
    from pipeline.generate import StreamParser

    items = StreamParser().feed(reply)
    assert all(isinstance(i.text, str) for i in items)
    questions = LLMGenerator(ScriptedBackend([reply]), name="x").follow_ups("q", [], "clinician")
    assert all(isinstance(q, str) for q in questions)
