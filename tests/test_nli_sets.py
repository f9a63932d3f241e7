"""eval.nli_sets: each loader on a small file in its real format; the split by group; three-way figures."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eval.calibrate import SETS, calibrate, set_names, split_of, three_way_figures
from eval.labelled import Labelled
from eval.nli_sets import (
    detokenize,
    load_check_covid,
    load_climate_fever,
    load_fever,
    load_healthfc,
    load_nli4ct,
    load_rte,
    load_sick,
    load_snli,
)
from pipeline.errors import InputError
from tests.fakes import ContradictionJudge, KeywordJudge


def test_snli_reads_both_files_and_keeps_dev_for_training(tmp_path: Path) -> None:
    for part, rows in {
        "dev": [("A man sleeps .", "A person is asleep .", "entailment")],
        "test": [("Two dogs do n't run .", "Dogs are running .", "contradiction"), ("A cat .", "A pet .", "neutral")],
    }.items():
        for n, k in (("s1", 0), ("s2", 1), ("labels", 2)):
            (tmp_path / f"{n}.{part}").write_text("".join(f"{r[k]}\n" for r in rows))
    rows = load_snli(tmp_path)
    assert [(r.claim, r.passage, r.label, r.relation) for r in rows] == [
        ("A person is asleep.", "A man sleeps.", 1, "supported"),
        ("Dogs are running.", "Two dogs don't run.", 0, "contradicted"),
        ("A pet.", "A cat.", 0, "nei"),
    ]
    assert split_of("snli", rows[0]) == "train", "SNLI dev is always training data"
    assert rows[1].group == "Two dogs don't run."


def test_detokenize() -> None:
    assert detokenize("He said `` hi '' ( loudly ) , did n't he ?") == 'He said "hi" (loudly), didn\'t he?'


def test_sick_gives_both_directions(tmp_path: Path) -> None:
    head = "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tentailment_AB\tentailment_BA\t"
    head += "sentence_A_original\tsentence_B_original\tsentence_A_dataset\tsentence_B_dataset\tSemEval_set\n"
    row = "1\tA boy runs\tA kid runs\tENTAILMENT\t4.5\tA_entails_B\tB_neutral_A\tBoys run.\tBoys run.\tF\tF\tTRAIN\n"
    (tmp_path / "SICK.txt").write_text(head + row)
    rows = load_sick(tmp_path / "SICK.txt")
    assert [(r.claim, r.passage, r.relation, r.group) for r in rows] == [
        ("A kid runs", "A boy runs", "supported", "Boys run."),
        ("A boy runs", "A kid runs", "nei", "Boys run."),
    ]


def test_rte_and_fever(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text(
        'index\tsentence1\tsentence2\tlabel\n1\tThe "pope" died.\tThe pope is dead.\tentailment\n'
    )
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n2\tIt rained.\tIt snowed.\tnot_entailment\n")
    rows = load_rte(tmp_path)
    assert [(r.claim, r.label, r.relation) for r in rows] == [
        ("The pope is dead.", 1, "supported"),
        ("It snowed.", 0, ""),
    ]
    assert rows[1].relation3 == "", "not entailed: contradicted or not enough information, RTE does not say"
    (tmp_path / "dev.raw.input0").write_text("Fox released Soul Food .\nIt is red .\n")
    (tmp_path / "dev.raw.input1").write_text("Fox released the film.\nIt is blue.\n")
    (tmp_path / "dev.label").write_text("entailment\nnot_entailment\n")
    rows = load_fever(tmp_path)
    assert [(r.claim, r.passage, r.label) for r in rows] == [
        ("Fox released the film.", "Fox released Soul Food.", 1),
        ("It is blue.", "It is red.", 0),
    ]
    (tmp_path / "dev.label").write_text("entailment\n")
    with pytest.raises(InputError, match="lines"):
        load_fever(tmp_path)


def test_climate_fever_reads_each_evidence_with_its_own_label(tmp_path: Path) -> None:
    evidences = [
        {"evidence_label": "SUPPORTS", "evidence": "Ice is melting."},
        {"evidence_label": "REFUTES", "evidence": "Ice is growing."},
        {"evidence_label": "NOT_ENOUGH_INFO", "evidence": "Bears eat fish."},
    ]
    path = tmp_path / "c.csv"
    path.write_text('claim_id,claim,claim_label,evidences\n0,Ice melts,SUPPORTS,"' + repr(evidences) + '"\n')
    rows = load_climate_fever(path)
    assert [(r.passage, r.relation, r.group) for r in rows] == [
        ("Ice is melting.", "supported", "0"),
        ("Ice is growing.", "contradicted", "0"),
        ("Bears eat fish.", "nei", "0"),
    ]


def test_check_covid_uses_the_evidence_sentences_of_its_abstract(tmp_path: Path) -> None:
    (tmp_path / "corpus.json").write_text(json.dumps({"cord_id": "x1", "abstract": ["Intro.", "Tests take 30 min."]}))
    claims = [
        {"claim": "Tests take seconds.", "cord_id": "x1", "label": "REFUTE", "evidence_set": [{"sent_index": 1}]},
        {"claim": "Tests exist.", "cord_id": "x1", "label": "NOTENOUGHINFO", "evidence_set": [{"sent_index": 0}]},
        {"claim": "Lost.", "cord_id": "zz", "label": "SUPPORT", "evidence_set": [{"sent_index": 0}]},
    ]
    (tmp_path / "Check-COVID_all.json").write_text("".join(json.dumps(c) + "\n" for c in claims))
    rows = load_check_covid(tmp_path)
    assert [(r.claim, r.passage, r.relation, r.group) for r in rows] == [
        ("Tests take seconds.", "Tests take 30 min.", "contradicted", "x1"),
        ("Tests exist.", "Intro.", "nei", "x1"),
    ]


def test_healthfc(tmp_path: Path) -> None:
    path = tmp_path / "Datensatz.csv"
    path.write_text(
        "\ufeffen_claim,en_explanation,en_top_sentences,label\n"
        "Do masks help?,x,Masks slow the spread.,0\nDoes garlic cure colds?,x,No study shows it.,1\nBad,x,y,7\n",
        encoding="utf-8",
    )
    rows = load_healthfc(path)
    assert [(r.claim, r.relation) for r in rows] == [
        ("Do masks help?", "supported"),
        ("Does garlic cure colds?", "nei"),
    ]


def test_nli4ct_reads_trials_from_the_zip_and_groups_by_trial(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "training_data.zip", "w") as z:
        z.writestr("CT json/NCT1.json", json.dumps({"Results": ["Results 1:", "  Response 40%"]}))
        z.writestr("CT json/NCT2.json", json.dumps({"Results": ["Response 20%"]}))
        statement = {"Type": "Comparison", "Section_id": "Results", "Primary_id": "NCT1", "Secondary_id": "NCT2"}
        z.writestr(
            "train.json",
            json.dumps({"a": {**statement, "Statement": "The primary did better.", "Label": "Entailment"}}),
        )
        z.writestr("dev.json", json.dumps({}))
        z.writestr("__MACOSX/._train.json", "junk")
    test = {
        "b": {
            "Type": "Single",
            "Section_id": "Results",
            "Primary_id": "NCT2",
            "Statement": "Response was 90%.",
            "Label": "Contradiction",
        }
    }
    (tmp_path / "gold_practice_test.json").write_text(json.dumps(test))
    rows = load_nli4ct(tmp_path)
    assert rows[0].passage == "Primary trial: Results 1:\n\nResponse 40%\n\nSecondary trial: Response 20%"
    assert [(r.relation, r.group) for r in rows] == [("supported", "NCT1"), ("contradicted", "NCT2")]


def test_set_names_take_aliases_and_refuse_unknown_sets() -> None:
    assert set_names("default") == ["expertqa-medicine", "healthver", "scifact"]
    assert set_names("general,snli") == ["snli", "sick", "rte", "fever"]
    assert set(set_names("all")) <= set(SETS) and "nli4ct" in set_names("medical")
    with pytest.raises(InputError, match="unknown set"):
        set_names("snli,mnli")


def test_split_follows_the_group_not_the_claim() -> None:
    rows = [Labelled(f"claim {i}", "p", 1, "supported", "trial-7") for i in range(30)]
    assert len({split_of("nli4ct", r) for r in rows}) == 1, "one trial, one side"
    assert {split_of("nli4ct", r._replace(group=f"trial-{i}")) for i, r in enumerate(rows)} == {"train", "heldout"}


def test_three_way_figures() -> None:
    pairs = [("never rains here", "rains here"), ("rains here", "rains here"), ("snows", "rains")]
    rel = ["contradicted", "supported", "nei"]
    figures = three_way_figures(ContradictionJudge(), pairs, rel)
    assert figures == {"n_contradicted": 1, "contradiction_recall": 1.0, "accuracy_3way": 1.0}
    assert three_way_figures(ContradictionJudge(), pairs, ["contradicted", "supported", ""])["accuracy_3way"] is None
    two_way = three_way_figures(KeywordJudge(), pairs, rel)
    assert two_way["contradiction_recall"] is None and two_way["n_contradicted"] == 1


def test_calibrate_reports_contradiction_recall_on_a_three_way_set(tmp_path: Path) -> None:
    folder = tmp_path / "nli" / "esnli"
    folder.mkdir(parents=True)
    premises = [f"sunny weather {i} rains here" for i in range(40)]  # every claim word is in its premise
    claims = [f"never rains here {i}" if i % 2 else f"rains here {i}" for i in range(40)]
    for part in ("dev", "test"):
        (folder / f"s1.{part}").write_text("".join(f"{part} {p}\n" for p in premises))
        (folder / f"s2.{part}").write_text("".join(c + "\n" for c in claims))
        labels = ("contradiction" if i % 2 else "entailment" for i in range(40))
        (folder / f"labels.{part}").write_text("".join(f"{y}\n" for y in labels))
    (row,) = calibrate(ContradictionJudge(), ["snli"], None, root=tmp_path)
    assert row["n"] > 0 and row["n_contradicted"] > 0
    assert row["contradiction_recall"] is not None and 0 <= row["contradiction_recall"] <= 1
    assert np.isfinite(row["auroc"])
