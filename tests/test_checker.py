"""The trained claim checker: windows, synthetic edits, the training path (a few real steps), the bundled weights."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from eval.calibrate import SETS, load_set
from eval.train_judge import (
    _FLIPS,
    TrainConfig,
    _change_number,
    _negate,
    _swap_words,
    augment_human,
    dev_split,
    human_pairs,
    synthetic_pairs,
    train,
)
from pipeline.errors import InputError
from pipeline.judge import TrainedJudge, make_judge
from pipeline.judge.checker import WEIGHTS, CheckerConfig, ClaimChecker, load_base, passage_windows, sentences


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return load_base()[1]


def test_sentences() -> None:
    assert sentences("Aspirin works. It is cheap!\n\nSee Fig. 2 below") == [
        "Aspirin works.",
        "It is cheap!",
        "See Fig. 2 below",
    ]
    assert sentences("   ") == []


def test_windows_fit_and_overlap(tokenizer) -> None:  # type: ignore[no-untyped-def]
    claim = "Capecitabine is an option for elderly patients."
    passage = " ".join(f"Sentence {i} talks about topic number {i} in some detail here." for i in range(60))
    windows = passage_windows(tokenizer, claim, passage, max_length=128, max_windows=100)
    assert len(windows) > 3
    budget = 128 - 3 - len(tokenizer.tokenize(claim))
    assert all(len(tokenizer.tokenize(w)) <= budget for w in windows)
    for a, b in zip(windows, windows[1:], strict=False):
        assert sentences(a)[-1] == sentences(b)[0], "consecutive windows share one sentence"
    assert " ".join(sentences(windows[0])[:1]) == "Sentence 0 talks about topic number 0 in some detail here."
    assert passage_windows(tokenizer, claim, "Short passage.", 128, 8) == ["Short passage."]


def test_windows_keep_those_that_share_the_claims_words(tokenizer) -> None:  # type: ignore[no-untyped-def]
    filler = " ".join(f"Filler sentence {i} says nothing of note at all today." for i in range(80))
    passage = filler + " Capecitabine is preferred in elderly patients with colorectal cancer. " + filler
    claim = "Capecitabine suits elderly patients with colorectal cancer."
    windows = passage_windows(tokenizer, claim, passage, max_length=96, max_windows=2)
    assert len(windows) == 2 and any("Capecitabine is preferred" in w for w in windows)


def test_synthetic_edits() -> None:
    rng = random.Random(0)
    s = "Survival increased by 12 months in 40 patients."
    changed = _change_number(s, rng)
    assert changed is not None and changed != s
    assert [w for w in changed.split() if not w.isdigit()] == [w for w in s.split() if not w.isdigit()], "only a number"
    assert _negate("The drug is effective.", rng) == "The drug is not effective."
    assert _negate("The drug is not effective.", rng) == "The drug is effective."
    assert _negate("There was no benefit.", rng) == "There was benefit."
    assert _swap_words("Risk was higher in women.", _FLIPS, rng) == "Risk was lower in women."
    assert _change_number("No digits here.", rng) is None


def test_synthetic_pairs_from_chunks() -> None:
    text = (
        "Adjuvant chemotherapy increased overall survival by 5 percent in stage III colon cancer. "
        "Patients older than 70 years did not benefit from oxaliplatin. "
        "Capecitabine is an oral alternative to intravenous fluorouracil for adjuvant therapy."
    )
    chunks = [
        {"id": f"c{i}", "doc_id": f"d{i // 2}", "text": text.replace("5 percent", f"{i + 2} percent")}
        for i in range(40)
    ]
    pairs = synthetic_pairs(chunks, 40, seed=0)
    assert len(pairs) == 40
    assert pairs == synthetic_pairs(chunks, 40, seed=0), "seeded"
    for p in pairs:
        kind = p.source.split(":")[1]
        assert p.label == (kind == "supported")
        if kind == "supported":
            assert p.claim in p.passage
        else:
            assert p.claim not in p.passage, p
    assert {p.source for p in pairs} >= {"synthetic:supported", "synthetic:number", "synthetic:negation"}


def test_training_never_sees_a_held_out_claim(mirror: Path) -> None:
    root = mirror / "faithfulness"
    examples = human_pairs(("expertqa", "healthver", "scifact", "covidfact"), root)
    held_out = {" ".join(r.claim.lower().split()) for name in SETS for r in load_set(name, root, "heldout")}
    assert examples and not {" ".join(e.claim.lower().split()) for e in examples} & held_out
    train_part, dev = dev_split(examples)
    assert len(dev) > 0.05 * len(examples) and {e.source for e in dev} == {e.source for e in examples}


def test_augment_human_edits_supported_claims_only() -> None:
    from eval.train_judge import Example

    passage = "Aspirin lowered the risk of stroke by 20 percent in adults. Bleeding was more common."
    rows = [
        Example("Aspirin lowered the risk of stroke by 20 percent in adults.", passage, 1, "healthver"),
        Example("Aspirin is not linked to bleeding.", passage, 0, "healthver"),
        Example("Bleeding was more common with aspirin.", passage, 1, "scifact"),
        Example("Drug 3 lowered pressure.", "Drug 3 lowered pressure.", 1, "synthetic:supported"),
    ]
    edited = augment_human(rows, 1.0, seed=0)
    assert edited == augment_human(rows, 1.0, seed=0), "seeded"
    assert len(edited) == 2 and all(e.label == 0 and e.passage == passage for e in edited)
    sources = {rows[0].claim: "healthver", rows[2].claim: "scifact"}
    for e in edited:
        source, kind = e.source.split(":")
        assert kind in ("number", "direction", "population", "negation", "term") and source in sources.values()
        assert e.claim not in sources, "the claim was changed"
    assert augment_human(rows, 0.0, seed=0) == []


def test_training_keeps_the_best_epoch(mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripted development figures (epoch 1 best): the saved weights are epoch 1's, not the last epoch's."""
    import hashlib

    import eval.train_judge as tj

    seen: list[str] = []

    def scripted(checker, dev_set):  # type: ignore[no-untyped-def]
        state = checker.model.state_dict()
        seen.append(
            hashlib.sha256(
                b"".join(state[k].half().numpy().tobytes() for k in sorted(state) if tj.trainable(k))
            ).hexdigest()
        )
        return {"scifact": [0.9, 0.5][len(seen) - 1], "mean": [0.9, 0.5][len(seen) - 1]}

    monkeypatch.setattr(tj, "_human_dev_auroc", scripted)
    out = tmp_path / "w"
    config = TrainConfig(
        epochs=2, batch_size=64, synthetic=0, sets=("scifact",), bf16=False, max_length=64, select_epoch=True
    )
    record = train(out, config, index=None, root=mirror / "faithfulness", blend=False)
    assert record["kept_epoch"] == 1 and len(seen) == 2 and seen[0] != seen[1]
    from safetensors.torch import load_file

    saved = load_file(str(out / "model.safetensors"))
    assert hashlib.sha256(b"".join(saved[k].numpy().tobytes() for k in sorted(saved))).hexdigest() == seen[0]


def _toy_index(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    rows = [
        {
            "id": f"c{i}",
            "doc_id": f"d{i // 3}",
            "text": f"Drug {i} lowered blood pressure by {i + 3} mmHg in adults. It is not approved for children.",
        }
        for i in range(30)
    ]
    (folder / "chunks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def trained_folder(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real optimiser steps on real data: the path `medcite judge train` takes, cut short."""
    out = tmp_path_factory.mktemp("checker")
    index = _toy_index(tmp_path_factory.mktemp("idx") / "toy")
    config = TrainConfig(
        max_steps=3, batch_size=4, synthetic=24, sets=("scifact",), bf16=False, augment=1.0, select_epoch=True
    )
    record = train(out, config, index=index, root=mirror / "faithfulness")
    assert record["steps"] == 3 and record["pairs"]["scifact"] > 100 and record["pairs"]["synthetic"] > 0
    assert record["pairs_by_source"]["scifact:negation"] > 0, "edited copies of supported claims"
    assert record["kept_epoch"] == 1 and [e["epoch"] for e in record["epochs"]] == [1]
    assert 0 <= record["epochs"][0]["dev_auroc"]["scifact"] <= 1
    return out


def test_trained_folder_loads_as_a_judge(trained_folder: Path) -> None:
    config = CheckerConfig.read(trained_folder)
    assert 0 <= config.threshold <= 1 and config.training["config"]["seed"] == 0
    judge = make_judge("trained", path=trained_folder, bf16=False)
    pairs = [("Aspirin reduces fever.", "Aspirin is used to reduce fever."), ("x", "long passage. " * 400), ("", "p")]
    scores = judge.score(pairs)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1)) and scores[2] == 0
    assert np.array_equal(scores, judge.score(pairs)), "deterministic"
    assert judge.fingerprint().startswith("checker-v1:")


def test_blend_judge_reads_its_coefficients(trained_folder: Path) -> None:
    blend = CheckerConfig.read(trained_folder).blend
    assert blend is not None and len(blend["coef"]) == 3 and blend["features"][0] == "checker_logit"
    judge = make_judge("blend", path=trained_folder)
    pairs = [("Aspirin reduces fever.", "Aspirin is used to reduce fever."), ("Zebras fly.", "Aspirin is cheap.")]
    scores = judge.score(pairs)
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))
    assert judge.threshold == blend["threshold"] and judge.fingerprint().startswith("blend-v1:checker-v1:")


def test_fit_logistic_recovers_a_known_model() -> None:
    from eval.train_judge import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = (rng.random(4000) < p).astype(float)
    coef, intercept = fit_logistic(x, y, l2=0.0)
    assert coef == pytest.approx([2.0, -1.0], abs=0.2) and intercept == pytest.approx(0.5, abs=0.15)


def test_damaged_weights_folders(trained_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no trained claim checker here"):
        ClaimChecker(tmp_path)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_folder, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="is not the .* that checker.json records"):
        ClaimChecker(broken)
    cfg = json.loads((broken / "checker.json").read_text())
    cfg["weights_sha256"] = ""  # a folder from before the hash was recorded is still read, and still checked
    (broken / "checker.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="not a readable safetensors file"):
        ClaimChecker(broken)
    other = tmp_path / "other"
    shutil.copytree(trained_folder, other)
    cfg = json.loads((other / "checker.json").read_text())
    cfg["base_sha256"] = "0" * 64
    (other / "checker.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="trained on base model 000000000000"):
        ClaimChecker(other)
    cfg["format"] = 99
    (other / "checker.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="newer than this medcite reads"):
        ClaimChecker(other)


_PASSAGE = (
    "In patients with stage III colon cancer, six months of adjuvant FOLFOX improved 3-year disease-free "
    "survival compared with fluorouracil alone (78% vs 73%). Oxaliplatin did not improve survival in "
    "patients aged 70 years or older. Capecitabine may replace infusional fluorouracil."
)
_bundled = pytest.mark.skipif(not (WEIGHTS / "checker.json").is_file(), reason="no bundled checker weights")


@_bundled
def test_bundled_checker_separates_edits_from_their_source() -> None:
    """The committed weights: a claim close to its source sentence passes, the same claim edited does not."""
    judge = TrainedJudge()
    supported = [
        "Oxaliplatin did not improve survival in patients aged 70 or older.",
        "Capecitabine may replace infusional fluorouracil.",
    ]
    unsupported = [
        "Oxaliplatin improved survival in patients aged 70 or older.",  # negation removed
        "Bevacizumab may replace infusional fluorouracil.",  # drug swapped
        "Capecitabine may replace oxaliplatin in patients aged 70 years or older.",  # stitched from two sentences
    ]
    good = judge.score([(c, _PASSAGE) for c in supported])
    bad = judge.score([(c, _PASSAGE) for c in unsupported])
    assert (good >= judge.threshold).all(), good
    assert (bad < judge.threshold).all(), bad


@_bundled
def test_bundled_checker_reads_the_edits_as_contradictions() -> None:
    """The three-way head: a removed negation, a swapped drug, a changed number and stage, and an added "never"
    are read as contradicted by the passage, not merely unsupported."""
    judge = TrainedJudge()
    assert judge.three_way
    edited = [
        "Oxaliplatin improved survival in patients aged 70 or older.",
        "Bevacizumab may replace infusional fluorouracil.",
        "Adjuvant FOLFOX improved disease-free survival by 50% in stage II colon cancer.",
        "Capecitabine must never replace infusional fluorouracil.",
    ]
    pairs = [(c, _PASSAGE) for c in edited]
    assert (judge.score(pairs) < judge.threshold).all()
    assert (judge.relations(pairs).argmax(axis=1) == 1).all(), judge.relations(pairs)


@_bundled
def test_bundled_checker_accepts_a_paraphrase() -> None:
    # Trained with verbatim sentences as the only supported synthetic pairs, an earlier checker scored this
    # paraphrase 0.02: it had learned to want the source's wording. Reworded supported pairs fixed that.
    judge = TrainedJudge()
    claim = (
        "In stage III colon cancer, adjuvant FOLFOX improved disease-free survival compared with fluorouracil alone."
    )
    assert judge.score([(claim, _PASSAGE)])[0] >= judge.threshold


@_bundled
@pytest.mark.xfail(
    strict=True,
    reason="known weakness of the three-way checker: 'worsened' for the source's 'improved' scores 0.56, above its "
    "0.32 threshold (the one-output checker before it refused it); its relations() read it as contradicted",
)
def test_bundled_checker_refuses_a_flipped_direction() -> None:
    judge = TrainedJudge()
    claim = (
        "In stage III colon cancer, adjuvant FOLFOX worsened disease-free survival compared with fluorouracil alone."
    )
    assert judge.score([(claim, _PASSAGE)])[0] < judge.threshold


def test_relation_loss_counts_a_bare_unsupported_label_as_either_kind() -> None:
    import torch

    from eval.train_judge import _TARGETS, relation_loss

    logits = torch.tensor([[0.0, 5.0, -5.0], [0.0, -5.0, 5.0], [5.0, 0.0, 0.0]])
    unsupported = torch.tensor([_TARGETS[""]] * 3)
    low, high = relation_loss(logits[:2], unsupported[:2]), relation_loss(logits[2:], unsupported[2:])
    assert float(low) < 0.01 < 2.0 < float(high), "contradicted and nei both satisfy 'not supported'"
    exact = relation_loss(logits[:1], torch.tensor([_TARGETS["nei"]]))
    assert float(exact) > 9.0, "but a nei label is not satisfied by a contradiction"


def test_the_most_decisive_window_speaks_for_the_pair() -> None:
    from pipeline.crossencoder import _decisive

    z = np.log(
        np.array(
            [
                [0.70, 0.10, 0.20],  # pair 0: one window supports...
                [0.10, 0.85, 0.05],  # ...another contradicts more strongly: contradicted
                [0.60, 0.30, 0.10],  # pair 1: supports more than any window contradicts
                [0.20, 0.40, 0.40],
            ]
        )
    )
    out = _decisive(3, [0, 0, 1, 1], z)
    assert out[0].argmax() == 1 and out[1].argmax() == 0
    assert out[2].tolist() == [0.0, 0.0, 1.0], "no window: not enough information"


def test_staged_training_saves_and_resumes_each_stage(mirror: Path, tmp_path: Path) -> None:
    from eval.train_judge import checker_recipe

    index = _toy_index(tmp_path / "toy")
    config = checker_recipe(
        stages=("ours", "ours"), stage_epochs=(1, 1), max_steps=2, batch_size=4, synthetic=24, bf16=False
    )
    out = tmp_path / "staged"
    first = train(out, config, index=index, root=mirror / "faithfulness", blend=False)
    assert [s["stage"] for s in first["stages"]] == ["ours", "ours"] and first["steps"] == 4
    assert (out / "stages" / "1-ours" / "model.safetensors").is_file()
    judge = TrainedJudge(out)
    assert judge.three_way and CheckerConfig.read(out).outputs == 3
    rel = judge.relations([("Drug 1 lowered blood pressure.", "Drug 1 lowered blood pressure by 4 mmHg."), ("", "x")])
    assert rel.shape == (2, 3) and np.allclose(rel.sum(axis=1), 1.0, atol=1e-4) and rel[1].tolist() == [0, 0, 1]
    weights = (out / "model.safetensors").read_bytes()
    again = train(out, config, index=index, root=mirror / "faithfulness", blend=False, resume=True)
    assert again["steps"] == 0 and again["stages"] == first["stages"], "both stages reused"
    assert (out / "model.safetensors").read_bytes() == weights
