"""Query expansion: what the model's reply gives, how expanded searches fuse, and what an answer records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import Settings
from pipeline.answer import ask
from pipeline.expand import LLMExpander, expand_schema, parse_expansion
from pipeline.generate import LLMGenerator
from pipeline.index import fuse_hits
from pipeline.prompts import load_prompt
from pipeline.types import Block, Chunk, Document, Hit, from_dict, to_dict
from tests.fakes import ScriptedBackend, hashed_index

Q = "What is the treatment for oligoprogressive colorectal cancer?"
PASSAGE = "Hepatic metastasectomy and radiofrequency ablation of liver metastases are options."


def _settings(**expand: object) -> Settings:
    return Settings.preset(
        "test",
        answer={"min_relevance": 0.0, "min_source_score": 0.0, "k_guideline": 2, "k_research": 1, "quotes": "off"},
        expand=expand,
    )


def _docs() -> list[Document]:
    def doc(id_: str, kind: str, title: str, text: str) -> Document:
        return Document(id=id_, kind=kind, title=title, source="NCI", blocks=(Block(text, heading="Treatment"),))  # type: ignore[arg-type]

    return [
        doc("g-colon", "guideline", "Colon cancer", "Oligoprogressive colorectal cancer treatment is discussed."),
        doc("g-rectal", "guideline", "Rectal cancer", "Colorectal cancer treatment for oligoprogressive disease."),
        doc("g-liver", "guideline", "Liver metastases", PASSAGE),
        doc("pmid:1", "research", "A trial", "Oligoprogressive colorectal cancer was treated."),
    ]


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), _settings(), splitter)


def _sections_reply() -> list[str]:
    guideline = json.dumps({"lead": [{"text": "Local therapy is an option.", "cite": [1]}], "groups": []})
    research = json.dumps({"groups": [{"heading": "", "points": [{"text": "It was treated.", "cite": [1]}]}]})
    return [guideline, research, json.dumps({"questions": []})]


# --------------------------------------------------------------------------- the model's reply


def test_parse_takes_the_passage_first_then_the_queries_without_repeats() -> None:
    reply = json.dumps({"passage": "  Local  therapy\nof lesions. ", "queries": ["SBRT for oligoprogression", "x", 7]})
    assert parse_expansion(reply, "both") == ("Local therapy of lesions.", ("SBRT for oligoprogression",))
    assert parse_expansion(reply, "passage") == ("Local therapy of lesions.", ())
    assert parse_expansion(reply, "queries") == ("", ("SBRT for oligoprogression",))
    same = json.dumps({"passage": "Ablation of metastases.", "queries": ["Ablation of metastases.", "b c d", "b c d"]})
    assert parse_expansion(same, "both") == ("Ablation of metastases.", ("b c d",))


def test_parse_keeps_the_complete_strings_of_a_reply_cut_short() -> None:
    cut = '{"passage": "Resection of liver \\"metastases\\" is standard.", "queries": ["liver resection", "abla'
    assert parse_expansion(cut, "both") == ('Resection of liver "metastases" is standard.', ("liver resection",))
    cut = '{"queries": ["liver resection", "ablation"], "passage": "Resection of liver metastases is st'
    assert parse_expansion(cut, "both") == ("Resection of liver metastases is st", ("liver resection", "ablation"))
    assert parse_expansion('{"passage": "Cut in an escape \\', "passage") == ("Cut in an escape", ())
    assert parse_expansion("not json at all", "both") == ("", ())
    assert parse_expansion('["a list"]', "both") == ("", ())


def test_the_schema_asks_only_for_what_the_mode_uses() -> None:
    assert expand_schema("passage")["required"] == ["passage"]
    assert expand_schema("queries")["required"] == ["queries"]
    assert expand_schema("both")["required"] == ["queries", "passage"], "the short part first"
    assert "maxLength" not in json.dumps(expand_schema("both")), "llama.cpp grammars of string bounds are slow"
    with pytest.raises(ValueError, match="passage, queries or both"):
        LLMExpander(ScriptedBackend([]), "off")  # type: ignore[arg-type]


def test_the_prompt_asks_for_what_the_mode_wants_and_shows_the_question() -> None:
    prompt = load_prompt("expand")
    for mode, word in (("passage", '{"passage"'), ("queries", '{"queries"'), ("both", '"queries": [')):
        messages = LLMExpander(ScriptedBackend([]), mode, prompt=prompt).messages("  Dose of\namoxicillin? ")  # type: ignore[arg-type]
        assert "Question: Dose of amoxicillin?" in messages[1]["content"]
        assert word in messages[1]["content"]


def test_a_failing_or_empty_reply_gives_no_queries_and_says_why() -> None:
    class Broken:
        model = "broken"

        def stream(self, messages, schema, max_tokens):  # type: ignore[no-untyped-def]
            raise ConnectionError("server went away")
            yield ""

    out = LLMExpander(Broken()).expand(Q)  # type: ignore[arg-type]
    assert out.searches == () and "server went away" in (out.failed or "")
    echo = LLMExpander(ScriptedBackend([json.dumps({"passage": Q, "queries": [Q.upper()]})])).expand(Q)
    assert echo.searches == () and "no usable expansion" in (echo.failed or "")


# --------------------------------------------------------------------------- fusion


def _hit(cid: str, rank: int, score: float = 1.0) -> Hit:
    doc = Document(id=f"d-{cid}", kind="research", title=cid, blocks=(Block("x"),))
    return Hit(rank, score, Chunk(cid, doc.id, "research", "x"), doc, dense_rank=rank)


def test_fuse_hits_by_reciprocal_rank_keeping_the_first_lists_fields() -> None:
    own = [_hit("a", 1), _hit("b", 2), _hit("c", 3)]
    other = [_hit("d", 1), _hit("c", 2)]
    fused = fuse_hits([own, other], k=3, rrf_k=60)
    # c: 1/63 + 1/62 beats a (1/61) alone; a and d tie at 1/61 and the question's own list goes first.
    assert [h.chunk.id for h in fused] == ["c", "a", "d"]
    assert [h.rank for h in fused] == [1, 2, 3]
    assert fused[0].dense_rank == 3, "c keeps the fields of the question's own hit"
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 62)
    assert [h.chunk.id for h in fuse_hits([own], k=2)] == ["a", "b"]
    assert fuse_hits([[], []], k=5) == []


# --------------------------------------------------------------------------- answers


def test_an_expanded_answer_shows_what_only_the_expansion_found(index) -> None:  # type: ignore[no-untyped-def]
    plain = ask(Q, index, generator=LLMGenerator(ScriptedBackend(_sections_reply()), name="s"), settings=_settings())
    assert "Liver metastases" not in {r.title for r in plain.references}
    assert plain.expansions == () and "expansion_ms" not in plain.stats

    expansion = json.dumps({"passage": PASSAGE, "queries": ["liver metastasectomy ablation"]})
    backend = ScriptedBackend([expansion, *_sections_reply()])
    answer = ask(Q, index, generator=LLMGenerator(backend, name="s"), settings=_settings(mode="both"))
    first_messages, first_schema = backend.calls[0]
    assert Q in first_messages[1]["content"] and first_schema == expand_schema("both")
    shown = backend.calls[1][0][1]["content"]
    assert "Liver metastases" in shown, "the hypothetical passage's own hit reaches the generator"
    assert answer.expansions == (PASSAGE, "liver metastasectomy ablation")
    assert answer.stats["expansion_queries"] == 2 and answer.stats["expansion_ms"] >= 0
    assert from_dict(json.loads(json.dumps(to_dict(answer)))).expansions == answer.expansions
    assert "expansions" not in to_dict(plain)


def test_an_unusable_expansion_leaves_the_question_s_own_search(index) -> None:  # type: ignore[no-untyped-def]
    backend = ScriptedBackend(["I cannot help with that.", *_sections_reply()])
    answer = ask(Q, index, generator=LLMGenerator(backend, name="s"), settings=_settings(mode="passage"))
    assert answer.expansions == () and answer.stats["expansion_failed"] == 1
    assert not any(s.abstained for s in answer.sections)


def test_the_extractive_generator_never_expands(index) -> None:  # type: ignore[no-untyped-def]
    answer = ask(Q, index, generator="extractive", settings=_settings(mode="both"))
    assert answer.expansions == () and "expansion_ms" not in answer.stats


# --------------------------------------------------------------------------- the retrieval benchmark's cache


def test_the_benchmark_caches_expansions_per_expander_and_resumes(tmp_path: Path, index) -> None:  # type: ignore[no-untyped-def]
    from eval.retrieval import expand_all, expand_documents, load_expansions

    cache = tmp_path / "runs" / "expansions.jsonl"
    backend = ScriptedBackend([json.dumps({"passage": PASSAGE}), "garbage"])
    expander = LLMExpander(backend, "passage")
    first = expand_all([Q, "Another question?", Q], expander, cache)
    assert [e.searches for e in first] == [(PASSAGE,), (), (PASSAGE,)] and len(backend.calls) == 2
    cache.write_text(cache.read_text(encoding="utf-8") + '{"expander": "cut', encoding="utf-8")  # an interrupted line
    again = expand_all([Q], LLMExpander(ScriptedBackend([]), "passage"), cache)
    assert again[0].passage == PASSAGE, "a cached question is not asked again"
    assert load_expansions(cache, LLMExpander(backend, "both").name) == {}, "another mode's expansions are not reused"
    runs, seconds = expand_documents(index, [Q], first[:1], depth=3)
    assert "g-liver" in runs[0] and seconds[0] >= first[0].seconds


def test_the_benchmark_can_search_with_one_part_of_an_expansion() -> None:
    from eval.retrieval import parts_of
    from pipeline.expand import Expansion

    e = Expansion("A passage of words.", ("q one", "q two"), 3.0)
    assert parts_of(e, "passage").searches == ("A passage of words.",)
    assert parts_of(e, "queries").searches == ("q one", "q two") and parts_of(e, "queries").seconds == 3.0
