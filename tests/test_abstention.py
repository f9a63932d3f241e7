from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval.abstention import (
    QUESTIONS,
    Outcome,
    Question,
    first_per_group,
    load_questions,
    measure,
    report,
    summarise,
    to_json,
)
from eval.questions import CANCER
from pipeline import Settings, make_generator
from tests.fakes import hashed_index
from tests.test_answer import SETTINGS, _docs

# Only sources relevant at cosine 0.3 or more are shown: with the hashing embedder the nonsense question and the
# aspirin question find no guideline passage that close, the colorectal ones do. The aspirin abstract is close, but
# its one sentence is too short for the extractive generator (6 words at least), so that research section abstains.
ASK = Settings.preset("test", answer={"min_relevance": 0.3, "min_source_score": 0.0, "k_guideline": 3, "k_research": 3})
CASES = [
    Question("ans-ok", "What is the treatment for oligoprogressive colorectal cancer?", "answer", "crc", "colon"),
    Question("ans-wrong", "Does aspirin reduce adenoma recurrence?", "answer", "crc", "no guideline says so"),
    Question("abs-ok", "zebra giraffe quantum", "abstain", "nonsense", "nothing"),
    Question("abs-wrong", "Which chemotherapy treats metastatic colorectal cancer?", "abstain", "crc", "it is there"),
]


# --------------------------------------------------------------------------- the question file


def test_question_file_is_well_formed() -> None:
    questions = load_questions()  # raises on a missing field, a bad expect or a repeated id
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == len(questions)
    assert all(set(r) == {"id", "question", "expect", "topic", "why"} for r in rows)
    assert all(all(str(v).strip() for v in r.values()) for r in rows)
    assert len({q.id for q in questions}) == len(questions)
    assert len({q.question.lower() for q in questions}) == len(questions)
    abstain = [q for q in questions if q.expect == "abstain"]
    answer = [q for q in questions if q.expect == "answer"]
    assert len(abstain) >= 40 and len(answer) >= 40
    assert all(q.why.startswith("guideline must abstain") for q in abstain)
    assert all(q.why.startswith("guideline must answer") for q in answer)
    assert all(q.question.endswith("?") for q in questions)
    # About half the "abstain" questions name the NGC summary (not in the demo corpus) that answers them.
    assert len([q for q in abstain if re.search(r"\bngc-\d+", q.why)]) >= 20
    # None touches what the demo's guidelines cover: cancer, migraine and headache.
    off_topic = re.compile(r"migraine|headache", re.I)
    assert [q.id for q in abstain if CANCER.search(q.question) or off_topic.search(q.question)] == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "question": "Q?", "expect": "maybe", "topic": "t", "why": "w"}', "expect is 'maybe'"),
        ('{"id": "a", "question": "Q?", "expect": "answer", "topic": "t"}', "missing or not text: ['why']"),
        ('{"id": "a", "question": "  ", "expect": "answer", "topic": "t", "why": "w"}', "the question is empty"),
        ("[1, 2]", "needs an object with string fields"),
        ("{not json", "not JSON"),
    ],
)
def test_load_questions_rejects_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_questions(path)


def test_load_questions_rejects_a_repeated_id(tmp_path: Path) -> None:
    row = '{"id": "a", "question": "Q?", "expect": "answer", "topic": "t", "why": "w"}'
    path = tmp_path / "q.jsonl"
    path.write_text(f"{row}\n\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:3: id 'a' is used twice"):
        load_questions(path)


def test_limit_takes_the_first_questions_of_each_group() -> None:
    assert [q.id for q in first_per_group(CASES, 1)] == ["ans-ok", "abs-ok"]
    assert first_per_group(CASES, None) == CASES


# --------------------------------------------------------------------------- the measurement


@pytest.fixture
def outcomes(tmp_path: Path, splitter) -> list[Outcome]:  # type: ignore[no-untyped-def]
    index = hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)
    generator = make_generator("extractive", ASK, index)
    return measure(CASES, index, generator=generator, settings=ASK)


def test_measure_records_which_sections_abstained(outcomes: list[Outcome]) -> None:
    got = {o.question.id: (o.guideline_abstained, o.research_abstained, o.wrong_side) for o in outcomes}
    assert got == {
        "ans-ok": (False, False, False),
        "ans-wrong": (True, True, True),
        "abs-ok": (True, True, False),
        "abs-wrong": (False, False, True),
    }
    by_id = {o.question.id: o for o in outcomes}
    assert by_id["abs-wrong"].top_guideline == "Colon cancer treatment"
    assert by_id["ans-wrong"].top_guideline is None and by_id["abs-ok"].top_guideline is None
    assert all(o.seconds >= 0 for o in outcomes)


def test_summary_gives_the_shares_per_group(outcomes: list[Outcome]) -> None:
    summary = summarise(outcomes)
    assert list(summary) == ["abstain", "answer"]
    drop_time = {k: {m: v for m, v in s.items() if m != "seconds_per_question"} for k, s in summary.items()}
    assert drop_time == {
        "abstain": {
            "questions": 2,
            "guideline_abstained": 0.5,
            "research_abstained": 0.5,
            "guideline_expected_side": 0.5,
        },
        "answer": {
            "questions": 2,
            "guideline_abstained": 0.5,
            "research_abstained": 0.5,
            "guideline_expected_side": 0.5,
        },
    }
    assert summarise([o for o in outcomes if o.question.expect == "answer"]).keys() == {"answer"}


def test_report_lists_the_questions_on_the_wrong_side(outcomes: list[Outcome]) -> None:
    text = report(outcomes)
    header, abstain_row, answer_row = text.splitlines()[:3]
    assert "guideline abstained" in header and "research abstained" in header and "s/question" in header
    assert abstain_row.split()[:5] == ["abstain", "2", "50.0%", "50.0%", "50.0%"]
    assert answer_row.split()[:5] == ["answer", "2", "50.0%", "50.0%", "50.0%"]
    assert '"abstain" questions whose guideline section answered: 1' in text
    assert "  abs-wrong: Which chemotherapy treats metastatic colorectal cancer?" in text
    assert "    top reference: Colon cancer treatment" in text
    assert '"answer" questions whose guideline section abstained: 1' in text
    assert "  ans-wrong: Does aspirin reduce adenoma recurrence?" in text
    assert "ans-ok" not in text and "abs-ok" not in text


def test_json_payload_has_one_row_per_question(outcomes: list[Outcome]) -> None:
    payload = to_json(outcomes, index="ix", generator="extractive")
    assert payload["index"] == "ix" and payload["generator"] == "extractive"
    assert payload["summary"] == json.loads(json.dumps(summarise(outcomes)))
    rows = {r["id"]: r for r in payload["questions"]}
    assert list(rows) == [q.id for q in CASES]
    assert rows["abs-wrong"] | {"seconds": 0} == {
        "id": "abs-wrong",
        "question": "Which chemotherapy treats metastatic colorectal cancer?",
        "expect": "abstain",
        "topic": "crc",
        "why": "it is there",
        "guideline_abstained": False,
        "research_abstained": False,
        "seconds": 0,
        "top_guideline": "Colon cancer treatment",
        "wrong_side": True,
    }
    json.dumps(payload)  # serialisable as it is


# --------------------------------------------------------------------------- thresholds on the tune half


def test_the_halves_are_fixed_disjoint_and_both_hold_each_group() -> None:
    from eval.abstention import of_split, split_of

    questions = load_questions()
    tune, held = of_split(questions, "tune"), of_split(questions, "heldout")
    assert len(tune) + len(held) == len(questions) and not {q.id for q in tune} & {q.id for q in held}
    assert all(split_of(q) == "tune" for q in tune)
    for part in (tune, held):
        assert {q.expect for q in part} == {"abstain", "answer"}
    with pytest.raises(ValueError, match="split is 'dev'"):
        of_split(questions, "dev")


def test_thresholds_are_chosen_on_the_tune_half_and_reported_on_the_other() -> None:
    from eval.abstention import thresholds

    rows = [
        {"expect": "answer", "split": "tune", "cosine": 0.8},
        {"expect": "answer", "split": "tune", "cosine": 0.6},
        {"expect": "abstain", "split": "tune", "cosine": 0.4},
        {"expect": "abstain", "split": "tune", "cosine": 0.2},
        # held out: one "answer" question under the tuned threshold, one "abstain" question over it
        {"expect": "answer", "split": "heldout", "cosine": 0.9},
        {"expect": "answer", "split": "heldout", "cosine": 0.45},
        {"expect": "abstain", "split": "heldout", "cosine": 0.1},
        {"expect": "abstain", "split": "heldout", "cosine": 0.3},
        {"expect": "abstain", "split": "heldout", "cosine": 0.7},
    ]
    t = thresholds(rows)["cosine"]
    assert 0.4 < t["threshold"] <= 0.6  # between the tune groups, whatever the held-out rows say
    assert t["heldout_answer_share"] == pytest.approx(0.5 if t["threshold"] > 0.45 else 1.0)
    assert t["heldout_abstain_share"] == pytest.approx(2 / 3)
    assert "relevance" not in thresholds(rows)
