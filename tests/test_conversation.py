from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

import pipeline
from pipeline import Settings
from pipeline.answer import ask, select_sources
from pipeline.cite import References
from pipeline.conversation import Conversation, LLMRewriter, RuleRewriter, Turn, names_own_disease, topic_anchor
from pipeline.errors import GenerationError, InputError
from pipeline.generate import ExtractiveGenerator, LLMGenerator
from pipeline.render import to_html, to_html_fragment, to_markdown
from pipeline.types import (
    Answer,
    AnswerDone,
    Block,
    Document,
    Group,
    Passage,
    Reference,
    RunInfo,
    Section,
    SectionStarted,
    Statement,
)
from tests.fakes import ScriptedBackend, hashed_index

SETTINGS = Settings.preset(
    "test", answer={"min_relevance": 0.1, "min_source_score": 0.0, "k_guideline": 2, "k_research": 2}
)
SEED = "What is the treatment for oligoprogressive colorectal cancer?"


def _docs() -> list[Document]:
    return [
        Document(
            id="g-colon",
            kind="guideline",
            title="Colon cancer treatment",
            source="NCI",
            year=2025,
            blocks=(
                Block("Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions.", "Local therapy"),
                Block(
                    "In RAS-mutant colorectal cancer, anti-EGFR antibodies are not recommended and bevacizumab is "
                    "added to chemotherapy.",
                    "RAS-mutant disease",
                ),
                Block(
                    "Elderly patients with colorectal cancer may receive reduced-dose chemotherapy after a geriatric "
                    "assessment.",
                    "Older patients",
                ),
            ),
        ),
        Document(
            id="g-rectal",
            kind="guideline",
            title="Rectal cancer treatment",
            source="NCI",
            year=2024,
            blocks=(Block("Short-course radiotherapy treats rectal cancer before surgery in most patients."),),
        ),
        Document(
            id="pmid:1",
            kind="research",
            title="SBRT for oligoprogressive colorectal cancer",
            pmid="1",
            blocks=(
                Block("Radiotherapy of oligoprogressive colorectal cancer sites delayed systemic treatment change."),
            ),
        ),
        Document(
            id="pmid:2",
            kind="research",
            title="RAS mutation and anti-EGFR response",
            pmid="2",
            blocks=(Block("RAS-mutant colorectal tumours did not respond to anti-EGFR therapy in this cohort."),),
        ),
        Document(
            id="pmid:3",
            kind="research",
            title="Capecitabine in elderly patients",
            pmid="3",
            blocks=(
                Block("Elderly patients with metastatic colorectal cancer tolerated capecitabine monotherapy well."),
            ),
        ),
    ]


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)


@pytest.fixture
def extractive(index, splitter):  # type: ignore[no-untyped-def]
    return ExtractiveGenerator(index.query_embedder(), splitter, min_score=0.0)


def _turn(question: str, query: str | None = None) -> Turn:
    q = query or question
    return Turn(question, q, Answer(q, (), (), "", (), RunInfo("", "", "", "", "")))


# --------------------------------------------------------------------------- rewriting


@pytest.mark.parametrize(
    ("follow_up", "expected"),
    [
        (
            "What about RAS-mutant tumours?",
            "What is the treatment for oligoprogressive colorectal cancer regarding RAS-mutant tumours?",
        ),
        (
            "And in elderly patients?",
            "What is the treatment for oligoprogressive colorectal cancer in elderly patients?",
        ),
        (
            "how about  for rectal cancer",
            "What is the treatment for oligoprogressive colorectal cancer for rectal cancer?",
        ),
        ("Is it safe?", "Is it safe (treatment oligoprogressive colorectal cancer)?"),
        ("Dose?", "Dose (treatment oligoprogressive colorectal cancer)?"),
        ("And what is the dose?", "And what is the dose (treatment oligoprogressive colorectal cancer)?"),
        # A question that stands on its own is kept as it is.
        ("Which chemotherapy regimens treat metastatic colon cancer?", None),
        ("What is the role of radiotherapy in colorectal cancer?", None),
    ],
)
def test_rule_rewriter(follow_up: str, expected: str | None) -> None:
    history = [_turn(SEED)]
    assert RuleRewriter().rewrite(follow_up, history) == (expected or follow_up)
    assert RuleRewriter().rewrite(follow_up, []) == " ".join(follow_up.split()), "a first question is never rewritten"


def test_rule_rewriter_hangs_follow_ups_off_the_last_standalone_question() -> None:
    ras = "What is the treatment for oligoprogressive colorectal cancer regarding RAS-mutant tumours?"
    history = [_turn(SEED), _turn("What about RAS-mutant tumours?", ras)]
    assert RuleRewriter().rewrite("And in elderly patients?", history) == (
        "What is the treatment for oligoprogressive colorectal cancer in elderly patients?"
    )
    new_topic = "Which screening tests detect colorectal adenomas?"
    history.append(_turn(new_topic))
    assert RuleRewriter().rewrite("What about in young adults?", history) == (
        "Which screening tests detect colorectal adenomas in young adults?"
    )


def _sections(lead: str, research: str, follow_ups: list[str]) -> list[str]:
    return [
        json.dumps({"lead": [{"text": lead, "cite": [1]}], "groups": []}),
        json.dumps({"groups": [{"heading": "", "points": [{"text": research, "cite": [1]}]}]}),
        json.dumps({"questions": follow_ups}),
    ]


def test_follow_up_rewritten_by_the_generators_model(index) -> None:  # type: ignore[no-untyped-def]
    standalone = "What is the treatment for RAS-mutant oligoprogressive colorectal cancer?"
    backend = ScriptedBackend(
        _sections("Radiotherapy treats lesions.", "SBRT delayed change.", ["What about RAS-mutant tumours?"])
        + ['{"query": "' + standalone + '"}']
        + _sections("Anti-EGFR is not recommended.", "No response to anti-EGFR.", [])
    )
    chat = Conversation(index, generator=LLMGenerator(backend, name="scripted"), settings=SETTINGS)
    a = chat.ask(SEED, stream=False)
    assert len(backend.calls) == 3, "a first question is answered as asked: no rewrite call"
    assert a.question == SEED
    b = chat.ask(a.follow_ups[0], stream=False)

    rewrite_msgs, schema = backend.calls[3]
    assert "query" in json.dumps(schema)
    assert SEED in rewrite_msgs[1]["content"], "the model sees the earlier question"
    assert "Latest question: What about RAS-mutant tumours?" in rewrite_msgs[1]["content"]
    # The sections are written for the standalone question, which is stored on the answer and the turn.
    assert f"Question: {standalone}" in backend.calls[4][0][1]["content"]
    assert b.question == standalone
    turn = chat.history[1]
    assert (turn.question, turn.query, turn.answer) == ("What about RAS-mutant tumours?", standalone, b)
    assert turn.rewriter.startswith("llm:scripted:")
    assert chat.history[0].rewriter == "none"


def test_llm_rewriter_fails_loudly_on_no_query() -> None:
    rewriter = LLMRewriter(ScriptedBackend(['{"query": ""}', "sorry, I cannot"]))
    for _ in range(2):
        with pytest.raises(GenerationError, match="no standalone query"):
            rewriter.rewrite("And in elderly patients?", [_turn(SEED)])


def test_extractive_conversation_uses_rules(index, extractive) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    assert isinstance(chat.rewriter, RuleRewriter)
    chat.ask(SEED, stream=False)
    b = chat.ask("What about RAS-mutant tumours?", stream=False)
    assert b.question == "What is the treatment for oligoprogressive colorectal cancer regarding RAS-mutant tumours?"
    assert chat.history[1].rewriter == "rules"
    with pytest.raises(InputError, match="empty"):
        chat.ask("  ", stream=False)


def test_events_stream_a_turn_and_keep_it_only_once_done(index, extractive) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    events = chat.events(SEED)
    first = next(events)
    assert isinstance(first, SectionStarted) and len(chat) == 0, "nothing is kept before the answer is done"
    events.close()  # a page closed mid-answer
    assert len(chat) == 0
    kinds = [type(e).__name__ for e in chat.events(SEED)]
    assert kinds[0] == "SectionStarted" and kinds[-1] == "AnswerDone" and "ItemWritten" in kinds
    assert len(chat) == 1
    follow = list(chat.events("What about RAS-mutant tumours?"))
    done = follow[-1]
    assert isinstance(done, AnswerDone) and chat.answers[-1] is done.answer
    assert chat.history[1].query == done.answer.question != chat.history[1].question


# --------------------------------------------------------------------------- numbering


def test_reference_numbers_stay_stable_across_three_turns(index, extractive) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    answers = [chat.ask(q, stream=False) for q in (SEED, "What about RAS-mutant tumours?", "And in elderly patients?")]
    seen: dict[str, int] = {}
    recurring = 0
    for a in answers:
        before = max(seen.values(), default=0)
        refs = {r.n: r for r in a.references}
        cited = {n for s in a.sections for g in s.groups for st in g.items for n in st.citations}
        assert cited == set(refs), "every citation resolves, and every listed reference is cited"
        for r in a.references:
            if r.doc_id in seen:
                assert r.n == seen[r.doc_id], f"{r.doc_id} was [{seen[r.doc_id]}], now [{r.n}]"
                recurring += 1
            else:
                assert r.n > before, f"new source {r.doc_id} got [{r.n}], not a number after [{before}]"
                seen[r.doc_id] = r.n
    assert recurring, "the fixture should make later turns cite an earlier source"
    assert sorted(seen.values()) == list(range(1, len(seen) + 1)), "numbers are given without gaps"
    assert chat.numbering() == seen
    # The same question asked on its own numbers from 1: the conversation is what keeps the numbers.
    alone = ask(answers[2].question, index, generator=extractive, settings=SETTINGS)
    assert sorted(r.n for r in alone.references) == list(range(1, len(alone.references) + 1))
    assert [r.n for r in alone.references] != [r.n for r in answers[2].references]


def test_seeded_references() -> None:
    refs = References(seed={"a": 2, "b": 1})
    assert len(refs) == 0 and refs.build() == ()
    with pytest.raises(InputError, match="distinct numbers"):
        References(seed={"a": 1, "b": 1})
    with pytest.raises(InputError, match="distinct numbers"):
        References(seed={"a": 0})


def test_earlier_evidence_competes_with_search_hits(index) -> None:  # type: ignore[no-untyped-def]
    q = "colorectal cancer"  # BM25 and the embedder disagree on its best guideline passage
    guideline_ids = [c.id for c in index.chunks if c.kind == "guideline"]
    research_ids = [c.id for c in index.chunks if c.kind == "research"]
    top, _ = select_sources(index, q, "guideline", 1, SETTINGS)
    sims = dict(zip(guideline_ids, index.similarity(q, guideline_ids), strict=True))
    changed = 0
    for cid in guideline_ids:
        got, _ = select_sources(index, q, "guideline", 1, SETTINGS, evidence=[cid, *research_ids, "no-such-chunk"])
        best = max((top[0].chunk.id, cid), key=lambda c: sims[c])
        assert [h.chunk.id for h in got] == [best], "the better fitting of the hit and the earlier passage is kept"
        changed += best != top[0].chunk.id
    assert changed, "some earlier passage should fit better than the first search hit"
    both, _ = select_sources(index, q, "guideline", 3, SETTINGS, evidence=[top[0].chunk.id])
    assert len({h.chunk.id for h in both}) == len(both), "a passage found again is not shown twice"


# --------------------------------------------------------------------------- saving, Markdown, streaming


def test_save_load_round_trip(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    for q in (SEED, "What about RAS-mutant tumours?", "And in elderly patients?"):
        chat.ask(q, stream=False)
    path = chat.save(tmp_path / "chats" / "chat.json")
    d = json.loads(path.read_text(encoding="utf-8"))
    assert d["format"] == "medcite-conversation" and len(d["turns"]) == 3
    assert set(d["turns"][1]) == {"question", "query", "rewriter", "answer"}
    assert set(d["turns"][1]["answer"]) >= {"question", "sections", "references", "disclaimer", "follow_ups", "run"}

    back = Conversation.load(path, index=index, generator=extractive, settings=SETTINGS)
    assert back.history == chat.history
    assert back.to_markdown() == chat.to_markdown()
    assert back.numbering() == chat.numbering()
    # A loaded conversation goes on where it stopped: same rewrites, same numbers.
    more = back.ask("What about RAS-mutant tumours?", stream=False)
    assert more.question == chat.history[1].query
    for r in more.references:
        if r.doc_id in chat.numbering():
            assert r.n == chat.numbering()[r.doc_id]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"turns": []}', "not a saved medcite conversation"),
        ('{"format": "medcite-conversation", "version": 99, "turns": []}', "version 99"),
        ('{"format": "medcite-conversation", "version": 1, "turns": [{"query": "q"}]}', "turn 1 lacks"),
        ('{"format": "medcite-conversation", "version": 1, "turns": [{"question": "q", "answer": {}}]}', "turn 1"),
    ],
)
def test_load_rejects_what_is_not_a_conversation(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "chat.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        Conversation.load(p, index=tmp_path / "ix")
    with pytest.raises(InputError, match="cannot read"):
        Conversation.load(tmp_path / "missing.json")


def test_to_markdown_shows_each_question_as_asked_and_its_rewrite(index, extractive) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    chat.ask(SEED, stream=False)
    b = chat.ask("What about RAS-mutant tumours?", stream=False)
    md = chat.to_markdown()
    assert md.startswith(f"# {SEED}\n")
    assert f"\n---\n\n# What about RAS-mutant tumours?\n\n*Searched as: {b.question}*\n" in md
    assert md.count("## From the Guidelines") == 2 and md.count("## References") == 2


def test_plain_stream_outside_jupyter_writes_the_answer_as_markdown(index, extractive) -> None:  # type: ignore[no-untyped-def]
    chat = Conversation(index, generator=extractive, settings=SETTINGS)
    quiet = io.StringIO()
    chat.ask(SEED, stream=False, out=quiet)
    assert quiet.getvalue() == ""
    out = io.StringIO()
    b = chat.ask("What about RAS-mutant tumours?", stream=True, out=out)
    assert out.getvalue() == to_markdown(b, asked="What about RAS-mutant tumours?")


def test_conversation_is_public_and_opens_an_index_path_lazily(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert pipeline.Conversation is Conversation
    chat = pipeline.Conversation(tmp_path / "nowhere", generator="extractive")
    assert chat.history == () and "0 turns" in repr(chat)
    with pytest.raises(pipeline.PipelineError):
        chat.ask(SEED, stream=False)


# --------------------------------------------------------------------------- rendering in a notebook


def _evil_answer(answer_id: str | None = "a1") -> Answer:
    evil = "<script>alert(1)</script>"
    return Answer(
        question=f"Q {evil}",
        sections=(
            Section("From the Guidelines", (Group(None, (Statement(f"Lead {evil}", (2,)),)),)),
            Section("From the Research", (Group(None, (Statement("Finding.", (2, 5)),)),)),
        ),
        references=(
            Reference(
                2,
                "guideline",
                f"Title {evil}",
                "NCI",
                2024,
                "g",
                None,
                "g",
                (Passage("c1", 7, f"Text {evil}", "Heading"),),
            ),
            Reference(5, "research", "Trial", "J", 2020, "PMID 5", None, "pmid:5", (Passage("c2", None, "x" * 2000),)),
        ),
        disclaimer="Check the sources.",
        follow_ups=("What about RAS-mutant tumours?",),
        run=RunInfo("extractive", "m", "none", "s", "i"),
        id=answer_id,
    )


def test_html_reveals_each_cited_passage_and_escapes_document_text() -> None:
    answer = _evil_answer('x" onmouseover="alert(1)')
    page = answer._repr_html_()
    assert page == to_html_fragment(answer) and page.startswith('<div class="medcite"')
    assert "<script" not in page and "onmouseover=" not in page
    # Each citation number carries its passage: title, page and text, escaped.
    pops = re.findall(
        r'<span class="mc-ref" id="([^"]+)"><a href="#\1">(\d+)</a><span class="mc-pop"[^>]*>(.*?)</span></span>', page
    )
    assert [n for _, n, _ in pops] == ["2", "2", "5"]
    ids = [i for i, _, _ in pops]
    assert len(set(ids)) == 3, "every citation has its own id to reveal it by"
    first = pops[0][2]
    assert "2. Title &lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "p. 7 · Heading" in first and "Text &lt;script&gt;" in first
    assert len(pops[2][2]) < 1000, "a long passage is clipped in the reveal"
    assert 'id="' + ids[0].rsplit("-c", 1)[0] + '-ref-5"' in page, "the full passage stays in the reference list"
    assert ".mc-ref:hover>.mc-pop" in page and ":focus-within" in page and ":target" in page
    # Non-contiguous conversation numbers resolve, and the follow-ups and disclaimer are shown.
    assert "<b>2.</b>" in page and "<b>5.</b>" in page and "What about RAS-mutant tumours?" in page
    assert "Check the sources." in page
    assert answer._repr_markdown_() == to_markdown(answer)
    # A page holding two answers keeps their ids apart.
    other = _evil_answer("a2")._repr_html_()
    assert not set(re.findall(r'id="([^"]+)"', page)) & set(re.findall(r'id="([^"]+)"', other))


def test_html_shows_the_question_as_asked_and_its_rewrite() -> None:
    answer = _evil_answer()
    page = to_html(answer, asked="And <b>in</b> elderly patients?")
    assert "<h1>And &lt;b&gt;in&lt;/b&gt; elderly patients?</h1>" in page
    assert "<b>Searched as:</b> Q &lt;script&gt;" in page
    assert page.startswith("<!doctype html>") and "<title>And &lt;b&gt;" in page


# --------------------------------------------------------------------------- keeping the topic of a follow-up

RAS = "What about patients with RAS-mutant tumours?"
RAS_BY_RULES = (
    "What is the treatment for oligoprogressive colorectal cancer regarding patients with RAS-mutant tumours?"
)
MIGRAINE = "What is the first-line treatment for migraine in adults?"


def test_a_model_rewrite_that_drops_the_disease_is_not_searched(index, caplog) -> None:  # type: ignore[no-untyped-def]
    # What the bundled model wrote for this follow-up: colorectal cancer gone, and the research section then
    # answered about an AML drug.
    lost = "What is the treatment for patients with RAS-mutant tumours?"
    backend = ScriptedBackend(
        _sections("Radiotherapy treats lesions.", "SBRT delayed change.", [])
        + ['{"query": "' + lost + '"}']
        + _sections("Anti-EGFR is not recommended.", "No response to anti-EGFR.", [])
    )
    chat = Conversation(index, generator=LLMGenerator(backend, name="scripted"), settings=SETTINGS)
    chat.ask(SEED, stream=False)
    with caplog.at_level("WARNING", logger="pipeline.conversation"):
        b = chat.ask(RAS, stream=False)
    assert b.question == RAS_BY_RULES, "the rules' rewrite, made of the user's own words, is searched instead"
    assert f"Question: {RAS_BY_RULES}" in backend.calls[4][0][1]["content"]
    turn = chat.history[1]
    assert (turn.question, turn.query, turn.rewriter) == (RAS, RAS_BY_RULES, "rules"), "the turn says what made it"
    assert any("lost the topic" in r.message and '"colorectal"' in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("follow_up", "model_query", "searched"),
    [
        # Leans on the topic, and the model's query lost the disease: the rules' rewrite.
        (RAS, "What is the treatment for patients with RAS-mutant tumours?", RAS_BY_RULES),
        ("And in elderly patients?", "What is the treatment for elderly patients?", None),
        ("What about BRAF V600E tumours?", "What is the treatment for BRAF V600E tumours?", None),
        ("What about liver metastases?", "What is the treatment for liver metastases?", None),
        ("Is it safe in pregnancy?", "Is it safe in pregnancy?", None),
        ("Is it safe in patients with hepatitis?", "Is it safe in patients with hepatitis?", None),
        # The model kept the disease, whatever else it wrote: its query.
        (RAS, "What is the treatment for RAS-mutant oligoprogressive colorectal cancer?", "model"),
        ("Is it safe in pregnancy?", "Is SBRT safe in pregnancy for oligoprogressive colorectal tumours?", "model"),
        (
            "What is the recommended chemotherapy?",
            "What is the recommended chemotherapy for colorectal cancer?",
            "model",
        ),
        # The follow-up names another disease: it replaces the topic's, and the model's query stands.
        ("What about rectal cancer?", "What is the treatment for rectal cancer?", "model"),
        ("And for melanoma?", "What is the treatment for melanoma?", "model"),
        # A question that stands on its own stays as asked, even when the model carried the old topic into it.
        (MIGRAINE, MIGRAINE, "model"),
        (MIGRAINE, "What is the first-line treatment for migraine in adults with colorectal cancer?", MIGRAINE),
    ],
)
def test_llm_rewrites_keep_the_conversations_topic(follow_up: str, model_query: str, searched: str | None) -> None:
    rewriter = LLMRewriter(ScriptedBackend(['{"query": "' + model_query + '"}']))
    history = [_turn(SEED)]
    expected = {"model": model_query, None: RuleRewriter().rewrite(follow_up, history)}.get(searched, searched)
    assert rewriter.rewrite(follow_up, history) == expected
    assert rewriter.name == ("rules" if expected != model_query else f"llm:scripted:{rewriter.prompt.hash}")


def test_a_reworded_standalone_question_is_the_new_topic() -> None:
    # The model reworded a question that needed no rewrite: that question still starts a new topic, so a follow-up
    # about migraine is not pulled back to colorectal cancer.
    history = [_turn(SEED), _turn(MIGRAINE, "What is the recommended first-line treatment for migraine in adults?")]
    assert RuleRewriter().topic(history) == MIGRAINE
    assert RuleRewriter().rewrite("And in pregnancy?", history) == (
        "What is the first-line treatment for migraine in adults in pregnancy?"
    )
    kept = "What is the first-line treatment for migraine in pregnancy?"
    assert LLMRewriter(ScriptedBackend(['{"query": "' + kept + '"}'])).rewrite("And in pregnancy?", history) == kept
    # A rewritten follow-up is no topic: the one before it is.
    history = [_turn(SEED), _turn(RAS, RAS_BY_RULES)]
    assert RuleRewriter().topic(history) == SEED


@pytest.mark.parametrize(
    ("topic", "anchor"),
    [
        (SEED, ["colorectal"]),
        ("How is metastatic cancer treated?", ["metastatic", "cancer"]),
        (MIGRAINE, ["migraine"]),
        ("What is the dose of capecitabine for elderly patients?", ["capecitabine"]),
    ],
)
def test_topic_anchor(topic: str, anchor: list[str]) -> None:
    assert topic_anchor(topic) == anchor


@pytest.mark.parametrize(
    ("question", "own"),
    [
        ("What about rectal cancer?", True),
        ("And for migraine?", True),
        ("What about leukaemia?", True),
        ("What about Crohn's disease?", True),
        (RAS, False),
        ("What about MSI-high tumours?", False),
        ("What about metastatic disease?", False),
        ("What is the prognosis?", False),
        ("Is it safe in patients with hepatitis?", False),  # "it" points back at the topic
        ("What about colorectal cancer in the elderly?", False),  # the topic's own disease
    ],
)
def test_names_own_disease(question: str, own: bool) -> None:
    assert names_own_disease(question, SEED) is own
