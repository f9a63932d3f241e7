"""eval.calibrate: metrics on hand-computed cases, loaders on small files in the real formats, one real run."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from eval.calibrate import (
    JUDGES,
    ROW_FIELDS,
    SETS,
    Labelled,
    auroc,
    balanced_accuracy,
    calibrate,
    choose_threshold,
    cross_fit,
    dedupe,
    evidence_passage,
    f1_unsupported,
    load_covidfact,
    load_expertqa,
    load_healthver,
    load_scifact,
    load_set,
    main,
    make_judge,
    split_of,
    stratified_halves,
    stratified_sample,
    table,
)
from pipeline.errors import InputError
from pipeline.judge import LexicalJudge, Pair

# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),  # perfect
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),  # inverted
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied
        ([0, 1, 0, 1], [0.1, 0.5, 0.5, 0.9], 0.875),  # (1 + 0.5 + 1 + 1) / 4 comparisons
        ([1, 0, 0], [0.3, 0.3, 0.1], 0.75),  # (0.5 + 1) / 2
    ],
)
def test_auroc(labels: list[int], scores: list[float], expected: float) -> None:
    assert auroc(labels, scores) == pytest.approx(expected)


def test_auroc_needs_both_classes() -> None:
    assert math.isnan(auroc([1, 1], [0.2, 0.4]))


def test_balanced_accuracy() -> None:
    # recall of supported 2/3, of unsupported 1/1
    assert balanced_accuracy([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(5 / 6)
    assert balanced_accuracy([1, 1, 0, 0], [1, 1, 1, 1]) == pytest.approx(0.5)
    assert balanced_accuracy([1, 1], [1, 0]) == pytest.approx(0.5)  # one class present: its recall


def test_f1_of_the_unsupported_class() -> None:
    # unsupported as positive: tp 1 (first), fp 1 (third: predicted 0, label 1), fn 1 (second)
    assert f1_unsupported([0, 0, 1, 1, 1], [0, 1, 0, 1, 1]) == pytest.approx(0.5)
    assert f1_unsupported([0, 1], [0, 1]) == pytest.approx(1.0)
    assert f1_unsupported([0, 1], [1, 1]) == pytest.approx(0.0)
    assert math.isnan(f1_unsupported([1, 1], [1, 1]))


def test_choose_threshold() -> None:
    assert choose_threshold([0, 0, 1, 1], [0.1, 0.4, 0.6, 0.9]) == pytest.approx(0.5)
    # 0.15 and 0.6 both reach 0.75; the middle of the two maximisers (the upper one) is taken
    assert choose_threshold([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.9]) == pytest.approx(0.6)
    # one class only: every threshold that calls them all supported is best; the lowest score qualifies
    assert choose_threshold([1, 1], [0.3, 0.7]) <= 0.3


def test_threshold_inclusive_at_the_chosen_point() -> None:
    t = choose_threshold([0, 1], [0.2, 0.2 + 1e-9])
    assert 0.2 < t <= 0.2 + 1e-9


def test_stratified_sample_keeps_shares() -> None:
    labels = np.array([1] * 70 + [0] * 30)
    idx = stratified_sample(labels, 10, np.random.default_rng(0))
    assert len(idx) == 10 and labels[idx].sum() == 7 and list(idx) == sorted(set(idx))
    assert list(stratified_sample(labels[:5], 10, np.random.default_rng(0))) == [0, 1, 2, 3, 4]
    a = stratified_sample(labels, 10, np.random.default_rng(1))
    assert list(a) == list(stratified_sample(labels, 10, np.random.default_rng(1)))


def test_stratified_halves_split_each_class_evenly() -> None:
    labels = np.array([1] * 7 + [0] * 4)
    a, b = stratified_halves(labels, np.random.default_rng(0))
    assert sorted([*a, *b]) == list(range(11))
    assert abs(len(a) - len(b)) <= 1
    assert abs(labels[a].sum() - labels[b].sum()) <= 1
    assert abs((1 - labels[a]).sum() - (1 - labels[b]).sum()) <= 1


def test_cross_fit_on_separable_scores() -> None:
    labels = np.array([0] * 6 + [1] * 6)
    scores = np.linspace(0, 1, 12)
    fit = cross_fit(labels, scores, np.random.default_rng(0))
    assert fit["balanced_accuracy"] == pytest.approx(1.0)
    assert fit["f1_unsupported"] == pytest.approx(1.0)
    assert scores[5] < fit["threshold"] <= scores[6] + 0.05
    assert len(fit["folds"]) == 2


# --------------------------------------------------------------------------- loaders

_ANSWER = {
    "answer_string": "Metformin is first line [1]. It lowers HbA1c by 1% [2].",
    "claims": [
        {  # evidence as a list
            "claim_string": "Metformin is first-line therapy for type 2 diabetes [1].",
            "evidence": [
                "[1] https://example.org/ada\n\nMetformin is the preferred initial therapy for type 2 diabetes."
            ],
            "support": "Complete",
        },
        {  # evidence as the repr of a list, two sources, one cited twice
            "claim_string": "It lowers HbA1c by about 1%  [2][3].",
            "evidence": "['[2] https://example.org/a\\n\\nMetformin lowers HbA1c.', "
            "'[3] https://example.org/b\\n\\nBy 1 to 1.5 percent.', "
            "'[2] https://example.org/a\\n\\nMetformin lowers HbA1c.']",
            "support": "Partial",
        },
        {
            "claim_string": "It causes lactic acidosis [4].",
            "evidence": ["[4] https://x.org/y"],
            "support": "Incomplete",
        },
        {
            "claim_string": "It is cheap [5].",
            "evidence": ["[5] https://x.org\n\nMetformin is cheap."],
            "support": "N/A",
        },
        {"claim_string": "It is old.", "evidence": [], "support": "Missing"},
        {
            "claim_string": "Metformin is first-line therapy for type 2 diabetes [1].",
            "support": "Complete",
            "evidence": [
                "[1] https://example.org/ada\n\nMetformin is the preferred initial therapy for type 2 diabetes."
            ],
        },
    ],
}


def _expertqa_line(field: str, answers: dict[str, object]) -> str:
    return json.dumps({"question": "q", "annotator_id": "a", "answers": answers, "metadata": {"field": field}})


@pytest.fixture
def expertqa_file(tmp_path: Path) -> Path:
    law = {
        "gpt4": {"claims": [{"claim_string": "Law [1].", "evidence": ["[1] u\n\nLaw text."], "support": "Complete"}]}
    }
    path = tmp_path / "val.jsonl"
    lines = [
        _expertqa_line("Healthcare / Medicine", {"gpt4": _ANSWER, "bing_chat": {"claims": None}}),
        "",
        "{not json",
        _expertqa_line("Law", law),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_expertqa_loader(expertqa_file: Path) -> None:
    rows = load_expertqa(expertqa_file, medicine_only=True)
    assert rows == [
        Labelled(
            "Metformin is first-line therapy for type 2 diabetes.",
            "Metformin is the preferred initial therapy for type 2 diabetes.",
            1,
        ),
        Labelled("It lowers HbA1c by about 1%.", "Metformin lowers HbA1c.\n\nBy 1 to 1.5 percent.", 0),
    ]  # N/A left out, header-only and missing evidence skipped, duplicate merged
    everything = load_expertqa([expertqa_file])
    assert len(everything) == 3 and everything[-1] == Labelled("Law.", "Law text.", 1)


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        (["[1] https://a.org/x\n\nText one."], "Text one."),
        ("['[1] https://a.org/x\\n\\nText one.', '[2] http://b.org\\n\\nText two.']", "Text one.\n\nText two."),
        ("[1] https://a.org/x\n\nA passage that ends with a bracket [sic]", "A passage that ends with a bracket [sic]"),
        (["[7] https://a.org/only-a-url"], ""),
        ([], ""),
        (None, ""),
        ("__import__('os').system('true')", "__import__('os').system('true')"),  # text, never run
        (["[8] https://a.org\n\nWeb text.\n\n[5] The footnote stays."], "Web text.\n\n[5] The footnote stays."),
    ],
)
def test_evidence_passage(evidence: object, expected: str) -> None:
    assert evidence_passage(evidence) == expected


def test_healthver_loader(tmp_path: Path) -> None:
    path = tmp_path / "healthver_dev.csv"
    path.write_text(
        "id,evidence,claim,label,topic_ip,question\n"
        '1,"Masks, worn well, cut spread.",Masks reduce spread,Supports,1,q\n'
        '2,"Masks, worn well, cut spread.",Masks reduce spread,Supports,1,q\n'
        "3,Vitamin D had no effect.,Vitamin D cures COVID-19,Refutes,2,q\n"
        "4,Wuhan in 2019.,The virus is man-made,Neutral,3,q\n"
        "5,Text.,Claim,Maybe,3,q\n",
        encoding="utf-8",
    )
    assert load_healthver(path) == [
        Labelled("Masks reduce spread", "Masks, worn well, cut spread.", 1),
        Labelled("Vitamin D cures COVID-19", "Vitamin D had no effect.", 0),
        Labelled("The virus is man-made", "Wuhan in 2019.", 0),
    ]


def test_table_loader_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,text,label\n1,x,Supports\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.csv: missing column"):
        load_healthver(path)


def test_scifact_loader(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text(
        "index\tsentence1\tsentence2\tentailment\n"
        '0\tMice were obtained from AG-haESCs.\t"Mice come from ""artificial spermatids."""\tentailment\n'
        "1\t16 of 32,441 samples were positive.\t1 in 5 million are positive.\tnot_entailment\n",
        encoding="utf-8",
    )
    assert load_scifact(path) == [
        Labelled('Mice come from "artificial spermatids."', "Mice were obtained from AG-haESCs.", 1),
        Labelled("1 in 5 million are positive.", "16 of 32,441 samples were positive.", 0),
    ]


def test_covidfact_loader(tmp_path: Path) -> None:
    path = tmp_path / "COVIDFACT_dataset.jsonl"
    rec = {
        "claim": "Antibodies neutralize sars-cov-2",
        "label": "SUPPORTED",
        "evidence": ["One.", "Two."],
        "gold_source": "u",
        "flair": "f",
    }
    path.write_text(
        json.dumps(rec)
        + "\n"
        + json.dumps({**rec, "claim": "Antibodies enhance sars-cov-2", "label": "REFUTED"})
        + "\n",
        encoding="utf-8",
    )
    assert load_covidfact(path) == [
        Labelled("Antibodies neutralize sars-cov-2", "One. Two.", 1),
        Labelled("Antibodies enhance sars-cov-2", "One. Two.", 0),
    ]


def test_held_out_split_is_fixed_and_by_group(data_root: Path) -> None:
    rows = load_set("scifact", data_root)
    train, held = load_set("scifact", data_root, "train"), load_set("scifact", data_root, "heldout")
    assert sorted(train + held) == sorted(rows) and not set(train) & set(held)
    assert [split_of("scifact", r) for r in rows] == [split_of("scifact", r) for r in rows], "a hash, no state"
    # Pairs of one claim fall on one side: a held-out claim was never seen in training.
    same_claim = [Labelled("One claim.", f"passage {i}", i % 2) for i in range(20)]
    assert len({split_of("healthver", r) for r in same_claim}) == 1
    # COVID-Fact groups by evidence, because its refuted claims are edits of supported ones on the same evidence.
    same_evidence = [Labelled(f"claim {i}", "One evidence passage.", i % 2) for i in range(20)]
    assert len({split_of("covidfact", r) for r in same_evidence}) == 1
    assert split_of("expertqa-medicine", rows[0]) == "heldout"
    with pytest.raises(InputError, match="unknown split"):
        load_set("scifact", data_root, "dev")


def test_held_out_share_on_the_real_sets(mirror: Path) -> None:
    root = mirror / "faithfulness"
    for name in ("healthver", "scifact", "covidfact"):
        held, total = len(load_set(name, root, "heldout")), len(load_set(name, root))
        assert 0.3 < held / total < 0.5, (name, held, total)
    medicine = set(load_set("expertqa-medicine", root))
    assert medicine == set(load_set("expertqa-medicine", root, "heldout"))
    assert not medicine & set(load_set("expertqa", root, "train")), "no medicine claim is trained on"


def test_dedupe_drops_pairs_labelled_both_ways() -> None:
    rows = [Labelled("c", "p", 1), Labelled("c", "p", 0), Labelled("d", "p", 1), Labelled("d", "p", 1)]
    assert dedupe(rows) == [Labelled("d", "p", 1)]


# --------------------------------------------------------------------------- judges and the command


def test_judge_registry() -> None:
    assert {"lexical", "embedding"} <= set(JUDGES)
    judge = make_judge("lexical", threshold=0.3)
    assert isinstance(judge, LexicalJudge) and judge.threshold == 0.3
    with pytest.raises(InputError, match="unknown judge 'nope'"):
        make_judge("nope")
    faithfulness = {"expertqa-medicine", "expertqa", "healthver", "scifact", "covidfact"}
    nli = {"snli", "sick", "rte", "fever", "climate-fever", "check-covid", "healthfc", "nli4ct"}
    assert faithfulness | nli == set(SETS)


class _ScriptedJudge:
    """Scores by whether the claim's last word is in the passage; NaN for claims saying "broken"."""

    name = "scripted"
    threshold = 0.5

    def fingerprint(self) -> str:
        return "scripted-v1"

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        out = [math.nan if "broken" in c else float(c.split()[-1] in p) for c, p in pairs]
        return np.array(out, dtype=np.float32)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "faithfulness"
    (root / "scifact_rte").mkdir(parents=True)
    rows = [f"{i}\tThe passage mentions word{i}.\tClaim about word{i}\tentailment" for i in range(10)]
    rows += [f"{i}\tThe passage mentions other{i}.\tClaim about word{i}\tnot_entailment" for i in range(10, 16)]
    rows += ["16\tAnything.\tA broken claim\tnot_entailment"]
    (root / "scifact_rte" / "train.tsv").write_text("index\tsentence1\tsentence2\tentailment\n" + "\n".join(rows))
    return root


def test_calibrate_rows(data_root: Path) -> None:
    [row] = calibrate(_ScriptedJudge(), ["scifact"], limit=100, seed=0, root=data_root, split="all")
    assert set(row) == set(ROW_FIELDS)
    assert row["n"] == 16 and row["n_failed"] == 1 and row["n_available"] == 17 and row["n_supported"] == 10
    assert row["auroc"] == pytest.approx(1.0)
    assert row["balanced_accuracy"] == pytest.approx(1.0)
    assert row["f1_unsupported"] == pytest.approx(1.0)
    assert row["pairs_per_s"] > 0
    with pytest.raises(InputError, match="unknown set"):
        calibrate(_ScriptedJudge(), ["nope"], root=data_root)


def test_command_prints_table_and_writes_json(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs" / "cal.json"
    cache = tmp_path / "cache.sqlite"
    args = ["--judge", "lexical", "--sets", "scifact", "--limit", "8", "--data", str(data_root), "--json", str(out)]
    args += ["--split", "all"]
    assert main([*args, "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert "AUROC" in printed and "scifact" in printed and "lexical" in printed
    payload = json.loads(out.read_text())
    assert payload["settings"]["limit"] == 8 and payload["rows"][0]["n"] == 8
    assert cache.is_file()
    assert main(["--counts", "--sets", "scifact", "--data", str(data_root)]) == 0
    assert "17" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--judge", "lexical", "--sets", "nope", "--data", str(data_root)])


# --------------------------------------------------------------------------- real data, real model


@pytest.mark.slow
def test_embedding_judge_on_real_healthver(mirror: Path, real_embedder, splitter) -> None:  # type: ignore[no-untyped-def]
    # HealthVer, not SciFact: on SciFact RTE the embedding judge is at chance (AUROC 0.50 over all 562 pairs:
    # its unsupported claims contradict their own rationale sentence), so "> 0.5" there would be sampling luck.
    from pipeline.judge import EmbeddingJudge

    judge = EmbeddingJudge(embedder=real_embedder, splitter=splitter)
    rows = calibrate(judge, ["healthver"], limit=40, seed=0, root=mirror / "faithfulness", split="all")
    [row] = rows
    three_way = {"contradiction_recall", "accuracy_3way"}  # None: the embedding judge reads two ways
    assert set(row) == set(ROW_FIELDS) and all(row[f] is not None for f in set(ROW_FIELDS) - three_way)
    assert row["contradiction_recall"] is None and row["accuracy_3way"] is None
    assert row["n"] == 40 and row["n_available"] > 1000 and row["judge"] == "embedding"
    assert row["auroc"] > 0.5
    for field in ("balanced_accuracy", "f1_unsupported", "threshold", "pairs_per_s"):
        assert math.isfinite(row[field])
    printed = table(rows)
    assert "healthver" in printed and "embedding" in printed
