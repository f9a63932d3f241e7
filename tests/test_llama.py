"""One end-to-end answer with the real bundled LLM (about a minute or two on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import Settings, open_index
from pipeline.answer import ask
from pipeline.generate import make_generator
from pipeline.types import to_dict
from tests.test_integration import SEED, _check_answer_json

pytestmark = pytest.mark.slow


def test_llama_answers_the_seed_question(real_index: Path) -> None:
    settings = Settings.preset("default", answer={"k_guideline": 3, "k_research": 3}, llama={"max_tokens": 320})
    index = open_index(real_index)
    gen = make_generator("llama", settings, index)
    answer = ask(SEED, index, generator=gen, settings=settings)
    out = to_dict(answer)
    _check_answer_json(out, SEED)
    assert out["run"]["generator"] == "llama" and out["run"]["model"].endswith(".gguf")
    assert not out["sections"][0]["abstained"]
    n_statements = sum(len(b["items"]) for s in out["sections"] if not s["abstained"] for b in s["blocks"])
    assert n_statements >= 2
    assert answer.stats["out_of_range_citations"] == 0, "the JSON schema only lets the model cite shown numbers"


def test_llm_judge_separates_support_and_reuses_the_passage_prefix() -> None:
    from pipeline.judge import LLMJudge

    passage = "Aspirin is an antipyretic: it is used to reduce fever in adults."
    pairs = [
        ("Aspirin reduces fever.", passage),
        ("Aspirin causes fever.", passage),
        ("FOLFOX cures migraine.", passage),
    ]
    judge = LLMJudge()
    scores = judge.score(pairs)
    assert scores[0] > judge.threshold > max(scores[1], scores[2])
    reused = judge.evaluated_tokens
    judge.llm.n_tokens = 0
    judge.evaluated_tokens = 0
    judge.reuse_prefix = False
    again = judge.score(pairs)
    assert judge.evaluated_tokens > reused, "without reuse the shared passage prefix is evaluated three times"
    # Same judgement either way; logits differ slightly with how tokens are batched through the model.
    assert again[0] > judge.threshold > max(again[1], again[2])
    assert abs(again - scores).max() < 0.3


def test_llama_quotes_a_sentence_with_quote_marks_from_its_grammar() -> None:
    """A source sentence with '"' once made llama-cpp-python write a grammar that does not parse, and the process
    died mid-run (the validity run, issue 15)."""
    from pipeline.generate.base import SectionRequest, Source
    from pipeline.quotes import QuoteFinder
    from pipeline.types import Block, Chunk, Document, Hit

    text = (
        'TBC1D16 expression in ovarian cancer was categorized as "high expression," compared with normal ovarian '
        "tissues (P < 0.05). High TBC1D16 expression was related to advanced pT stages."
    )
    doc = Document(id="r1", kind="research", title="TBC1D16 in ovarian cancer", blocks=(Block(text),))
    hit = Hit(rank=1, score=1.0, chunk=Chunk(id="r1:0", doc_id="r1", kind="research", text=text), document=doc)
    settings = Settings.preset("default", llama={"max_tokens": 200})
    gen = make_generator("llama", settings)
    request = SectionRequest("Is TBC1D16 expressed in ovarian cancer?", "research", (Source(1, hit),))
    items = list(gen.draft_section(request))  # type: ignore[attr-defined]
    assert items, "the grammar parsed and the model wrote at least one point"
    finder = QuoteFinder([text])
    assert all(it.quote and finder.find(it.quote, [0]) is not None for it in items), [it.quote for it in items]
