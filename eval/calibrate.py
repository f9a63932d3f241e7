"""Calibrate support judges against human faithfulness labels: AUROC, and a threshold chosen out of sample.

Each labelled set is a list of ``(claim, passage, label)`` with label 1 = supported and 0 = not fully
supported, read from the data mirror (``faithfulness/`` beside ``../shared/data``; never copied here)::

    python -m eval.calibrate --judge lexical                       # expertqa-medicine, healthver, scifact
    python -m eval.calibrate --judge embedding --limit 400 --json runs/calibrate-embedding.json
    python -m eval.calibrate --judge embedding --cache runs/judge-cache.sqlite
    python -m eval.calibrate --counts --sets expertqa,expertqa-medicine,healthver,scifact,covidfact

Per set it samples up to ``--limit`` pairs (seeded, stratified by label), scores them in one call and
reports AUROC over the whole sample, which needs no threshold. The threshold is then chosen on one
half of a seeded, stratified split (the one that maximises balanced accuracy there) and balanced
accuracy and F1 of the *unsupported* class (label 0 as the positive class, the errors a citation
checker exists to catch) are measured on the other half, and vice versa; the table gives the mean of
the two held-out figures and of the two chosen thresholds. pairs/s is the wall clock of the scoring
call (models are loaded before it by a one-pair warm-up; the machine may be shared).

Sets: ``expertqa-medicine`` (ExpertQA validation, field "Healthcare / Medicine"), ``expertqa`` (all
fields, for training), ``healthver`` (HealthVer dev), ``scifact`` (SciFact RTE train) and
``covidfact`` (COVID-Fact, for training; most refuted claims are one-word edits of true ones).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.labelled import Labelled, as_list, dedupe, read_jsonl
from eval.nli_sets import LOADERS as NLI_LOADERS
from pipeline.cite import parse_citations
from pipeline.corpus import default_mirror
from pipeline.errors import InputError
from pipeline.judge import JUDGES, RELATIONS, CachedJudge, Judge, Pair, make_judge, relations_of

log = logging.getLogger("eval.calibrate")

DEFAULT_SETS = ("expertqa-medicine", "healthver", "scifact")
DEFAULT_LIMIT = 400
MEDICINE = "Healthcare / Medicine"
EXPERTQA_FILES = ("expertqa/domain_val.jsonl", "expertqa/rand_val.jsonl")
HEALTHVER_FILE = "healthver/healthver_dev.csv"
SCIFACT_FILE = "scifact_rte/train.tsv"
COVIDFACT_FILE = "covidfact/COVIDFACT_dataset.jsonl"


# --------------------------------------------------------------------------- loaders

# ExpertQA "support": Complete means the evidence fully supports the claim; the rest do not.
_EXPERTQA_SUPPORT = {"Complete": 1, "Missing": 0, "Incomplete": 0, "Partial": 0}
_EXPERTQA_LEFT_OUT = {"", "N/A"}
_HEALTHVER_LABEL = {"Supports": 1, "Refutes": 0, "Neutral": 0}
_SCIFACT_LABEL = {"entailment": 1, "not_entailment": 0}
_COVIDFACT_LABEL = {"SUPPORTED": 1, "REFUTED": 0}
# "[3] https://example.org/page" on a line of its own: the source header ExpertQA puts before each passage.
# One token after the number, so web text that happens to start with a footnote ("[5] The ...") stays.
_EVIDENCE_HEADER = re.compile(r"^[ \t]*\[\d+\][ \t]+\S+[ \t]*(?:\n|$)", re.M)


def _clean_claim(text: str) -> str:
    """The claim without its inline ``[n]`` markers and with its whitespace collapsed."""
    return " ".join(parse_citations(text, 0).text.split())


def evidence_passage(evidence: object) -> str:
    """ExpertQA evidence (a list or its repr) as one passage: "[n] URL" header lines removed, texts joined.

    Returns "" when no evidence item has any text beyond its header (a citation to a page with no quote).
    """
    texts = []
    for item in as_list(evidence):
        if isinstance(item, str) and (text := _EVIDENCE_HEADER.sub("", item).strip()):
            texts.append(text)
    return "\n\n".join(dict.fromkeys(texts))  # a source cited twice is quoted once


def load_expertqa(paths: Path | Sequence[Path], *, medicine_only: bool = False) -> list[Labelled]:
    """ExpertQA claims with the evidence their answer cited, labelled by the expert's ``support`` judgment.

    Complete -> 1; Missing, Incomplete, Partial -> 0; N/A or empty -> left out. Claims whose evidence
    has no text (only "[n] URL" headers, or none: every "Missing" claim) are left out, so label 0 here
    means the cited text is there but does not fully support the claim.

    Args:
        paths: one or more ExpertQA ``*.jsonl`` files (``answers -> system -> claims``).
        medicine_only: keep only questions whose ``metadata.field`` is "Healthcare / Medicine".
    """
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Labelled] = []
    skipped: Counter[str] = Counter()
    for path in map(Path, files):
        for lineno, record in read_jsonl(path):
            if medicine_only and (record.get("metadata") or {}).get("field") != MEDICINE:
                continue
            for system, answer in (record.get("answers") or {}).items():
                for i, claim in enumerate((answer or {}).get("claims") or []):
                    support = str(claim.get("support") or "").strip()
                    if support in _EXPERTQA_LEFT_OUT:
                        skipped["support N/A or empty"] += 1
                        continue
                    if support not in _EXPERTQA_SUPPORT:
                        log.warning(
                            "%s:%d: %s claim %d: unknown support %r; claim skipped", path, lineno, system, i, support
                        )
                        skipped["unknown support"] += 1
                        continue
                    text = _clean_claim(str(claim.get("claim_string") or ""))
                    passage = evidence_passage(claim.get("evidence"))
                    if not text or not passage:
                        skipped["no claim or evidence text"] += 1
                        continue
                    out.append(Labelled(text, passage, _EXPERTQA_SUPPORT[support]))
    name = "expertqa-medicine" if medicine_only else "expertqa"
    if skipped:
        log.info("%s: left out %s", name, ", ".join(f"{n} ({why})" for why, n in skipped.items()))
    return dedupe(out, name)


def _load_table(
    path: Path, *, delimiter: str, claim: str, passage: str, label: str, labels: dict[str, int]
) -> list[Labelled]:
    out: list[Labelled] = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = {claim, passage, label} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            value = (row[label] or "").strip()
            c, p = (row[claim] or "").strip(), (row[passage] or "").strip()
            if value not in labels:
                log.warning(
                    "%s:%d: unknown label %r (expected one of %s); row skipped", path, lineno, value, sorted(labels)
                )
            elif not c or not p:
                log.warning("%s:%d: empty claim or passage; row skipped", path, lineno)
            else:
                out.append(Labelled(c, p, labels[value]))
    return dedupe(out, path.name)


def load_healthver(path: Path) -> list[Labelled]:
    """HealthVer (columns id, evidence, claim, label): Supports -> 1, Refutes and Neutral -> 0."""
    return _load_table(
        Path(path), delimiter=",", claim="claim", passage="evidence", label="label", labels=_HEALTHVER_LABEL
    )


def load_scifact(path: Path) -> list[Labelled]:
    """SciFact RTE (index, sentence1 = passage, sentence2 = claim, entailment): entailment -> 1, else 0."""
    return _load_table(
        Path(path), delimiter="\t", claim="sentence2", passage="sentence1", label="entailment", labels=_SCIFACT_LABEL
    )


def load_covidfact(path: Path) -> list[Labelled]:
    """COVID-Fact (claim, label, evidence sentences): SUPPORTED -> 1, REFUTED -> 0; passage = sentences joined."""
    path = Path(path)
    out: list[Labelled] = []
    for lineno, record in read_jsonl(path):
        value = str(record.get("label") or "").strip()
        claim = " ".join(str(record.get("claim") or "").split())
        passage = " ".join(s.strip() for s in as_list(record.get("evidence")) if isinstance(s, str) and s.strip())
        if value not in _COVIDFACT_LABEL:
            log.warning("%s:%d: unknown label %r; line skipped", path, lineno, value)
        elif not claim or not passage:
            log.warning("%s:%d: empty claim or evidence; line skipped", path, lineno)
        else:
            out.append(Labelled(claim, passage, _COVIDFACT_LABEL[value]))
    return dedupe(out, path.name)


# Name -> loader of the faithfulness folder. Calibration reports DEFAULT_SETS; the others are for training.
SETS: dict[str, Callable[[Path], list[Labelled]]] = {
    "expertqa-medicine": lambda root: load_expertqa([root / f for f in EXPERTQA_FILES], medicine_only=True),
    "expertqa": lambda root: load_expertqa([root / f for f in EXPERTQA_FILES]),
    "healthver": lambda root: load_healthver(root / HEALTHVER_FILE),
    "scifact": lambda root: load_scifact(root / SCIFACT_FILE),
    "covidfact": lambda root: load_covidfact(root / COVIDFACT_FILE),
    **NLI_LOADERS,
}
# Where the checker's training stages draw from (eval.train_judge); every set is also reported on its own.
GENERAL_NLI = ("snli", "sick", "rte", "fever")
CLAIM_SETS = ("climate-fever", "check-covid", "covidfact", "healthfc", "healthver", "scifact", "nli4ct")
MEDICAL_SETS = ("expertqa-medicine", "healthver", "scifact", "check-covid", "healthfc", "nli4ct")
# Every set with held-out pairs (not ExpertQA outside medicine, which is all training data), in table order.
REPORTED_SETS = (*DEFAULT_SETS, "covidfact", "check-covid", "healthfc", "nli4ct", "climate-fever", *GENERAL_NLI)
SET_ALIASES = {"all": REPORTED_SETS, "medical": MEDICAL_SETS, "general": GENERAL_NLI, "default": DEFAULT_SETS}


def set_names(text: str) -> list[str]:
    """Comma-separated set names, each a name in :data:`SETS` or an alias (all, medical, general, default)."""
    names: list[str] = []
    for part in (x.strip() for x in text.split(",")):
        if part:
            names.extend(SET_ALIASES.get(part, (part,)))
    if bad := [s for s in names if s not in SETS]:
        raise InputError(f"unknown set(s) {bad}; choose from {', '.join(sorted(SETS))} or {', '.join(SET_ALIASES)}")
    return list(dict.fromkeys(names))


def faithfulness_root() -> Path:
    """``faithfulness/`` in the data mirror; an :class:`InputError` that says what to do when there is none."""
    mirror = default_mirror()
    if mirror is None or not (mirror / "faithfulness").is_dir():
        raise InputError(f"no faithfulness data under the mirror ({mirror}); set MEDCITE_MIRROR or pass --data DIR")
    return mirror / "faithfulness"


def load_set(name: str, root: Path | None = None, split: str = "all") -> list[Labelled]:
    """One labelled set; ``split`` "train" or "heldout" keeps only that part (see :func:`split_of`)."""
    if name not in SETS:
        raise InputError(f"unknown set {name!r}; choose from {sorted(SETS)}")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {list(SPLITS)}")
    root = root or faithfulness_root()
    rows = SETS[name](root)
    if split == "all":
        return rows
    medicine = set(SETS["expertqa-medicine"](root)) if name == "expertqa" else set()
    return [r for r in rows if split_of(name, r, medicine) == split]


# --------------------------------------------------------------------------- held-out split

SPLITS = ("all", "train", "heldout")
HELD_OUT_PERMILLE = 400  # share of claim groups held out of training, per set
# What a group is: pairs that must fall on the same side, so a held-out claim was never seen in training.
# COVID-Fact's refuted claims are edits of its supported ones and share their evidence, so it groups by passage.
_GROUP_BY = {"healthver": "claim", "scifact": "claim", "covidfact": "passage"}


def split_of(name: str, row: Labelled, medicine: set[Labelled] | frozenset[Labelled] = frozenset()) -> str:
    """ "train" or "heldout": fixed by a hash of the pair's group, so every run and every judge agree.

    ExpertQA's medicine claims are all held out (they are what the checker is measured on) and its
    other fields are all training data: ``medicine`` holds the medicine rows when ``name`` is "expertqa".
    Elsewhere 40 % of the groups are held out: the row's own ``group`` where its loader sets one (a
    premise, a trial, an abstract; one starting with ``train:`` is always training data, as SNLI's dev
    file is), else its claim (COVID-Fact: its evidence passage).
    """
    if name == "expertqa-medicine":
        return "heldout"
    if name == "expertqa":
        return "heldout" if row in medicine else "train"
    if row.group.startswith("train:"):
        return "train"
    key = row.group or (row.passage if _GROUP_BY.get(name) == "passage" else row.claim)
    digest = hashlib.sha256(f"{name}\x00{' '.join(key.lower().split())}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_PERMILLE else "train"


# --------------------------------------------------------------------------- metrics


def _labels_scores(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-d and the same length")
    return y, s


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def auroc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Probability that a supported pair outscores an unsupported one (ties count half); NaN without both."""
    y, s = _labels_scores(labels, scores)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    return float((_average_ranks(s)[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(labels: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """Mean of the recall of each class present in ``labels``."""
    y, p = _labels_scores(labels, predicted)
    p_bool = p.astype(bool)
    recalls = [float((p_bool[y == cls] == cls).mean()) for cls in (False, True) if (y == cls).any()]
    return float(np.mean(recalls)) if recalls else math.nan


def f1_unsupported(labels: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """F1 with "not supported" (label 0) as the positive class; NaN when no pair is or is predicted unsupported."""
    y, p = _labels_scores(labels, predicted)
    true0, pred0 = ~y, ~p.astype(bool)
    tp = int((true0 & pred0).sum())
    denom = int(true0.sum()) + int(pred0.sum())
    return 2 * tp / denom if denom else math.nan


def choose_threshold(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """The threshold (score >= t means supported) with the highest balanced accuracy on these pairs.

    Candidates are the midpoints between consecutive distinct scores, plus the lowest score (all
    supported) and the next float above the highest (none supported). Among equally good ones the
    middle candidate is taken, so the choice leans to neither class.
    """
    y, s = _labels_scores(labels, scores)
    if not len(s):
        raise ValueError("no scores to choose a threshold from")
    u = np.unique(s)
    cands = np.concatenate([u[:1], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]])
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    # Supported pairs scoring below t are missed; unsupported pairs scoring below t are caught.
    tpr = 1 - np.searchsorted(pos, cands, side="left") / len(pos) if len(pos) else np.zeros(len(cands))
    tnr = np.searchsorted(neg, cands, side="left") / len(neg) if len(neg) else np.zeros(len(cands))
    ba = (tpr + tnr) / 2
    best = np.flatnonzero(ba >= ba.max() - 1e-12)
    return float(cands[best[len(best) // 2]])


def stratified_sample(labels: Sequence[int] | np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices (ascending) of up to ``limit`` items keeping each label's share (largest remainder)."""
    y = np.asarray(labels)
    if limit is None or limit >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * limit / len(y)
    take = np.floor(quota).astype(int)
    for k in np.argsort(-(quota - take), kind="stable")[: limit - int(take.sum())]:
        take[k] += 1
    picked = [
        rng.choice(np.flatnonzero(y == c), size=int(t), replace=False) for c, t in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


def stratified_halves(labels: Sequence[int] | np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets covering everything, each label split evenly between them (within one)."""
    y = np.asarray(labels)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]) if len(y) else y
    # Dealing the class-grouped order alternately keeps both sizes and both class counts within one.
    return np.sort(order[0::2]).astype(int), np.sort(order[1::2]).astype(int)


def cross_fit(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    """Threshold chosen on one half, balanced accuracy and F1(unsupported) measured on the other, both ways."""
    y, s = _labels_scores(labels, scores)
    a, b = stratified_halves(y, rng)
    ba, f1, thresholds = [], [], []
    for fit, test in ((a, b), (b, a)):
        t = choose_threshold(y[fit], s[fit])
        predicted = s[test] >= t
        ba.append(balanced_accuracy(y[test], predicted))
        f1.append(f1_unsupported(y[test], predicted))
        thresholds.append(t)
    return {
        "balanced_accuracy": float(np.mean(ba)),
        "f1_unsupported": float(np.mean(f1)),
        "threshold": float(np.mean(thresholds)),
        "folds": [
            {"threshold": t, "balanced_accuracy": x, "f1_unsupported": f}
            for t, x, f in zip(thresholds, ba, f1, strict=True)
        ],
    }


# --------------------------------------------------------------------------- judges

# Judges come from pipeline.judge's registry (JUDGES / make_judge): one list for ask --verify and eval.


# --------------------------------------------------------------------------- calibration

ROW_FIELDS = (
    "set",
    "split",
    "judge",
    "fingerprint",
    "n",
    "n_supported",
    "n_available",
    "auroc",
    "balanced_accuracy",
    "f1_unsupported",
    "threshold",
    "folds",
    "default_threshold",
    "balanced_accuracy_at_default",
    "n_failed",
    "seconds",
    "pairs_per_s",
    "n_contradicted",
    "contradiction_recall",
    "accuracy_3way",
)


def three_way_figures(judge: Judge, pairs: Sequence[Pair], relations: Sequence[str]) -> dict[str, Any]:
    """Contradiction recall (the share of pairs labelled contradicted that the judge reads as contradicted) where
    the set labels contradictions, and 3-way accuracy where every pair has a three-way label; None where the
    judge does not read three ways or the set does not say."""
    out: dict[str, Any] = {"n_contradicted": sum(r == "contradicted" for r in relations)}
    out["contradiction_recall"] = out["accuracy_3way"] = None
    rel = relations_of(judge, pairs)
    if rel is None:
        return out
    guess = [RELATIONS[k] for k in np.asarray(rel).argmax(axis=1)]
    if out["n_contradicted"]:
        hits = sum(g == "contradicted" for g, r in zip(guess, relations, strict=True) if r == "contradicted")
        out["contradiction_recall"] = hits / out["n_contradicted"]
    if relations and all(r in RELATIONS for r in relations):
        out["accuracy_3way"] = sum(g == r for g, r in zip(guess, relations, strict=True)) / len(relations)
    return out


def calibrate(
    judge: Judge,
    sets: Sequence[str] = DEFAULT_SETS,
    limit: int | None = DEFAULT_LIMIT,
    seed: int = 0,
    *,
    root: Path | None = None,
    split: str = "heldout",
) -> list[dict[str, Any]]:
    """Score ``judge`` on up to ``limit`` pairs of each labelled set; one row of figures per set.

    Args:
        judge: any :class:`~pipeline.judge.Judge`.
        sets: names in :data:`SETS`.
        limit: pairs sampled per set (seeded, stratified by label); ``None`` for all.
        seed: seeds the sample and the two-fold split, so runs of different judges see the same pairs.
        root: the faithfulness folder; default: the data mirror's.
        split: "heldout" (default: the pairs the trained checker never saw, so every judge is measured
            on the same unseen pairs), "train" or "all".

    Returns:
        Rows with the keys in :data:`ROW_FIELDS`; threshold-based figures are means over the two folds.
    """
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise InputError(f"unknown set(s) {unknown}; choose from {sorted(SETS)}")
    root = root or faithfulness_root()
    judge.score([("Aspirin reduces fever.", "Aspirin is used to reduce fever.")])  # load models outside the timing
    rows = []
    for name in sets:
        data = load_set(name, root, split)
        # One stream per purpose, so a different limit never changes how the folds are dealt.
        sample_rng, split_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        idx = stratified_sample([r.label for r in data], limit, sample_rng)
        picked = [data[i] for i in idx]
        pairs: list[Pair] = [(r.claim, r.passage) for r in picked]
        labels = np.array([r.label for r in picked], dtype=int)
        log.info("%s: scoring %d of %d pairs with %s", name, len(pairs), len(data), judge.name)
        t0 = time.perf_counter()
        scores = np.asarray(judge.score(pairs), dtype=np.float64)
        seconds = time.perf_counter() - t0
        ok = np.isfinite(scores)
        if not ok.all():
            log.warning("%s: %s gave %d non-finite scores; those pairs are left out", name, judge.name, (~ok).sum())
        y, s = labels[ok], scores[ok]
        fit = cross_fit(y, s, split_rng)
        kept = [i for i, good in enumerate(ok) if good]
        three = three_way_figures(judge, [pairs[i] for i in kept], [picked[i].relation3 for i in kept])
        rows.append(
            {
                "set": name,
                "split": split,
                "judge": judge.name,
                "fingerprint": judge.fingerprint(),
                "n": int(len(y)),
                "n_supported": int(y.sum()),
                "n_available": len(data),
                "auroc": auroc(y, s),
                "balanced_accuracy": fit["balanced_accuracy"],
                "f1_unsupported": fit["f1_unsupported"],
                "threshold": fit["threshold"],
                "folds": fit["folds"],
                "default_threshold": float(judge.threshold),
                "balanced_accuracy_at_default": balanced_accuracy(y, s >= judge.threshold),
                "n_failed": int((~ok).sum()),
                "seconds": seconds,
                "pairs_per_s": len(pairs) / seconds if seconds > 0 else math.inf,
                **three,
            }
        )
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table."""
    head = (
        f"{'set':<18} {'judge':<10} {'n':>5} {'AUROC':>6} {'bal.acc':>7} {'F1(uns)':>7} {'thresh':>7} "
        f"{'contra.R':>8} {'acc3':>6} {'pairs/s':>8}"
    )
    lines = [head, "-" * len(head)]

    def opt(x: Any, width: int) -> str:
        return f"{'–':>{width}}" if x is None else f"{x:>{width}.3f}"

    for r in rows:
        lines.append(
            f"{r['set']:<18} {r['judge']:<10} {r['n']:>5} {r['auroc']:>6.3f} {r['balanced_accuracy']:>7.3f} "
            f"{r['f1_unsupported']:>7.3f} {r['threshold']:>7.3f} {opt(r.get('contradiction_recall'), 8)} "
            f"{opt(r.get('accuracy_3way'), 6)} {r['pairs_per_s']:>8.1f}"
        )
    return "\n".join(lines)


def counts_table(root: Path, sets: Sequence[str]) -> str:
    """Size and class balance of each set, as loaded (after de-duplication, before sampling)."""
    lines = [f"{'set':<18} {'pairs':>6} {'supported':>9} {'unsupported':>11} {'% supported':>11}"]
    for name in sets:
        data = load_set(name, root)
        pos = sum(r.label for r in data)
        share = 100 * pos / len(data) if data else math.nan
        lines.append(f"{name:<18} {len(data):>6} {pos:>9} {len(data) - pos:>11} {share:>11.1f}")
    return "\n".join(lines)


def _parse_sets(text: str) -> list[str]:
    try:
        names = set_names(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not names:
        raise argparse.ArgumentTypeError("--sets is empty")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--judge", choices=sorted(JUDGES), help="which support judge to calibrate")
    ap.add_argument(
        "--sets",
        type=_parse_sets,
        default=list(DEFAULT_SETS),
        help=f"comma-separated labelled sets (default {','.join(DEFAULT_SETS)}; all: {','.join(SETS)})",
    )
    ap.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="pairs sampled per set, stratified (0 = all)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the sample and the two-fold split")
    ap.add_argument(
        "--split",
        choices=SPLITS,
        default="heldout",
        help="which pairs: heldout (default; never seen by the trained checker), train, or all",
    )
    ap.add_argument("--json", type=Path, default=None, dest="json_path", help="also write settings and rows here")
    ap.add_argument("--cache", type=Path, default=None, help="SQLite score cache (CachedJudge); re-runs cost nothing")
    ap.add_argument("--data", type=Path, default=None, help="faithfulness folder (default: the data mirror's)")
    ap.add_argument("--counts", action="store_true", help="print each set's size and class balance, score nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("eval", "pipeline"):
        logging.getLogger(name).setLevel(logging.INFO)
    if args.limit < 0:
        ap.error("--limit must be 0 (all) or more")
    try:
        root = args.data or faithfulness_root()
    except InputError as e:
        ap.error(str(e))
    if args.counts:
        print(counts_table(root, args.sets))
        return 0
    if args.judge is None:
        ap.error("--judge is required (or --counts)")

    judge: Judge = make_judge(args.judge)
    cached = CachedJudge(judge, args.cache) if args.cache else None
    try:
        rows = calibrate(cached or judge, args.sets, args.limit or None, args.seed, root=root, split=args.split)
    finally:
        if cached is not None:
            log.info("cache %s: %d hits, %d misses", args.cache, cached.hits, cached.misses)
            cached.close()
    print(table(rows))
    if args.json_path is not None:
        payload = {
            "settings": {
                "judge": args.judge,
                "sets": args.sets,
                "limit": args.limit,
                "seed": args.seed,
                "split": args.split,
                "data": str(root),
                "cache": str(args.cache) if args.cache else None,
            },
            "rows": rows,
        }
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
