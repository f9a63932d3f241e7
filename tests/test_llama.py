"""One end-to-end answer with the real bundled LLM (about a minute or two on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import Settings, open_index
from pipeline.answer import ask, make_generator
from pipeline.render import to_dict
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
