"""The nli and openai judges against real (small, local) counterparts: a tiny NLI model folder and a server process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import GenerationError, InputError
from pipeline.judge import NLIJudge, OpenAIJudge, make_judge
from tests.test_openai_generator import server  # noqa: F401 - the stand-in server fixture


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT classifier with NLI labels, saved as a Hugging Face folder."""
    import shutil

    from transformers import BertConfig, BertForSequenceClassification

    from pipeline.embed import bundled_model_path

    folder = tmp_path_factory.mktemp("nli")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
        label2id={"entailment": 0, "neutral": 1, "contradiction": 2},
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(bundled_model_path() / name, folder / name)
    return folder


def test_nli_judge_reads_a_local_folder(tiny_nli: Path) -> None:
    judge = NLIJudge(tiny_nli)
    pairs = [("Aspirin reduces fever.", "Aspirin is used to reduce fever."), ("x", "y " * 800)]
    scores = judge.score(pairs)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1)), "P(entailment), long passages truncated"
    assert np.array_equal(scores, judge.score(pairs)), "deterministic"
    assert judge.fingerprint().startswith("nli-v1:")


def test_nli_judge_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a Hugging Face model folder"):
        make_judge("nli", path=tmp_path)


def test_openai_judge_scores_from_logprobs(server) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url, log = server
    judge = OpenAIJudge(url, "m1")
    scores = judge.score(
        [
            ("Aspirin reduces fever.", "Aspirin is an antipyretic."),
            ("Zebras reduce fever.", "Aspirin is an antipyretic."),
        ]
    )
    assert scores[0] > judge.threshold > scores[1]
    assert log.read_text().count('"max_tokens": 1') == 2


def test_yes_no_score_adds_every_variant_of_each_side() -> None:
    import math

    from pipeline.judge.ask import MISSING_LOGPROB, yes_no_score

    top = [
        {"token": "Yes", "logprob": -0.55},
        {"token": "No", "logprob": -0.86},
        {"token": " Yes", "logprob": -3.2},
        {"token": "YES", "logprob": -5.0},
        {"token": "yes", "logprob": -4.1},
    ]
    yes = math.log(sum(math.exp(x) for x in (-0.55, -3.2, -5.0, -4.1)))
    assert yes_no_score(top) == pytest.approx(yes + 0.86)
    assert yes_no_score(top) > 0.31, "the later variants add to 'Yes', never replace it"
    assert yes_no_score([{"token": "No", "logprob": -0.1}]) == pytest.approx(MISSING_LOGPROB + 0.1)
    assert yes_no_score([{"token": "Maybe", "logprob": -0.1}, "junk", {"token": 5}]) is None


def test_openai_judge_without_a_server() -> None:
    with pytest.raises(GenerationError, match="cannot reach the judge server"):
        OpenAIJudge("http://127.0.0.1:9/v1", "m", timeout_s=2).score([("a", "b")])


def test_embedding_judge_reads_a_title_line_apart_from_the_sentence_below_it(real_embedder, splitter) -> None:  # type: ignore[no-untyped-def]
    # A quoted statement is judged against its source's title and the sentence it quotes; spaCy ran the two into
    # one sentence, and a verbatim quote scored 0.32 against it (below the 0.6 threshold).
    from pipeline.judge import EmbeddingJudge

    judge = EmbeddingJudge(embedder=real_embedder, splitter=splitter)
    claim = "Data were collected regarding patient demographics, presenting symptoms, stage, treatment received."
    passage = f"Cancer of the buccal mucosa: are margins and T-stage accurate predictors of local control?\n{claim}"
    verbatim, other = judge.score([(claim, passage), ("Aspirin cures every cancer.", passage)])
    assert verbatim > 0.99 and other < judge.threshold
