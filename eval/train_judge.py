"""Train the claim checker (``medcite judge train``): a MiniLM cross-encoder for P(supported | passage, claim).

The recipe follows MiniCheck at a size two CPU cores can train in minutes:

- Human-labelled pairs: the *train* side of each faithfulness set (:func:`eval.calibrate.split_of`):
  ExpertQA outside medicine, 60 % of HealthVer's and SciFact's claims, 60 % of COVID-Fact's evidence
  groups. The held-out side is never read here, and a training pair whose claim text equals a
  held-out claim is dropped as well.
- Synthetic pairs from our own corpus (the chunks of an index): a chunk's sentence is supported by the
  chunk; the same sentence with a changed number, a flipped direction of effect, a changed
  population, an added or removed negation, a term swapped for one from another chunk, or a sentence
  from elsewhere in the same document, is not.
- Each pair is shown to the model as the one sentence window of its passage that shares the most
  content words with the claim (the view the checker scores at inference, where it takes the best
  window).
- One logit, binary cross-entropy, AdamW with linear warm-up and decay, embeddings frozen,
  bfloat16 autocast where the CPU has it. Seeded: the same data and seed give the same weights on the
  same machine and thread count.

A tenth of the training groups is kept back as a development set: the default threshold is the one
that maximises balanced accuracy there.

Three options were measured and are off by default (README, "The trained claim checker"): ``augment``
(edited, unsupported copies of supported human claims), ``select_epoch`` (keep the epoch with the best
mean human development AUROC on ExpertQA, HealthVer and SciFact) and ``frozen_layers`` (leave the lowest
encoder layers as bundled). Together they raised held-out AUROC on SciFact and lowered it on HealthVer,
and the checkpoints they chose let hand-made drug swaps and removed negations through.

Nothing here touches the held-out pairs, which ``medcite eval calibrate`` reports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from eval.calibrate import (
    CLAIM_SETS,
    GENERAL_NLI,
    SETS,
    auroc,
    balanced_accuracy,
    choose_threshold,
    faithfulness_root,
    load_set,
)
from pipeline.crossencoder import RELATIONS, weights_sha256
from pipeline.embed import hash_files
from pipeline.errors import InputError
from pipeline.judge.checker import (
    CheckerConfig,
    ClaimChecker,
    base_model_path,
    best_window,
    cpu_has_bf16,
    encode,
    load_base,
    save_weights,
    sentences,
    trainable,
)

log = logging.getLogger("eval.train_judge")

TRAIN_SETS = ("expertqa", "healthver", "scifact", "covidfact")
DEV_PERMILLE = 100


class Example(NamedTuple):
    claim: str
    passage: str
    label: int
    source: str  # the set name, or "synthetic:<kind>"
    relation: str = ""  # supported / contradicted / nei, or "" (not supported, which is not known)


# The staged recipe: each stage fine-tunes the previous stage's model on its sets (their train side).
STAGES: dict[str, tuple[str, ...]] = {
    "general": GENERAL_NLI,  # SNLI, SICK, RTE, FEVER: what entailment and contradiction are
    "claims": CLAIM_SETS,  # claim verification, most of it medical
    "ours": ("synthetic", "expertqa"),  # edits of our own corpus, and ExpertQA outside medicine
}
# The target each relation gives the three-way head: the set of outputs that count as right.
_TARGETS = {"supported": (1.0, 0.0, 0.0), "contradicted": (0.0, 1.0, 0.0), "nei": (0.0, 0.0, 1.0), "": (0.0, 1.0, 1.0)}


@dataclass
class TrainConfig:
    """Everything that decides the weights; written into ``checker.json``."""

    seed: int = 0
    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_length: int = 160
    sentences_per_window: int = 2  # the checker reads runs of 1-2 sentences (0: windows packed to max_length)
    synthetic: int = 3000  # synthetic pairs from the index's chunks (0 = none)
    augment: float = 0.0  # share of supported human training pairs that also get an edited, unsupported copy
    select_epoch: bool = False  # keep the epoch with the best human development AUROC, not simply the last
    frozen_layers: int = 0  # the lowest encoder layers left as the bundled model has them (0-6)
    sets: tuple[str, ...] = TRAIN_SETS  # one-stage recipe (stages empty); with stages: only these sets are read
    outputs: int = 1  # 1: P(yes), binary cross-entropy; 3: supported / contradicted / nei
    stages: tuple[str, ...] = ()  # names in STAGES, trained in order; () = one stage on ``sets``
    stage_epochs: tuple[int, ...] = ()  # per stage (default: ``epochs`` each)
    stage_lr: tuple[float, ...] = ()  # per stage (default: ``lr`` each)
    max_steps: int | None = None  # stop early (tests, smoke runs)
    bf16: bool | None = None  # None: where the CPU has bfloat16
    threads: int | None = None  # torch threads; None: torch's default (the number of cores)


# --------------------------------------------------------------------------- data


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def human_pairs(sets: Sequence[str], root: Path | None = None) -> list[Example]:
    """The train side of each labelled set, minus any pair whose claim is also a held-out claim."""
    root = root or faithfulness_root()
    held_out = {_norm(r.claim) for name in SETS for r in load_set(name, root, "heldout")}
    out: list[Example] = []
    for name in sets:
        rows = load_set(name, root, "train")
        kept = [r for r in rows if _norm(r.claim) not in held_out]
        if len(kept) != len(rows):
            log.info("%s: %d training pairs dropped (claim also held out)", name, len(rows) - len(kept))
        out.extend(Example(r.claim, r.passage, r.label, name, r.relation3) for r in kept)
    return out


# Word pairs whose swap reverses a finding's direction, population or strength.
_FLIPS = [
    ("increased", "decreased"),
    ("increase", "decrease"),
    ("increases", "decreases"),
    ("higher", "lower"),
    ("more", "less"),
    ("improved", "worsened"),
    ("reduced", "increased"),
    ("reduces", "increases"),
    ("superior", "inferior"),
    ("greater", "smaller"),
    ("longer", "shorter"),
    ("above", "below"),
    ("before", "after"),
    ("positive", "negative"),
    ("benefit", "harm"),
    ("effective", "ineffective"),
    ("recommended", "discouraged"),
    ("associated", "unassociated"),
    ("significant", "insignificant"),
    ("high", "low"),
    ("early", "late"),
]
_POPULATIONS = [
    ("adults", "children"),
    ("men", "women"),
    ("male", "female"),
    ("older", "younger"),
    ("elderly", "young"),
    ("premenopausal", "postmenopausal"),
    ("pregnant", "nonpregnant"),
    ("infants", "adolescents"),
    ("smokers", "nonsmokers"),
    ("metastatic", "localized"),
    ("advanced", "early-stage"),
]
_MODALS = re.compile(r"\b(is|are|was|were|should|may|can|could|did|does|do|will|has|have)\b(?! not\b)")
_NEGATED = re.compile(r"\b(is|are|was|were|should|may|can|could|did|does|do|will|has|have) not\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*[A-Za-z])")
_TERM = re.compile(r"\b[A-Za-z][A-Za-z-]{6,}\b")


def _swap_words(text: str, pairs: Sequence[tuple[str, str]], rng: random.Random) -> str | None:
    options = []
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            if re.search(rf"\b{re.escape(x)}\b", text, re.I):
                options.append((x, y))
    if not options:
        return None
    x, y = rng.choice(options)

    def repl(m: re.Match[str]) -> str:
        return y.capitalize() if m.group(0)[0].isupper() else y

    return re.sub(rf"\b{re.escape(x)}\b", repl, text, count=1, flags=re.I)


def _change_number(text: str, rng: random.Random) -> str | None:
    found = list(_NUMBER.finditer(text))
    if not found:
        return None
    m = rng.choice(found)
    value = m.group(1)
    if "." in value:
        whole, frac = value.split(".")
        new = f"{int(whole) + rng.randint(1, 9)}.{frac}"
    else:
        n = int(value)
        choices = {n * 2, n + rng.randint(1, 9), max(0, n - rng.randint(1, 9)), n * 10 if n < 100 else n // 2}
        choices.discard(n)
        new = str(rng.choice(sorted(choices)))
    return text[: m.start(1)] + new + text[m.end(1) :]


_NEGATIVE = re.compile(r"\b(?:no|never|without)\b ?", re.I)


def _negate(text: str, rng: random.Random) -> str | None:
    """Remove the sentence's negation if it has one ("is not" -> "is", "no" -> ""), else add "not"."""
    if m := _NEGATED.search(text):
        return text[: m.start()] + m.group(1) + text[m.end() :]
    if m := _NEGATIVE.search(text):
        return text[: m.start()] + text[m.end() :]
    found = list(_MODALS.finditer(text))
    if not found:
        return None
    m = rng.choice(found)
    return text[: m.end()] + " not" + text[m.end() :]


def _swap_term(text: str, passage: str, donors: Sequence[str], rng: random.Random) -> str | None:
    terms = [m for m in _TERM.finditer(text) if m.group(0).lower() not in _STOPLIKE]
    if not terms or not donors:
        return None
    m = rng.choice(terms)
    for _ in range(10):
        donor = rng.choice(donors)
        if donor.lower() != m.group(0).lower() and donor.lower() not in passage.lower():
            return text[: m.start()] + donor + text[m.end() :]
    return None


_STOPLIKE = frozenset("patients treatment therapy including however between because outcomes results".split())


def _usable(sentence: str) -> bool:
    words = sentence.split()
    letters = sum(c.isalpha() for c in sentence)
    return 8 <= len(words) <= 60 and letters >= 0.6 * len(sentence) and sentence[-1:] in ".!?"


def read_chunks(index: Path) -> list[dict[str, Any]]:
    """The chunk records (``chunks.jsonl``) of an index folder, read as data: nothing is executed."""
    from pipeline.index import resolve_version

    path = resolve_version(index) / "chunks.jsonl"
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def synthetic_pairs(chunks: Sequence[dict[str, Any]], n: int, seed: int) -> list[Example]:
    """About ``n`` pairs from corpus chunks: a third supported (a sentence, or it rephrased by rules), the rest
    edits of them (half of those rephrased first) or sentences from elsewhere in the document."""
    rng = random.Random(seed)
    if n <= 0 or not chunks:
        return []
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for c in chunks:
        by_doc.setdefault(str(c["doc_id"]), []).append(c)
    donors = sorted(
        {m.group(0) for c in rng.sample(list(chunks), min(500, len(chunks))) for m in _TERM.finditer(c["text"])}
    )
    order = list(chunks)
    rng.shuffle(order)
    kinds = ["supported", "paraphrase", "paraphrase", *EDITS]
    out: list[Example] = []
    made: Counter[str] = Counter()
    for chunk in order:
        if len(out) >= n:
            break
        passage = chunk["text"]
        sents = [s for s in sentences(passage) if _usable(s)]
        if not sents:
            continue
        sentence = rng.choice(sents)
        kind = kinds[len(out) % len(kinds)]
        if kind == "paraphrase":
            claim = paraphrase(sentence)
            if claim is None:  # nothing to rephrase: the sentence itself, still supported
                claim, kind = sentence, "supported"
        else:
            claim = sentence if kind == "supported" else None
        if kind in EDITS:
            # Half the edits start from a rephrased sentence, so "reworded" never means "supported" by itself.
            base = (paraphrase(sentence) if rng.random() < 0.5 else None) or sentence
            # An edit this sentence does not allow (no number, no direction word) gives way to another one.
            fallbacks = [k for k in EDITS if k != kind]
            rng.shuffle(fallbacks)
            for k in [kind, *fallbacks]:
                claim = _make_claim(k, base, passage, chunk, by_doc, donors, rng)
                if claim is not None and claim != base:
                    kind = k
                    break
                claim = None
        if claim is None:
            continue
        label = int(kind in ("supported", "paraphrase"))
        out.append(Example(claim, passage, label, f"synthetic:{kind}", SYNTHETIC_RELATION.get(kind, "")))
        made[kind] += 1
    log.info("synthetic pairs: %s", dict(made))
    return out


EDITS = ("number", "direction", "population", "negation", "term", "neighbour")
# What each synthetic kind is to the three-way head. A changed number, a flipped direction or a flipped negation
# says the opposite of the source; another population or a foreign term is not supported (the source may be
# silent or say otherwise); a sentence from elsewhere in the document is about something the chunk does not say.
SYNTHETIC_RELATION = {
    "supported": "supported",
    "paraphrase": "supported",
    "number": "contradicted",
    "direction": "contradicted",
    "negation": "contradicted",
    "population": "",
    "term": "",
    "neighbour": "nei",
}
_PAREN = re.compile(r"\s*\([^()]*\)")
_DISCOURSE = re.compile(
    r"^(?:however|moreover|in addition|additionally|therefore|thus|overall|in conclusion|in summary|notably|"
    r"importantly|furthermore|conclusions?|results?|background|objectives?|methods?)\s*[,:]\s*",
    re.I,
)
_LEADING = re.compile(r"^(In|Among|For|During|After|Before|Within|Compared with) ([^,]{3,80}), (.{12,}?)([.!?])$", re.I)
_TAIL = re.compile(r"(?:, (?:which|while|whereas|but|although)\b|; ).*$")


def paraphrase(sentence: str) -> str | None:
    """The sentence reworded by meaning-keeping rules, or None when none applies.

    Drops parentheses, a leading discourse marker ("However,", "CONCLUSIONS:") and a trailing ", which ..." /
    ", but ..." / "; ..." clause, and moves a leading "In X," to the end. Each keeps what the claim asserts
    true of the source (a part of a sentence is entailed by it), which is what a faithful summary does.
    """
    out = _PAREN.sub("", sentence)
    out = _DISCOURSE.sub("", out)
    if m := _LEADING.match(out):
        rest = m.group(3)
        out = f"{rest[:1].upper()}{rest[1:]} {m.group(1).lower()} {m.group(2)}{m.group(4)}"
    cut = _TAIL.sub("", out.rstrip(".!?"))
    if len(cut.split()) >= 6 and cut != out.rstrip(".!?"):
        out = cut + "."
    out = " ".join(out.split())
    if out[:1].islower():
        out = out[:1].upper() + out[1:]
    return out if out != sentence and len(out.split()) >= 6 else None


def _make_claim(
    kind: str,
    sentence: str,
    passage: str,
    chunk: dict[str, Any],
    by_doc: dict[str, list[dict[str, Any]]],
    donors: Sequence[str],
    rng: random.Random,
) -> str | None:
    """One claim of ``kind`` from ``sentence`` (a sentence of ``passage``); None when the edit does not apply."""
    if kind == "supported":
        return sentence
    if kind == "number":
        return _change_number(sentence, rng)
    if kind == "direction":
        return _swap_words(sentence, _FLIPS, rng)
    if kind == "population":
        return _swap_words(sentence, _POPULATIONS, rng)
    if kind == "negation":
        return _negate(sentence, rng)
    if kind == "term":
        return _swap_term(sentence, passage, donors, rng)
    # "neighbour": a sentence from another chunk of the same document that this chunk does not contain
    others = [
        s
        for c in by_doc[str(chunk["doc_id"])]
        if c["id"] != chunk["id"]
        for s in sentences(c["text"])
        if _usable(s) and s not in passage
    ]
    return rng.choice(others) if others else None


HUMAN_EDITS = ("number", "direction", "population", "negation", "term")


def augment_human(examples: Sequence[Example], share: float, seed: int) -> list[Example]:
    """Edited, unsupported copies of supported human pairs (MiniCheck's minimal-edit negatives, on real claims).

    Each supported human pair is picked with probability ``share``; its claim gets one edit that this claim
    allows (a changed number, a flipped direction, another population, a negation added or removed, a term
    from another passage), and the pair goes back with label 0 and the same passage. Call it on the train
    side only: an edit of a development claim would let the development figures see its source.
    """
    rng = random.Random(f"augment\x00{seed}")
    human = [e for e in examples if not e.source.startswith("synthetic")]
    donors = sorted({m.group(0) for e in rng.sample(human, min(500, len(human))) for m in _TERM.finditer(e.passage)})
    out: list[Example] = []
    for e in human:
        if e.label != 1 or rng.random() >= share:
            continue
        kinds = [k for k in HUMAN_EDITS if k != "term"]
        rng.shuffle(kinds)
        for kind in [*kinds, "term"]:  # a swapped-in foreign term is the easiest tell: the last resort
            claim = _make_claim(kind, e.claim, e.passage, {}, {}, donors, rng)
            if claim is not None and _norm(claim) != _norm(e.claim):
                out.append(Example(claim, e.passage, 0, f"{e.source}:{kind}", SYNTHETIC_RELATION.get(kind, "")))
                break
    return out


# The sets whose held-out pairs `medcite eval calibrate` reports: the epoch is chosen on their development pairs.
SELECTED_ON = ("expertqa", "healthver", "scifact")


def _human_dev_auroc(checker: Any, dev_set: Sequence[Example]) -> dict[str, float]:
    """AUROC of each human set's development pairs (both classes present), and as ``mean`` the mean over
    the :data:`SELECTED_ON` sets (over all of them when none of those is present): what ``select_epoch`` reads."""
    return dev_auroc_by_source(checker, dev_set)


def dev_auroc_by_source(checker: Any, dev_set: Sequence[Example]) -> dict[str, float]:
    """The figures of :func:`_human_dev_auroc`; the training record's, whatever chooses the epoch."""
    out: dict[str, float] = {}
    for source in sorted({e.source for e in dev_set if not e.source.startswith("synthetic")}):
        rows = [e for e in dev_set if e.source == source]
        y = np.array([e.label for e in rows], dtype=int)
        if len(set(y.tolist())) == 2:
            out[source] = auroc(y, checker.logits([(e.claim, e.passage) for e in rows]))
    picked = [v for k, v in out.items() if k in SELECTED_ON] or list(out.values())
    if picked:
        out["mean"] = float(np.mean(picked))
    return out


def _group(example: Example) -> str:
    key = example.passage if example.source == "covidfact" else example.claim
    # Salted apart from calibrate.split_of's hash, which already decided train vs held out on these groups.
    return hashlib.sha256(f"dev\x00{example.source}\x00{_norm(key)}".encode()).hexdigest()


def dev_split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(train, dev): a tenth of the claim groups, fixed by hash, for the threshold."""
    train, dev = [], []
    for e in examples:
        (dev if int(_group(e)[:8], 16) % 1000 < DEV_PERMILLE else train).append(e)
    return train, dev


# --------------------------------------------------------------------------- training


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Shuffled batches of similar length: sort within shuffled pools of 50 batches, then shuffle batches."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(idx), pool):
        chunk = sorted(idx[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    yield from batches


def _views(tokenizer: Any, examples: Sequence[Example], max_length: int, n: int = 0) -> list[tuple[str, str]]:
    return [(best_window(tokenizer, e.claim, e.passage, max_length, n), e.claim) for e in examples]


def seeded(config: TrainConfig) -> random.Random:
    """Seed Python, NumPy and torch from ``config.seed`` (and set torch's threads, when given) before training;
    returns the random generator the data order is drawn from."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    return random.Random(config.seed)


def relation_loss(logits: Any, targets: Any) -> Any:
    """Mean of -log P(the example's relation): -log of the summed softmax over the outputs its target marks."""
    import torch

    log_p = torch.log_softmax(logits, dim=-1)
    right = torch.logsumexp(log_p.masked_fill(targets <= 0, float("-inf")), dim=-1)
    return -right.mean()


@dataclass
class Fitted:
    """A trained cross-encoder and how its training went."""

    model: Any
    tokenizer: Any
    bf16: bool
    steps: int
    losses: list[float]
    epochs: list[dict[str, Any]]
    kept_epoch: int


def fit(
    config: TrainConfig,
    train_set: Sequence[Example],
    rng: random.Random,
    on_epoch: Callable[[Any, Any, bool], dict[str, float] | None] | None = None,
    *,
    start: tuple[Any, Any] | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    desc: str = "training",
) -> Fitted:
    """Fine-tune the bundled MiniLM cross-encoder on (text, passage, label) examples: the claim checker's and
    the relevance model's training, one loop for both.

    Each example is read as its best passage window beside its text (:func:`best_window`). With
    ``config.outputs`` 1 the loss is binary cross-entropy on ``label``; with 3 it is the negative log of the
    probability the head gives the example's ``relation`` (for a bare "not supported", contradicted or nei
    together). ``start`` continues from a (model, tokenizer) already trained (the previous stage), else the
    bundled MiniLM with a new head; ``epochs`` and ``lr`` override the config's. ``on_epoch`` scores the
    model after each epoch (development figures with a ``mean``); the epoch with the best mean is kept,
    else the last.
    """
    import torch
    from tqdm import tqdm

    model, tokenizer = start if start is not None else load_base(config.outputs)
    n_epochs = config.epochs if epochs is None else epochs
    lr = config.lr if lr is None else lr
    frozen = tuple(f"encoder.encoder.layer.{i}." for i in range(config.frozen_layers))
    for name, p in model.named_parameters():
        p.requires_grad_(trainable(name) and not name.startswith(frozen))
    bf16 = cpu_has_bf16() if config.bf16 is None else config.bf16
    views = _views(tokenizer, train_set, config.max_length, config.sentences_per_window)
    labels = torch.tensor([float(e.label) for e in train_set])
    if config.outputs == len(RELATIONS):
        targets = torch.tensor([_TARGETS[e.relation or ("supported" if e.label else "")] for e in train_set])
    lengths = [len(w) + len(c) for w, c in views]
    steps_per_epoch = math.ceil(len(views) / config.batch_size)
    total = steps_per_epoch * n_epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )
    warmup = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    model.train()
    step, losses, epochs, finished = 0, [], [], 0
    best: tuple[float, int, dict[str, Any]] | None = None
    bar = tqdm(total=total, desc=desc, unit="step")
    for epoch in range(1, n_epochs + 1):
        if step >= total:
            break
        for batch in _batches(lengths, config.batch_size, rng):
            if step >= total:
                break
            enc = encode(tokenizer, [views[i] for i in batch], config.max_length)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(**enc)
            if config.outputs == 1:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels[batch])
            else:
                loss = relation_loss(logits.float(), targets[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        finished = epoch
        model.eval()
        figures = on_epoch(model, tokenizer, bf16) if on_epoch is not None else None
        model.train()
        if figures is not None:
            epochs.append({"epoch": epoch, "step": step, "loss": float(np.mean(losses[-50:])), "dev_auroc": figures})
            shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
            bar.write(f"epoch {epoch}: development AUROC {shown}")
            if "mean" in figures and (best is None or figures["mean"] > best[0]):
                state = {k: v.detach().clone() for k, v in model.state_dict().items() if trainable(k)}
                best = (figures["mean"], epoch, state)
    bar.close()
    if best is not None and best[1] != finished:
        log.info("keeping epoch %d (development AUROC %.3f)", best[1], best[0])
        model.load_state_dict(best[2], strict=False)
    kept = best[1] if best is not None else finished
    return Fitted(model, tokenizer, bf16, step, losses, epochs, kept)


def checker_recipe(**changes: Any) -> TrainConfig:
    """The committed checker's recipe: three outputs, trained in three stages (general NLI, claim verification,
    our own edits and ExpertQA), each starting from the one before."""
    base = TrainConfig(
        outputs=3,
        stages=tuple(STAGES),
        stage_epochs=(2, 2, 2),
        stage_lr=(6e-5, 4e-5, 2e-5),
        batch_size=32,
        max_length=160,
        synthetic=3000,
    )
    return replace(base, **changes)


class Stage(NamedTuple):
    name: str
    sets: tuple[str, ...]  # set names, "synthetic" for our corpus's edits
    epochs: int
    lr: float


def stages_of(config: TrainConfig) -> list[Stage]:
    """The stages ``config`` trains, in order; without ``stages``, one stage on ``sets`` (and synthetic pairs)."""
    if not config.stages:
        extra = ("synthetic",) if config.synthetic else ()
        return [Stage("human", (*config.sets, *extra), config.epochs, config.lr)]
    out = []
    for k, name in enumerate(config.stages):
        if name not in STAGES:
            raise InputError(f"unknown stage {name!r}; choose from {', '.join(STAGES)}")
        sets = tuple(x for x in STAGES[name] if x != "synthetic" or config.synthetic)
        epochs = config.stage_epochs[k] if k < len(config.stage_epochs) else config.epochs
        lr = config.stage_lr[k] if k < len(config.stage_lr) else config.lr
        out.append(Stage(name, sets, epochs, lr))
    return out


def _stage_key(config: TrainConfig, stages: Sequence[Stage], data: str) -> str:
    """What decides a stage's weights: the config (less what only later stages use), the stages up to it and the
    pairs they train on; a saved stage with the same key is reused on ``--resume``, so changing the last stage
    retrains only that one."""
    later = ("max_steps", "threads", "stages", "stage_epochs", "stage_lr", "epochs", "lr", "sets")
    fields = {k: v for k, v in config.__dict__.items() if k not in later}
    text = json.dumps([fields, [list(s) for s in stages], data], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reseed(seed: int, k: int) -> random.Random:
    """Each stage draws its data order and dropout from its own seed, so a resumed run trains what a whole one does."""
    import torch

    torch.manual_seed(seed * 1000 + k)
    return random.Random(f"{seed}\x00stage{k}")


# Development pairs of the general NLI sets are many and not what the checker is for: a sample is scored.
DEV_GENERAL_SAMPLE = 300


def train(
    out: Path = Path("runs/checker"),
    config: TrainConfig | None = None,
    *,
    index: Path | None = Path("indexes/demo"),
    root: Path | None = None,
    blend: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the checker and write ``checker.json`` and ``model.safetensors`` into ``out``.

    With stages, each stage's weights are also saved under ``out/stages/<k>-<name>/`` (a judge folder of
    their own, for measuring what each stage gained); ``resume`` reuses a saved stage whose key matches.
    Returns the training record (also stored in ``checker.json``): counts, steps, seconds, dev figures.
    """
    import torch

    config = config or checker_recipe()
    t0 = time.perf_counter()
    seeded(config)
    plan = stages_of(config)

    examples = training_examples(config, index, root)
    index_id = None
    if config.synthetic and index is not None and any("synthetic" in st.sets for st in plan):
        index_id = hashlib.sha256("".join(sorted(c["id"] for c in read_chunks(index))).encode()).hexdigest()[:16]
    train_set, dev_set = dev_split(examples)
    if config.augment:
        edited = augment_human(train_set, config.augment, config.seed)
        log.info("human pairs: %d edited copies added as unsupported", len(edited))
        train_set += edited
    log.info(
        "pairs: %d train, %d dev; by source %s", len(train_set), len(dev_set), dict(Counter(e.source for e in examples))
    )

    cfg = CheckerConfig(
        max_length=config.max_length,
        sentences_per_window=config.sentences_per_window,
        base_sha256=hash_files(base_model_path()),
        outputs=config.outputs,
    )

    def on_epoch(model: Any, tokenizer: Any, bf16: bool) -> dict[str, float] | None:
        if not (config.select_epoch and dev_set):
            return None
        return _human_dev_auroc(ClaimChecker.in_memory(model, tokenizer, cfg, bf16=bf16), dev_set)

    start: tuple[Any, Any] | None = None
    seen: list[str] = []  # the pairs of each stage so far, by hash
    steps, losses, epochs, kept, stage_records = 0, [], [], 0, []
    bf16 = cpu_has_bf16() if config.bf16 is None else config.bf16
    for k, stage in enumerate(plan, 1):
        stage_t0 = time.perf_counter()
        rng = _reseed(config.seed, k)
        folder = out / "stages" / f"{k}-{stage.name}"
        pairs = [e for e in train_set if e.source.split(":")[0] in stage.sets]
        seen.append(_pairs_id(pairs))
        key = _stage_key(config, plan[:k], "".join(seen))
        if not pairs:
            raise InputError(f"stage {stage.name}: no training pairs (sets {', '.join(stage.sets)})")
        if len(plan) > 1 and resume and _saved_key(folder) == key:
            saved = ClaimChecker(folder, bf16=bf16)
            start = (saved.model, saved.tokenizer)
            stage_records.append(CheckerConfig.read(folder).training)
            log.info("stage %d (%s): reusing %s", k, stage.name, folder)
            continue
        fitted = fit(
            config,
            pairs,
            rng,
            on_epoch,
            start=start,
            epochs=stage.epochs,
            lr=stage.lr,
            desc=f"{k}/{len(plan)} {stage.name}",
        )
        start = (fitted.model, fitted.tokenizer)
        steps += fitted.steps
        losses, epochs, kept = fitted.losses, fitted.epochs, fitted.kept_epoch
        record = {
            "stage": stage.name,
            "key": key,
            "sets": list(stage.sets),
            "pairs": dict(Counter(e.source.split(":")[0] for e in pairs)),
            "epochs": stage.epochs,
            "lr": stage.lr,
            "steps": fitted.steps,
            "final_loss": float(np.mean(fitted.losses[-50:])) if fitted.losses else None,
            "seconds": round(time.perf_counter() - stage_t0, 1),
        }
        stage_records.append(record)
        if len(plan) > 1:
            fitted.model.eval()
            save_weights(fitted.model, folder)
            replace(cfg, training=record, weights_sha256=weights_sha256(folder)).write(folder)
        log.info(
            "stage %d (%s): %d pairs, %d steps, %.0f s", k, stage.name, len(pairs), fitted.steps, record["seconds"]
        )
    assert start is not None
    model = start[0]
    train_seconds = time.perf_counter() - t0

    # Threshold on the development pairs, scored the way the judge scores (best window, P(supported)).
    model.eval()
    save_weights(model, out)
    cfg.write(out)
    checker = ClaimChecker(out, bf16=bf16)
    dev_scored = _dev_sample(dev_set, config.seed)
    # The threshold is for claims: chosen on the claim sets' and our own development pairs, not general NLI's.
    for_threshold = [e for e in dev_scored if e.source.split(":")[0] not in GENERAL_NLI] or dev_scored
    dev_scores = checker.score([(e.claim, e.passage) for e in for_threshold]) if for_threshold else np.zeros(0)
    dev_labels = np.array([e.label for e in for_threshold], dtype=int)
    if len(set(dev_labels.tolist())) == 2:
        threshold = choose_threshold(dev_labels, dev_scores)
        dev = {
            "n": len(for_threshold),
            "auroc": auroc(dev_labels, dev_scores),
            "balanced_accuracy": balanced_accuracy(dev_labels, dev_scores >= threshold),
            "by_source": dev_auroc_by_source(checker, dev_scored),
        }
    else:
        threshold, dev = 0.5, {"n": len(for_threshold)}
    record = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.__dict__.items()},
        "bf16": bf16,
        "pairs": dict(Counter(e.source.split(":")[0] for e in train_set)),
        "pairs_by_source": dict(sorted(Counter(e.source for e in [*train_set, *dev_set]).items())),
        "stages": stage_records,
        "epochs": epochs,
        "kept_epoch": kept,
        "dev": dev,
        "steps": steps,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "index": index_id,
        "seconds": round(time.perf_counter() - t0, 1),
        "train_seconds": round(train_seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    cfg.threshold = float(threshold)
    cfg.training = record
    cfg.weights_sha256 = weights_sha256(out)
    cfg.write(out)
    if blend:
        record["blend"] = fit_blend(out, dev_set, checker=checker)
    return record


def _pairs_id(pairs: Sequence[Example]) -> str:
    text = "".join(f"{e.source}\x00{e.claim}\x00{e.passage}\x00{e.label}\x00{e.relation}\n" for e in pairs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _saved_key(folder: Path) -> str | None:
    try:
        return str(CheckerConfig.read(folder).training.get("key"))
    except InputError:
        return None


def _dev_sample(dev_set: Sequence[Example], seed: int) -> list[Example]:
    """The development pairs that are scored: all of them, but at most DEV_GENERAL_SAMPLE of each general NLI set."""
    rng = random.Random(f"dev-sample\x00{seed}")
    out: list[Example] = []
    for source in sorted({e.source for e in dev_set}):
        rows = [e for e in dev_set if e.source == source]
        if source in GENERAL_NLI and len(rows) > DEV_GENERAL_SAMPLE:
            rows = rng.sample(rows, DEV_GENERAL_SAMPLE)
        out.extend(rows)
    return out


def training_examples(config: TrainConfig, index: Path | None, root: Path | None) -> list[Example]:
    """Human pairs (train side) plus synthetic pairs, exactly as :func:`train` builds them."""
    wanted = [x for st in stages_of(config) for x in st.sets]
    examples = human_pairs(list(dict.fromkeys(x for x in wanted if x != "synthetic")), root)
    if "synthetic" in wanted:
        if index is None:
            raise InputError("synthetic pairs need an index (--index), or pass --synthetic 0")
        examples += synthetic_pairs(read_chunks(index), config.synthetic, config.seed)
    return examples


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50, weights: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """L2-regularised, optionally sample-weighted logistic regression by Newton's method: (coefficients, intercept)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    sw = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (sw * (p - y)) + reg * w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit_blend(out: Path, dev_set: Sequence[Example], *, checker: Any = None) -> dict[str, Any]:
    """Fit the ``blend`` judge (checker logit, embedding cosine, lexical overlap -> P(supported)) on dev pairs.

    Written into ``checker.json`` as ``blend``; the threshold is the one that maximises balanced accuracy
    on the same dev pairs. Returns the fitted blend with its dev AUROC beside the checker's alone.
    """
    from pipeline.judge import EmbeddingJudge, LexicalJudge
    from pipeline.judge.checker import ClaimChecker

    checker = checker or ClaimChecker(out)
    # Human-labelled pairs only, each set weighing the same: the blend is for real claims, and the synthetic
    # edits (which the checker alone already separates) would otherwise set its weights.
    # General NLI pairs (SNLI's captions, SICK) are not claims either: the blend is fitted on claim sets only.
    dev_set = [e for e in dev_set if not e.source.startswith("synthetic") and e.source not in GENERAL_NLI]
    if not dev_set:
        raise InputError("no human-labelled development pairs to fit the blend on")
    per_source = Counter(e.source for e in dev_set)
    sample_weights = np.array([len(dev_set) / (len(per_source) * per_source[e.source]) for e in dev_set])
    pairs = [(e.claim, e.passage) for e in dev_set]
    y = np.array([e.label for e in dev_set], dtype=float)
    z = checker.logits(pairs).astype(np.float64)
    z = np.where(np.isfinite(z), z, -10.0)
    x = np.column_stack([z, EmbeddingJudge().score(pairs), LexicalJudge().score(pairs)])
    coef, intercept = fit_logistic(x, y, weights=sample_weights)
    p = 1.0 / (1.0 + np.exp(-(x @ coef + intercept)))
    blend = {
        "features": ["checker_logit", "embedding", "lexical"],
        "coef": [float(c) for c in coef],
        "intercept": intercept,
        "n": len(dev_set),
        "threshold": choose_threshold(y.astype(int), p),
        "dev_auroc": auroc(y.astype(int), p),
        "dev_auroc_checker_alone": auroc(y.astype(int), z),
    }
    cfg = CheckerConfig.read(out)
    cfg.blend = blend
    cfg.write(out)
    return blend
