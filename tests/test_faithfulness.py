from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.faithfulness import evaluate, judge_answers, read_answers
from pipeline.errors import InputError
from pipeline.judge import CachedJudge, LexicalJudge
from pipeline.types import Answer, Group, Passage, Reference, RunInfo, Section, Statement, to_dict
from tests.fakes import KeywordJudge

RUN = RunInfo("test", "none", "p", "s", "i")


def _ref(n: int, text: str, kind: str = "guideline") -> Reference:
    return Reference(n, kind, f"Doc {n}", "Org", 2024, f"doc-{n}", None, f"doc-{n}", (Passage(f"c{n}", None, text),))  # type: ignore[arg-type]


def _answer(
    items: list[Statement], refs: list[Reference], *, id: str = "a1", abstained_research: bool = True
) -> Answer:
    sections = [Section("From the Guidelines", (Group(None, tuple(items)),))]
    if abstained_research:
        sections.append(
            Section("From the Research", (Group(None, (Statement("No research paper ..."),)),), abstained=True)
        )
    return Answer("Q?", tuple(sections), tuple(refs), "disclaimer", (), RUN, id=id)


REFS = [
    _ref(1, "folfox improves survival in metastatic colon cancer"),
    _ref(2, "bevacizumab added to chemotherapy improves survival"),
    _ref(3, "aspirin prevents adenomas"),
]


def _verdicts(items: list[Statement]) -> list:  # type: ignore[type-arg]
    return judge_answers([("a1", _answer(items, REFS), {})], KeywordJudge())


def test_alce_recall_and_precision_hand_built() -> None:
    items = [
        Statement("folfox improves survival", (1,)),  # supported by its one citation
        Statement("folfox improves survival", (1, 3)),  # [3] is irrelevant: alone it fails, [1] still supports
        Statement("folfox bevacizumab survival", (1, 2)),  # needs both: neither alone, neither removable
        Statement("aspirin improves survival", (3,)),  # unsupported
        Statement("no citation here"),  # no citation
        Statement("cites a missing reference", (9,)),  # bad citation
    ]
    vs = _verdicts(items)
    assert [v.label for v in vs] == [
        "supported",
        "supported",
        "supported",
        "unsupported",
        "no_citation",
        "bad_citation",
    ]
    assert [v.recall for v in vs] == [1, 1, 1, 0, 0, 0]
    assert vs[1].relevant == (True, False)
    assert vs[2].relevant == (True, True)
    assert vs[3].relevant == (False,)
    from eval.faithfulness import _figures

    f = _figures(vs)
    assert f["citation_recall"] == round(3 / 6, 4)
    # citations: 1 + 2 + 2 + 1 + 0 + 1 (bad) = 7; relevant: 1 + 1 + 2 + 0 = 4
    assert f["citation_precision"] == round(4 / 7, 4)
    assert (f["supported"], f["unsupported"], f["no_citation"], f["bad_citation"]) == (3, 1, 1, 1)


def test_partly_bad_citations_are_judged_on_the_good_ones() -> None:
    (v,) = _verdicts([Statement("aspirin prevents adenomas", (3, 8))])
    assert (v.label, v.citations, v.bad_citations) == ("supported", (3,), (8,))


def test_inline_markers_of_other_tools_are_read() -> None:
    (v,) = _verdicts([Statement("folfox improves survival [1].")])
    assert (v.label, v.citations) == ("supported", (1,))


def test_evaluate_writes_verdicts_summary_and_report(tmp_path: Path) -> None:
    good = _answer([Statement("folfox improves survival", (1,))], REFS, id="good")
    bad = _answer(
        [Statement("aspirin cures <script>cancer</script>", (3,)), Statement("folfox improves survival", (1,))],
        REFS,
        id="bad",
    )
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(to_dict(a)) + "\n" for a in (good, bad)))
    summary = evaluate(path, tmp_path / "out", KeywordJudge())
    assert summary["answers"] == 2 and summary["overall"]["statements"] == 3
    assert summary["sections"]["From the Guidelines"]["supported_share"] == round(2 / 3, 4)
    assert "From the Research" not in summary["sections"], "abstained sections hold no claims"
    lines = [json.loads(x) for x in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
    assert {k for k in lines[0]} >= {"answer_id", "section", "block", "item", "label", "score", "citations"}
    assert [(x["answer_id"], x["item"], x["label"]) for x in lines] == [
        ("good", 0, "supported"),
        ("bad", 0, "unsupported"),
        ("bad", 1, "supported"),
    ]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<script>cancer" not in page and "&lt;script&gt;cancer" in page
    assert "answer bad" in page and "answer good" not in page, "only answers with unsupported statements are listed"
    assert "<svg" in page and "threshold" in page


def test_answers_without_ids_use_line_numbers_and_bad_lines_fail_clearly(tmp_path: Path) -> None:
    a = to_dict(_answer([Statement("x", (1,))], REFS))
    a.pop("id")
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(a) + "\n" + json.dumps(a) + "\n")
    assert [aid for aid, _, _ in read_answers(p)] == ["1", "2"]
    p.write_text(json.dumps(a) + "\n{broken\n")
    with pytest.raises(InputError, match=r"a.jsonl:2: not valid JSON"):
        read_answers(p)
    p.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(InputError, match=r"a.jsonl:1: not an answer"):
        read_answers(p)


@pytest.mark.parametrize(
    ("claim", "passage", "low"),
    [
        ("FOLFOX improves overall survival.", "FOLFOX improved overall survival in the trial.", False),
        ("FOLFOX improves survival by 12 months.", "FOLFOX improved survival by 3 months.", True),
        ("Aspirin does not reduce adenomas.", "Aspirin reduced adenoma recurrence.", True),
        ("Radiotherapy cures liver metastases.", "Surgery is the primary treatment for colon cancer.", True),
    ],
)
def test_lexical_judge(claim: str, passage: str, low: bool) -> None:
    j = LexicalJudge()
    s = float(j.score([(claim, passage)])[0])
    assert (s < j.threshold) is low, s


def test_cached_judge_scores_once(tmp_path: Path) -> None:
    inner = KeywordJudge()
    cached = CachedJudge(inner, tmp_path / "c.sqlite")
    pairs = [("folfox works", "folfox works well"), ("aspirin", "no"), ("folfox works", "folfox works well")]
    first = cached.score(pairs)
    assert len(inner.seen) == 2
    again = CachedJudge(inner, tmp_path / "c.sqlite").score(pairs)
    assert len(inner.seen) == 2, "a re-run costs nothing"
    assert np.array_equal(first, again) and list(first) == [1.0, 0.0, 1.0]


def test_a_three_way_judge_reports_contradictions_apart_and_first(tmp_path: Path) -> None:
    from tests.fakes import ContradictionJudge

    items = [
        Statement("aspirin improves survival", (3,)),  # not supported: the passage is silent
        Statement("folfox never improves survival", (1,)),  # contradicted: the passage says it does
        Statement("folfox improves survival", (1,)),
    ]
    vs = judge_answers([("a1", _answer(items, REFS), {})], ContradictionJudge())
    assert [v.label for v in vs] == ["unsupported", "contradicted", "supported"]
    assert [v.label for v in _verdicts(items)] == ["unsupported", "unsupported", "supported"], "two-way: no verdict"
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps(to_dict(_answer(items, REFS))) + "\n")
    summary = evaluate(path, tmp_path / "out", ContradictionJudge())
    assert (summary["overall"]["contradicted"], summary["overall"]["unsupported"]) == (1, 1)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index("folfox never improves survival") < page.index("aspirin improves survival")
    assert "1 contradicted" in page and "<th>contradicted</th>" in page


def test_a_quoted_statement_citing_two_references_is_judged_on_its_quote() -> None:
    # Its quote's sentences are one text, not one per citation: medcite eval crashed on such llama answers (KeyError).
    st = Statement("folfox improves survival", (1, 2), quote="folfox improves survival")
    (v,) = _verdicts([st])
    assert v.label == "supported" and v.citations == (1, 2) and v.relevant == (True, True)


def test_cached_judge_caches_the_three_way_reading(tmp_path: Path) -> None:
    from tests.fakes import ContradictionJudge

    class Counting(ContradictionJudge):
        calls = 0

        def relations(self, pairs):  # type: ignore[no-untyped-def]
            Counting.calls += len(pairs)
            return super().relations(pairs)

    pairs = [
        ("folfox never works", "folfox works"),
        ("folfox works", "folfox works"),
        ("folfox never works", "folfox works"),
    ]
    cached = CachedJudge(Counting(), tmp_path / "c.sqlite")
    assert cached.three_way and not CachedJudge(KeywordJudge(), tmp_path / "k.sqlite").three_way
    first = cached.relations(pairs)
    assert first.argmax(axis=1).tolist() == [1, 0, 1] and Counting.calls == 2, "each distinct pair read once"
    again = CachedJudge(Counting(), tmp_path / "c.sqlite").relations(pairs)
    assert np.allclose(first, again) and Counting.calls == 2, "a re-run reads the cache"
