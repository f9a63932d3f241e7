"""``ask --verify`` and ``medcite eval`` judge the same text: a statement gets the same score from both."""

from __future__ import annotations

import json
from pathlib import Path

from eval.faithfulness import judge_answers
from pipeline.answer import ask
from pipeline.generate import LLMGenerator
from pipeline.judge import LexicalJudge
from pipeline.types import from_dict, to_dict
from tests.fakes import ScriptedBackend, hashed_index
from tests.test_answer import SETTINGS, Q, _docs


def test_a_statement_scores_the_same_in_ask_verify_and_in_eval(tmp_path: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    index = hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)
    guideline = json.dumps(
        {
            "lead": [{"text": "NCI recommends stereotactic radiotherapy for oligoprogressive lesions.", "cite": [1]}],
            "groups": [
                {
                    "heading": "Therapy",
                    "points": [
                        {"text": "FOLFOX chemotherapy treats metastatic colorectal cancer.", "cite": [2, 1]},
                        {"text": "Radiotherapy treats colorectal cancer lesions.", "cite": [1, 2, 3]},
                        # Half of each claim's words are in the passage it cites, half in the other passage of the
                        # same guideline: judged against the whole reference, it would score higher than it did.
                        {"text": "FOLFOX chemotherapy and stereotactic radiotherapy treat lesions.", "cite": [1]},
                        {"text": "Stereotactic radiotherapy and FOLFOX chemotherapy treat lesions.", "cite": [2]},
                    ],
                }
            ],
        }
    )
    research = json.dumps(
        {"groups": [{"heading": "", "points": [{"text": "SBRT delayed systemic treatment change.", "cite": [1, 2]}]}]}
    )
    backend = ScriptedBackend([guideline, research, json.dumps({"questions": []})])
    # A threshold no score reaches, and "mark": every statement is kept and its ask-time score recorded.
    judge = LexicalJudge(threshold=2.0)
    answer = ask(Q, index, generator=LLMGenerator(backend, name="scripted"), verifier=judge, verify_action="mark")
    at_ask = {r["text"]: r["score"] for r in (answer.verification or {})["marked"]}
    assert len(at_ask) == 6, "every statement was checked at answer time"
    assert any(len(st.chunk_ids) > 1 for s in answer.sections for g in s.groups for st in g.items)

    saved = from_dict(json.loads(json.dumps(to_dict(answer))))  # as medcite eval reads it from answers.jsonl
    verdicts = judge_answers([("a", saved, {})], judge)
    at_eval = {v.text: v.score for v in verdicts}
    assert len(at_eval) == 6
    for text, score in at_ask.items():
        marked = next(t for t in at_eval if t.startswith(text))
        assert at_eval[marked] is not None and round(at_eval[marked], 4) == score, text


def test_a_quoted_statement_is_judged_against_its_quote_s_sentences_in_both(tmp_path: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline import Settings
    from pipeline.types import Block, Document

    passage = (
        "Chemotherapy is discussed elsewhere. Stereotactic radiotherapy treats oligoprogressive colorectal cancer "
        "lesions when systemic therapy continues. Surgery is an option for some patients with few metastases."
    )
    docs = [
        Document(
            id="g1", kind="guideline", title="Colon", source="NCI", year=2025, blocks=(Block(passage, heading="Local"),)
        ),
        Document(
            id="r1",
            kind="research",
            title="A trial",
            pmid="1",
            blocks=(Block("SBRT delayed a change of therapy in colorectal cancer."),),
        ),
    ]
    # "found": quotes looked up, statements not read against them here ("SBRT" would say more than this quote).
    settings = Settings.preset("test", answer=SETTINGS.answer.model_dump() | {"quotes": "found"})
    index = hashed_index(tmp_path / "ix", docs, settings, splitter)
    quote = "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions"
    guideline = json.dumps(
        {"lead": [{"text": "SBRT treats the progressing lesions.", "quote": quote, "cite": [1]}], "groups": []}
    )
    research = json.dumps(
        {
            "groups": [
                {
                    "heading": "",
                    "points": [
                        {"text": "SBRT delayed change.", "quote": "SBRT delayed a change of therapy", "cite": [1]}
                    ],
                }
            ]
        }
    )
    seen: list[tuple[str, str]] = []

    class Recording(LexicalJudge):
        def score(self, pairs):  # type: ignore[no-untyped-def]
            seen.extend(pairs)
            return super().score(pairs)

    judge = Recording(threshold=2.0)
    backend = ScriptedBackend([guideline, research, json.dumps({"questions": []})])
    answer = ask(
        Q, index, generator=LLMGenerator(backend, name="s"), settings=settings, verifier=judge, verify_action="mark"
    )
    at_ask = {r["text"]: r["score"] for r in (answer.verification or {})["marked"]}
    assert len(at_ask) == 2 and answer.stats["quotes_found"] == 2
    judged = dict(seen)["SBRT treats the progressing lesions."]
    assert "when systemic therapy continues" in judged, "the whole sentence the quote is in, with its qualifier"
    assert "Surgery" not in judged and "Chemotherapy" not in judged, "and not the rest of the passage"
    seen.clear()
    saved = from_dict(json.loads(json.dumps(to_dict(answer))))
    verdicts = judge_answers([("a", saved, {})], judge)
    assert dict(seen)["SBRT treats the progressing lesions."] == judged
    for v in verdicts:
        if v.text.startswith("The indexed"):  # the notice of what the index lacks is not checked at answer time
            continue
        text = next((t for t in at_ask if v.text.startswith(t)), None)
        assert text is not None, (v.text, list(at_ask))
        assert round(v.score or 0.0, 4) == at_ask[text]
