"""Training data and training of the relevance model: does this passage answer this question?

``medcite rerank train`` (or ``python -m eval.train_relevance``) reproduces ``pipeline/weights/relevance``
from the mirror and the BioASQ index, seeded, with the same loop as the claim checker
(:func:`eval.train_judge.fit`). The pairs:

- BioASQ 7B-10B, the ``tune`` half of the questions only (``eval.retrieval.half``; the ``heldout`` half is
  what ``python -m eval.retrieval --split heldout`` reports): the index chunks of a judged document that hold
  one of the question's gold snippets are positives; chunks that hybrid search ranks in its top 30 for the
  question but that belong to no judged document are hard negatives.
- MEDIQA 2019 Task 3 (training sets): expert-rated answers to consumer health questions; rated 4
  (excellent) or 3 (correct but incomplete) answer, 2 (related) or 1 (incorrect) do not. Its validation set
  is the development set, with a tenth of the BioASQ questions.
- PubMedQA (1,000 expert-labelled abstracts): a question against its own abstract's conclusion answers it;
  against the conclusion of the abstract that shares most words with it (another study), it does not.

- Guideline prose, the PDQ summaries of the demo index (``--guidelines``): a question made from a section's
  headings ("Treatment of Stage IV and Recurrent Colon Cancer > Local therapy" asks "What is the role of local
  therapy in stage IV and recurrent colon cancer?") against a passage of that section, and against the passages
  of other sections that hybrid search ranks highest for it ("Incidence and Mortality", "Latest Updates").
  Sections that a question of ``eval/data/abstention.jsonl`` is about, and SIGN 155, the CMS measures and the
  USPSTF statement (which that set asks about), are left out, so the abstention figures stay held out.
- Off-topic questions against guideline prose: MEDIQA and BioASQ ``tune`` questions about neither cancer nor
  headache, against the guideline passages hybrid search ranks highest for them, do not answer (what a
  guideline section must abstain on).

A pair is read as (question, passage window): :func:`pipeline.crossencoder.best_window` picks the window
that shares most content words with the question, as the relevance model does when it scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.calibrate import auroc, balanced_accuracy, choose_threshold
from eval.retrieval import gold_files, half, pmid_of
from eval.train_judge import Example, TrainConfig, fit, seeded
from pipeline.corpus import default_mirror
from pipeline.crossencoder import CheckerConfig, base_model_path, save_weights
from pipeline.embed import hash_files
from pipeline.errors import InputError
from pipeline.index import Index, open_index
from pipeline.relevance import RelevanceModel
from pipeline.text import content_words

log = logging.getLogger("eval.train_relevance")

DEV_PERMILLE = 100
NEGATIVE_DEPTH = 30  # hybrid ranks a hard negative is drawn from
ABSTENTION = Path(__file__).parent / "data" / "abstention.jsonl"


def relevance_config(**changes: Any) -> TrainConfig:
    """The training settings of the relevance model: passages packed to 224 word pieces, one epoch, the lowest two
    encoder layers left as bundled (what two busy cores train in about a quarter of an hour)."""
    base = TrainConfig(
        epochs=1, max_length=224, sentences_per_window=0, synthetic=0, sets=(), select_epoch=True, frozen_layers=2
    )
    return replace(base, **changes)


def _dev(key: str) -> bool:
    return int(hashlib.sha256(f"relevance-dev\x00{key}".encode()).hexdigest()[:8], 16) % 1000 < DEV_PERMILLE


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def bioasq_pairs(
    index: Index, folder: Path, *, negatives: int = 3, positives: int = 2, seed: int = 0, limit: int | None = None
) -> tuple[list[Example], list[Example]]:
    """(train, dev) pairs from the ``tune`` half of the BioASQ questions (see the module docs)."""
    rng = random.Random(seed)
    questions: dict[str, dict[str, Any]] = {}
    for path in gold_files(folder, (7, 8, 9, 10)):
        for q in json.loads(path.read_text(encoding="utf-8"))["questions"]:
            if q["id"] not in questions and half(q["id"]) == "tune":
                questions[q["id"]] = q
    items = list(questions.values())[:limit]
    results = index.search_many([q["body"].strip() for q in items], NEGATIVE_DEPTH, kind="research")
    train: list[Example] = []
    dev: list[Example] = []
    for q, hits in zip(items, results, strict=True):
        judged = {f"pmid:{pmid_of(u)}" for u in q.get("documents", [])}
        snippets = [_norm(s["text"])[:80] for s in q.get("snippets", []) if s.get("text")]
        pos = [
            c
            for doc_id in sorted(judged)
            for c in index.chunks_of(doc_id)
            if any(s and s in _norm(c.text) for s in snippets)
        ]
        neg = [h.chunk for h in hits if h.chunk.doc_id not in judged]
        if not pos or not neg:
            continue
        body = q["body"].strip()
        out = dev if _dev(q["id"]) else train
        for c in rng.sample(pos, min(positives, len(pos))):
            out.append(Example(body, c.embedding_text(), 1, "bioasq"))
        # The top-ranked wrong passages are the ones reranking must push down; a few from deeper for variety.
        picked = neg[:2] + rng.sample(neg[2:], min(max(0, negatives - 2), len(neg[2:])))
        out.extend(Example(body, c.embedding_text(), 0, "bioasq") for c in picked[:negatives])
    return train, dev


def mediqa_pairs(folder: Path) -> tuple[list[Example], list[Example]]:
    """(train, dev): the two training sets, and the validation set, of MEDIQA 2019 Task 3."""

    def read(path: Path) -> list[Example]:
        out = []
        for q in ET.parse(path).getroot().iter("Question"):
            text = (q.findtext("QuestionText") or "").strip()
            for a in q.iter("Answer"):
                score = int(a.get("ReferenceScore") or 0)
                answer = (a.findtext("AnswerText") or "").strip()
                if text and answer and score:
                    out.append(Example(text, answer, int(score >= 3), "mediqa"))
        return out

    train = [e for p in sorted(folder.glob("*TrainingSet*.xml")) for e in read(p)]
    dev = [e for p in sorted(folder.glob("*ValidationSet*.xml")) for e in read(p)]
    if not train:
        raise InputError(f"{folder}: no MEDIQA2019-Task3-QA-TrainingSet*.xml files")
    return train, dev


def pubmedqa_pairs(path: Path) -> tuple[list[Example], list[Example]]:
    """(train, dev): each question against its own conclusion (answers) and the most similar other one (not)."""
    records = json.loads(path.read_text(encoding="utf-8"))
    rows = [(pmid, r["QUESTION"].strip(), r["LONG_ANSWER"].strip()) for pmid, r in sorted(records.items())]
    words = [content_words(f"{q} {a}") for _, q, a in rows]
    train: list[Example] = []
    dev: list[Example] = []
    for i, (pmid, question, answer) in enumerate(rows):
        want = content_words(question)
        other = max((j for j in range(len(rows)) if j != i), key=lambda j: (len(want & words[j]), -j))
        out = dev if _dev(f"pubmedqa:{pmid}") else train
        out.append(Example(question, answer, 1, "pubmedqa"))
        out.append(Example(question, rows[other][2], 0, "pubmedqa"))
    return train, dev


def _lower(text: str) -> str:
    """Title case to sentence case, acronyms and stage numerals kept: "Stage IV NSCLC Options" -> "stage IV NSCLC
    options"."""
    return " ".join(w if w.isupper() or any(ch.isdigit() for ch in w) else w.lower() for w in text.split())


def _topic(heading: str) -> str:
    """ "Treatment of Stage IV and Recurrent Colon Cancer" -> "stage IV and recurrent colon cancer"."""
    for prefix in ("Treatment Option Overview for ", "Treatment Options for ", "Treatment of ", "Treatment for "):
        if heading.startswith(prefix):
            return _lower(heading[len(prefix) :])
    return ""


def heading_question(title: str, heading: str) -> str | None:
    """A clinician's question that a guideline section answers, made from its heading path; None for sections
    that answer no clinical question (references, updates, summary information)."""
    parts = [p.strip() for p in heading.split(" > ") if p.strip()]
    if not parts or re.search(r"Latest Updates|About This PDQ|References|Summary Information|Changes to", parts[0]):
        return None
    top, leaf = parts[0], parts[-1]
    topic = _topic(top)
    subject = re.sub(r"\s*\(PDQ®\)|\s*-\s*NCI$|\s+Treatment$", "", title).strip()
    if topic and len(parts) == 1:
        return f"What is the treatment for {topic}?"
    if topic and _topic(leaf):
        return f"What are the treatment options for {_topic(leaf)}?"
    if topic:
        return f"What is the role of {_lower(leaf)} in {topic}?"
    return f"What is known about {_lower(leaf)} in {_lower(subject)}?"


def _held_out_headings(path: Path) -> set[str]:
    """Top-level headings that a question of the abstention set is about (its ``why`` names them)."""
    out: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            for h in re.findall(r"heading '([^']+)'", json.loads(line)["why"]):
                out.add(h.split(" > ")[0].strip().lower())
    return out


def guideline_pairs(
    index: Index, held_out: set[str], *, per_section: int = 1, seed: int = 0, limit: int | None = 900
) -> tuple[list[Example], list[Example]]:
    """(train, dev) pairs from the PDQ summaries of ``index`` (see the module docs)."""
    rng = random.Random(seed)
    lo, hi = index.ranges["guideline"]
    sections: dict[tuple[str, str], list[Any]] = {}
    for c in index.chunks[lo:hi]:
        doc = index.documents[c.doc_id]
        if "cancer.gov" not in (doc.url or "") or c.heading.split(" > ")[0].strip().lower() in held_out:
            continue
        q = heading_question(doc.title, c.heading)
        if q:
            sections.setdefault((c.doc_id, q), []).append(c)
    keys = sorted(sections)
    rng.shuffle(keys)
    keys = keys[:limit]
    results = index.search_many([q for _, q in keys], NEGATIVE_DEPTH, kind="guideline")
    train: list[Example] = []
    dev: list[Example] = []
    for (doc_id, q), hits in zip(keys, results, strict=True):
        own = sections[(doc_id, q)]
        top = own[0].heading.split(" > ")[0]
        neg = [h.chunk for h in hits if h.chunk.heading.split(" > ")[0] != top]
        if not neg:
            continue
        out = dev if _dev(f"guideline:{doc_id}:{q}") else train
        for c in rng.sample(own, min(per_section, len(own))):
            # Half the positives without their title and heading line: the passage itself must answer.
            out.append(Example(q, c.embedding_text() if rng.random() < 0.5 else c.text, 1, "guideline"))
        out.extend(Example(q, c.embedding_text(), 0, "guideline") for c in neg[:2])
    return train, dev


_OFF_TOPIC_EXCLUDE = re.compile(r"migraine|headache|\bpain\b|nausea|vomit|fatigue|screen", re.I)


def off_topic_pairs(
    index: Index, questions: Sequence[str], *, per_question: int = 2, limit: int = 700
) -> tuple[list[Example], list[Example]]:
    """(train, dev): questions on neither cancer nor the demo's other topics against the guideline passages ranked
    highest for them, which do not answer them."""
    from eval.questions import CANCER

    picked = [q for q in dict.fromkeys(questions) if not CANCER.search(q) and not _OFF_TOPIC_EXCLUDE.search(q)]
    picked = picked[:limit]
    train: list[Example] = []
    dev: list[Example] = []
    for q, hits in zip(picked, index.search_many(picked, per_question, kind="guideline"), strict=True):
        out = dev if _dev(f"off-topic:{q}") else train
        out.extend(Example(q, h.chunk.embedding_text(), 0, "off-topic") for h in hits[:per_question])
    return train, dev


def _dev_auroc(model: RelevanceModel, dev: Sequence[Example]) -> dict[str, float]:
    out: dict[str, float] = {}
    for source in sorted({e.source for e in dev}):
        rows = [e for e in dev if e.source == source]
        y = np.array([e.label for e in rows], dtype=int)
        if len(set(y.tolist())) == 2:
            out[source] = auroc(y, model.logits([(e.claim, e.passage) for e in rows]))
    if out:
        out["mean"] = float(np.mean(list(out.values())))
    return out


def train(
    out: Path,
    index: Path,
    *,
    mirror: Path | None = None,
    config: TrainConfig | None = None,
    bioasq_limit: int | None = None,
    guidelines: Path | None = None,
) -> dict[str, Any]:
    """Train the relevance model into ``out`` (``checker.json`` + ``model.safetensors``); returns its record.

    ``guidelines``: an index with the PDQ summaries (``indexes/demo``) for the guideline and off-topic pairs.
    """
    import torch

    config = config or relevance_config()
    t0 = time.perf_counter()
    rng = seeded(config)
    mirror = mirror or default_mirror()
    if mirror is None:
        raise InputError("no data mirror found (../shared/data or MEDCITE_MIRROR)")
    ix = open_index(index)
    parts = [
        bioasq_pairs(ix, mirror / "research" / "bioasq", seed=config.seed, limit=bioasq_limit),
        mediqa_pairs(mirror / "research" / "mediqa"),
        pubmedqa_pairs(mirror / "research" / "pubmedqa" / "ori_pqal.json"),
    ]
    if guidelines is not None:
        gx = open_index(guidelines)
        parts.append(guideline_pairs(gx, _held_out_headings(ABSTENTION), seed=config.seed))
        asked = [e.claim for e in parts[1][0]] + [e.claim for e in parts[0][0] if e.source == "bioasq"]
        parts.append(off_topic_pairs(gx, asked))
    train_set = [e for t, _ in parts for e in t]
    dev_set = [e for _, d in parts for e in d]
    log.info("pairs: %d train, %d dev; %s", len(train_set), len(dev_set), dict(Counter(e.source for e in train_set)))
    cfg = CheckerConfig(max_length=config.max_length, sentences_per_window=0, base_sha256=hash_files(base_model_path()))

    def on_epoch(model: Any, tokenizer: Any, bf16: bool) -> dict[str, float]:
        return _dev_auroc(RelevanceModel.in_memory(model, tokenizer, cfg, bf16=bf16), dev_set)

    fitted = fit(config, train_set, rng, on_epoch if config.select_epoch else None)
    fitted.model.eval()
    save_weights(fitted.model, out)
    cfg.write(out)
    model = RelevanceModel(out, bf16=fitted.bf16)
    scores = model.score([(e.claim, e.passage) for e in dev_set])
    labels = np.array([e.label for e in dev_set], dtype=int)
    threshold = choose_threshold(labels, scores)
    cfg.threshold = float(threshold)
    cfg.training = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.__dict__.items()},
        "pairs": dict(Counter(e.source for e in train_set)),
        "dev_pairs": dict(Counter(e.source for e in dev_set)),
        "index": ix.id,
        "guideline_index": None if guidelines is None else open_index(guidelines).id,
        "epochs": fitted.epochs,
        "kept_epoch": fitted.kept_epoch,
        "steps": fitted.steps,
        "dev": {
            "auroc": auroc(labels, scores),
            "balanced_accuracy": balanced_accuracy(labels, scores >= threshold),
            "by_source": _dev_auroc(model, dev_set),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
    }
    cfg.write(out)
    return cfg.training


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.train_relevance", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/relevance"), help="weights folder to write")
    ap.add_argument("--index", type=Path, default=Path("indexes/bioasq"), help="BioASQ index (hard negatives)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--frozen-layers", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=224)
    ap.add_argument(
        "--guidelines", type=Path, default=None, help="index with the PDQ summaries (indexes/demo) for guideline pairs"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--bioasq-limit", type=int, default=None, help="use only the first N tune questions")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    config = relevance_config(
        seed=args.seed,
        epochs=args.epochs,
        threads=args.threads,
        max_steps=args.max_steps,
        frozen_layers=args.frozen_layers,
        max_length=args.max_length,
    )
    record = train(args.out, args.index, config=config, bioasq_limit=args.bioasq_limit, guidelines=args.guidelines)
    print(json.dumps({k: record[k] for k in ("pairs", "dev_pairs", "kept_epoch", "steps", "dev")}, indent=2))
    print(f"trained in {time.perf_counter() - t0:.0f} s; weights in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
