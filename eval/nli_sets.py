"""Loaders for the NLI and claim-verification sets in the mirror's ``faithfulness/nli/`` folder.

Each returns :class:`~eval.labelled.Labelled` pairs with ``label`` 1 = supported and a three-way ``relation``
where the set labels one (supported / contradicted / nei; "" where a set says only "not entailed"), and a
``group`` that keeps related pairs (one premise, one trial, one claim's evidence) on the same side of the
held-out split. The files are read as data (JSON, CSV, a zip read in memory); nothing is executed.

=============== ================================================ ======================= ==================
set             pairs                                            relation                grouped by
=============== ================================================ ======================= ==================
snli            e-SNLI copy of SNLI dev (all training) and test  3-way                   premise
sick            SICK, both directions of each pair               3-way                   source sentence
rte             GLUE RTE train + dev                             entailed or not         premise
fever           FEVER as RTE pairs                               entailed or not         claim
climate-fever   each claim against each of its 5 evidences       3-way                   claim
check-covid     news claims against their abstract's evidence    3-way                   abstract
healthfc        health claims against the experts' evidence      3-way                   claim
nli4ct          statements against clinical trial sections       supported/contradicted  primary trial
=============== ================================================ ======================= ==================
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.labelled import Labelled, dedupe, read_jsonl
from pipeline.errors import InputError

log = logging.getLogger("eval.calibrate")

NLI = "nli"  # the folder under faithfulness/

_THREE = {
    "entailment": "supported",
    "neutral": "nei",
    "contradiction": "contradicted",
    "supports": "supported",
    "support": "supported",
    "refutes": "contradicted",
    "refute": "contradicted",
    "not_enough_info": "nei",
    "notenoughinfo": "nei",
    "not_entailment": "",
}


def _row(claim: str, passage: str, relation: str, group: str = "") -> Labelled:
    return Labelled(claim, passage, int(relation == "supported"), relation, group)


def _relation(value: str, path: Path, where: object) -> str | None:
    key = value.strip().lower()
    if key not in _THREE:
        log.warning("%s:%s: unknown label %r; pair skipped", path, where, value)
        return None
    return _THREE[key]


_SPACE_BEFORE = re.compile(r" (?=[.,;:!?')\]]|n't\b|'s\b|'re\b|'ve\b|'ll\b|'d\b|'m\b)")
_SPACE_AFTER = re.compile(r"(?<=[(\[]) ")


def detokenize(text: str) -> str:
    """SNLI's tokenised text ("packages ." / "do n't") as written ("packages." / "don't")."""
    text = " ".join(text.split()).replace(" n't", "n't").replace("`` ", '"').replace(" ''", '"')
    return _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", text))


def _lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _exists(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"{path}: missing; the NLI sets come from the data mirror (faithfulness/nli/)")
    return path


def load_snli(folder: Path) -> list[Labelled]:
    """e-SNLI's SNLI dev and test (``s1``, ``s2``, ``labels``): dev pairs are always training data (group ``train:``),
    test pairs are split by premise."""
    out: list[Labelled] = []
    for part in ("dev", "test"):
        s1, s2, labels = (_lines(_exists(folder / f"{n}.{part}")) for n in ("s1", "s2", "labels"))
        if not len(s1) == len(s2) == len(labels):
            raise InputError(f"{folder}: s1/s2/labels.{part} have {len(s1)}/{len(s2)}/{len(labels)} lines")
        for i, (p, h, y) in enumerate(zip(s1, s2, labels, strict=True), 1):
            relation = _relation(y, folder / f"labels.{part}", i)
            premise, claim = detokenize(p), detokenize(h)
            if relation is None or not premise or not claim:
                continue
            group = f"train:{premise}" if part == "dev" else premise
            out.append(_row(claim, premise, relation, group))
    return dedupe(out, "snli")


_SICK_DIRECTION = re.compile(r"^[AB]_(entails|neutral|contradicts)_[AB]$")
_SICK_WORD = {"entails": "supported", "neutral": "nei", "contradicts": "contradicted"}


def load_sick(path: Path) -> list[Labelled]:
    """SICK (tab-separated): A -> B from ``entailment_label``, and B -> A from ``entailment_BA`` as a second pair;
    grouped by the source sentence both came from (``sentence_A_original``)."""
    out: list[Labelled] = []
    with _exists(path).open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 2):
            a, b = (row.get("sentence_A") or "").strip(), (row.get("sentence_B") or "").strip()
            if not a or not b:
                continue
            group = (row.get("sentence_A_original") or a).strip()
            if (relation := _relation(row.get("entailment_label") or "", path, lineno)) is not None:
                out.append(_row(b, a, relation, group))
            if m := _SICK_DIRECTION.match((row.get("entailment_BA") or "").strip()):
                out.append(_row(a, b, _SICK_WORD[m.group(1)], group))
    return dedupe(out, "sick")


def load_rte(folder: Path) -> list[Labelled]:
    """GLUE RTE ``train.tsv`` and ``dev.tsv`` (index, sentence1 = premise, sentence2 = hypothesis, label)."""
    out: list[Labelled] = []
    for name in ("train.tsv", "dev.tsv"):
        path = _exists(folder / name)
        with path.open(encoding="utf-8", newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 2):
                p, h = (row.get("sentence1") or "").strip(), (row.get("sentence2") or "").strip()
                relation = _relation(row.get("label") or "", path, lineno)
                if relation is not None and p and h:
                    out.append(_row(h, p, relation, p))
    return dedupe(out, "rte")


def load_fever(folder: Path) -> list[Labelled]:
    """FEVER as RTE pairs: evidence (``dev.raw.input0``), claim (``dev.raw.input1``), label (``dev.label``)."""
    evidence, claims, labels = (_lines(_exists(folder / f"dev.{n}")) for n in ("raw.input0", "raw.input1", "label"))
    if not len(evidence) == len(claims) == len(labels):
        raise InputError(f"{folder}: input0/input1/label have {len(evidence)}/{len(claims)}/{len(labels)} lines")
    out = []
    for i, (p, h, y) in enumerate(zip(evidence, claims, labels, strict=True), 1):
        relation = _relation(y, folder / "dev.label", i)
        p, h = detokenize(p), " ".join(h.split())
        if relation is not None and p and h:
            out.append(_row(h, p, relation))
    return dedupe(out, "fever")


def load_climate_fever(path: Path) -> list[Labelled]:
    """Climate-FEVER: each claim against each of its evidence sentences, with that evidence's own label."""
    out: list[Labelled] = []
    with _exists(path).open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), 2):
            claim = " ".join((row.get("claim") or "").split())
            for item in _climate_evidences(row.get("evidences") or "") if claim else []:
                if not isinstance(item, dict):
                    continue
                text = " ".join(str(item.get("evidence") or "").split()).strip('"')
                relation = _relation(str(item.get("evidence_label") or ""), path, lineno)
                if relation is not None and text:
                    out.append(_row(claim, text, relation, str(row.get("claim_id") or claim)))
    return dedupe(out, "climate-fever")


def _climate_evidences(value: str) -> list[Any]:
    """The ``evidences`` column, a Python list of dicts written as text, read with ``ast.literal_eval`` (literals
    only: a hostile cell cannot run code)."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return []
    return parsed if isinstance(parsed, list) else []


def load_check_covid(folder: Path) -> list[Labelled]:
    """Check-COVID claims against the evidence sentences of their abstract (``corpus.json``), grouped by abstract."""
    corpus: dict[str, list[str]] = {}
    for _, record in read_jsonl(_exists(folder / "corpus.json")):
        abstract = record.get("abstract")
        if isinstance(abstract, list):
            corpus[str(record.get("cord_id"))] = [str(s) for s in abstract]
    path = _exists(folder / "Check-COVID_all.json")
    out: list[Labelled] = []
    for lineno, record in read_jsonl(path):
        sents = corpus.get(str(record.get("cord_id")))
        claim = " ".join(str(record.get("claim") or "").split())
        relation = _relation(str(record.get("label") or ""), path, lineno)
        if relation is None or not claim or not sents:
            continue
        picked = []
        for ev in record.get("evidence_set") or []:
            k = ev.get("sent_index") if isinstance(ev, dict) else None
            if isinstance(k, int) and 0 <= k < len(sents):
                picked.append(sents[k].strip())
        passage = " ".join(dict.fromkeys(s for s in picked if s))
        if passage:
            out.append(_row(claim, passage, relation, str(record.get("cord_id"))))
    return dedupe(out, "check-covid")


_HEALTHFC_LABEL = {"0": "supported", "1": "nei", "2": "contradicted"}


def load_healthfc(path: Path) -> list[Labelled]:
    """HealthFC (English side): the claim (a question, as the set has it) against the experts' top sentences;
    verdict 0 supported, 1 not enough information, 2 refuted."""
    out: list[Labelled] = []
    with _exists(path).open(encoding="utf-8-sig", newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f), 2):
            claim = " ".join((row.get("en_claim") or "").split())
            passage = " ".join((row.get("en_top_sentences") or "").split())
            relation = _HEALTHFC_LABEL.get((row.get("label") or "").strip())
            if relation is None:
                log.warning("%s:%d: unknown label %r; row skipped", path, lineno, row.get("label"))
            elif claim and passage:
                out.append(_row(claim, passage, relation))
    return dedupe(out, "healthfc")


_NLI4CT_SECTIONS = ("Intervention", "Eligibility", "Results", "Adverse Events")


def _trial_section(trials: dict[str, dict[str, Any]], trial_id: str, section: str) -> str:
    lines = trials.get(trial_id, {}).get(section) or []
    return "\n\n".join(" ".join(str(x).split()) for x in lines if str(x).strip())


def load_nli4ct(folder: Path) -> list[Labelled]:
    """NLI4CT 2024: each statement against the section of its trial report it is about (both trials' sections,
    labelled, for a comparison statement), from the train and dev files in the zip and the practice test;
    grouped by primary trial, so no trial is on both sides of the split."""
    zip_path = _exists(folder / "training_data.zip")
    trials: dict[str, dict[str, Any]] = {}
    statements: list[tuple[str, dict[str, Any]]] = []
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            base = name.rsplit("/", 1)[-1]
            if name.startswith("__MACOSX") or not base.endswith(".json"):
                continue
            record = json.loads(z.read(name).decode("utf-8"))
            if base.startswith("NCT"):
                trials[base[: -len(".json")]] = record
            elif base in ("train.json", "dev.json"):
                statements.extend((f"{zip_path.name}:{base}", v) for v in record.values())
    test = _exists(folder / "gold_practice_test.json")
    statements.extend((test.name, v) for v in json.loads(test.read_text(encoding="utf-8")).values())
    out: list[Labelled] = []
    for where, s in statements:
        relation = _relation(str(s.get("Label") or ""), Path(where), s.get("Primary_id"))
        section = str(s.get("Section_id") or "")
        claim = " ".join(str(s.get("Statement") or "").split())
        primary, secondary = str(s.get("Primary_id") or ""), str(s.get("Secondary_id") or "")
        if relation is None or section not in _NLI4CT_SECTIONS or not claim:
            continue
        text = _trial_section(trials, primary, section)
        if secondary and (other := _trial_section(trials, secondary, section)):
            text = f"Primary trial: {text}\n\nSecondary trial: {other}"
        if text:
            out.append(_row(claim, text, relation, primary))
    return dedupe(out, "nli4ct")


LOADERS: dict[str, Callable[[Path], list[Labelled]]] = {
    "snli": lambda root: load_snli(root / NLI / "esnli"),
    "sick": lambda root: load_sick(root / NLI / "sick" / "SICK.txt"),
    "rte": lambda root: load_rte(root / NLI / "rte"),
    "fever": lambda root: load_fever(root / NLI / "fever-rte"),
    "climate-fever": lambda root: load_climate_fever(root / NLI / "climate-fever" / "climate_fever.csv"),
    "check-covid": lambda root: load_check_covid(root / NLI / "check-covid"),
    "healthfc": lambda root: load_healthfc(root / NLI / "healthfc" / "Datensatz.csv"),
    "nli4ct": lambda root: load_nli4ct(root / NLI / "nli4ct"),
}
