"""The extractive generator: sentences of the sources, chosen by similarity to the question; no language model.

It picks, orders and de-duplicates the sentences of the sources closest to the question (bundled MiniLM
cosine), groups them by heading and cites each: faithful by construction. Each statement is its own quote
(``DraftItem.quote``), so the pipeline's quote check confirms the words are the source's.

With a ``scorer`` (the relevance model's P(answers), ``Settings().rerank.sentences``), sentences are chosen by
whether they answer the question rather than by how near they are to it: each is read with its passage's
"title — heading" line, the best one is the guideline lead, and the others must come close to it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from pipeline.chunk import SentenceSplitter, SpacySentences
from pipeline.embed import Embedder
from pipeline.generate.base import Audience, DraftItem, SectionRequest, Source, heading_leaf

_NAVIGATION = re.compile(r"^(for more information|for information|see |go to |refer to |\(?level of evidence)", re.I)
# Abstract section labels. A sentence under one that describes the study (its aim, design, people) says
# nothing a clinician asked for; a finding or conclusion keeps its words, less the label.
_STUDY_LABEL = re.compile(
    r"^(background|introduction|context|purpose|objectives?|aims?|hypothes[ie]s|methods?|materials and methods|"
    r"study design|design|setting|settings|patients|participants|subjects|population|interventions?|"
    r"main outcome measures?|outcome measures?|measurements?)\s*:\s*",
    re.I,
)
_FINDING_LABEL = re.compile(r"^(results?|findings|conclusions?|interpretation|summary)\s*:\s*", re.I)
# A reference-list entry, not a statement: "JAMA 2003;289(1):65-9.", "Jackson JL, Cogbill E, ... et al.", a URL.
_BIBLIOGRAPHY = re.compile(
    r"\b(?:19|20)\d{2}\s*;\s*\d+\s*(?:\(\s*[\w-]+\s*\))?\s*:\s*[\de]"  # year;volume(issue):pages
    r"|(?:\b[A-Z][a-z'-]+ [A-Z]{1,3}(?:,|\.| et al)[\s\S]*){3}"  # three "Surname AB," authors
    r"|\bet al\.\s*(?:[A-Z]|$)"
    r"|\bavailable (?:from|at)(?: url)?:?\s*(?:https?://|www\.)|https?://",
    re.I,
)
# A sentence that opens by pointing back at what came before ("All these findings were replicated", "This
# phenomenon, termed ...") says nothing on its own, and an answer states it on its own.
_ANAPHORA = re.compile(
    r"^(?:all (?:of )?these|both of these|these|this|those|such|they"
    # ... or that answers it: "On the contrary, vaccination plays a protective role" contradicts a sentence the
    # reader never sees, and shown alone it reads as a finding about the question.
    r"|on the contrary|in contrast|by contrast|conversely|however|nevertheless|nonetheless|instead"
    r"|similarly|likewise|in the same way|on the other hand|in turn)\b",
    re.I,
)
# A title in square brackets: how MEDLINE marks a title translated into English; a title is no finding.
_BRACKETED_TITLE = re.compile(r"^\[[^\]]*\][.\s]*$")
# A whole sentence ends in terminal punctuation (perhaps before a closing quote or bracket); a snippet cut
# mid-word ("...can be associated with severe t") does not.
_COMPLETE = re.compile(r"[.!?][\"')\]]*$")


def answerable_sentence(text: str, *, complete: bool = False) -> str | None:
    """The sentence as an answer may quote it (a finding's label cut off, the rest verbatim), or None when it is
    no answer: a study's aim, design or population, a cross-reference, a reference-list entry, a bracketed
    (translated) title, a sentence that points back at an earlier one ("These findings ..."), a fragment, or
    (``complete``: research snippets, whose excerpts can stop mid-word) a sentence without its final punctuation.
    Guideline list items often end without a full stop, so they are not held to that; but a guideline sentence that
    opens with a lower-case word is a list item cut from its lead-in, or several glued together (a patient summary's
    "immunotherapy (nivolumab or pembrolizumab ...) Treatment of cancer that has spread to the liver may also
    include: ..."). Research sentences may open with a drug or gene in lower case ("nivolumab plus ...", "p53")."""
    t = text.strip()
    if _STUDY_LABEL.match(t) or _NAVIGATION.match(t) or (complete and not _COMPLETE.search(t)):
        return None
    if not complete and t[:1].islower() and t.split()[0].isalpha():
        return None
    if _BIBLIOGRAPHY.search(t) or _ANAPHORA.match(t) or _BRACKETED_TITLE.match(t):
        return None
    t = _FINDING_LABEL.sub("", t, count=1)
    return t if 6 <= len(t.split()) <= 80 else None


_GENERIC_HEADINGS = {
    "general information",
    "incidence and mortality",
    "current clinical trials",
    "latest updates to this summary",
    "references",
    "about this pdq summary",
    "introduction",
    "overview",
}


# (question, texts) -> P(answers) of each text: the relevance model's score, for sentence choice.
SentenceScorer = Callable[[str, Sequence[str]], np.ndarray]


class ExtractiveGenerator:
    """Sentences of the sources, chosen by similarity to the question (or by ``scorer``); faithful by construction.

    Args:
        scorer: P(answers) for (question, sentence with its context line); when given, it orders the sentences,
            the best one is always stated, and another is kept when it reaches ``min_relevance`` and comes within
            ``relevance_margin`` of the best. Cosine still removes near-duplicates.
    """

    name = "extractive"

    def __init__(
        self,
        embedder: Embedder,
        splitter: SentenceSplitter | None = None,
        *,
        max_items: int = 6,
        min_score: float = 0.30,
        margin: float = 0.12,
        duplicate_cosine: float = 0.85,
        scorer: SentenceScorer | None = None,
        min_relevance: float = 0.2,
        relevance_margin: float = 0.5,
    ) -> None:
        self.embedder = embedder
        self.scorer = scorer
        self.min_relevance = min_relevance
        self.relevance_margin = relevance_margin
        self.splitter = splitter or SpacySentences()
        self.max_items = max_items
        self.min_score = min_score
        self.margin = margin
        self.duplicate_cosine = duplicate_cosine

    def with_scorer(self, scorer: SentenceScorer) -> ExtractiveGenerator:
        """A copy that chooses sentences by ``scorer``."""
        other = copy.copy(self)
        other.scorer = scorer
        return other

    @property
    def model(self) -> str:
        how = ", sentences by relevance" if self.scorer is not None else ""
        return f"extractive ({self.embedder.name}{how})"

    @property
    def prompt_hash(self) -> str:
        return "none"

    def _candidates(self, request: SectionRequest) -> list[tuple[float, int, int, str, np.ndarray]]:
        sents = self.splitter.split([s.hit.chunk.text for s in request.sources])
        flat = [
            (si, pos, a)
            for si, ss in enumerate(sents)
            for pos, t in enumerate(ss)
            if (a := answerable_sentence(t, complete=request.kind == "research"))
        ]
        if not flat:
            return []
        vecs = self.embedder.encode([request.question] + [t for _, _, t in flat])
        q, sv = vecs[0], vecs[1:]
        scores = sv @ q
        if self.scorer is not None:
            context = [request.sources[si].hit.chunk.context for si, _, _ in flat]
            texts = [f"{c}\n{t}" if c else t for c, (_, _, t) in zip(context, flat, strict=True)]
            scores = np.asarray(self.scorer(request.question, texts), dtype=np.float32)
        return [(float(scores[i]), si, pos, t, sv[i]) for i, (si, pos, t) in enumerate(flat)]

    def draft_section(self, request: SectionRequest) -> Iterator[DraftItem]:
        cands = sorted(self._candidates(request), key=lambda c: -c[0])
        if not cands:
            return
        # Keep sentences close to the best one: a passage's weaker sentences are context, not answer.
        if self.scorer is not None:
            floor = max(self.min_relevance, cands[0][0] - self.relevance_margin)
        else:
            floor = max(self.min_score, cands[0][0] - self.margin)
        picked: list[tuple[float, int, int, str, np.ndarray]] = []
        for c in cands:
            # By relevance the best sentence is always stated: the section was judged worth answering already
            # (abstention is decided on the passages), and its best sentence is the answer it has.
            if len(picked) >= self.max_items or (c[0] < floor and (self.scorer is None or picked)):
                break
            if any(float(c[4] @ p[4]) > self.duplicate_cosine for p in picked):
                continue
            picked.append(c)
        if not picked:
            return
        sources = request.sources
        if request.kind == "guideline":
            best = picked[0]
            hit = sources[best[1]].hit
            intro = "According to" if request.audience == "clinician" else "Guidance from"
            verb = "" if request.audience == "clinician" else " says"
            lead = f"{intro} {hit.document.header()}{verb}: {best[3]}"
            yield DraftItem(None, lead, (sources[best[1]].n,), quote=best[3])
            rest = picked[1:]
        else:
            rest = picked
        # Group by the heading the sentence came from (guidelines) and keep reading order inside a group.
        groups: dict[str | None, list[tuple[float, int, int, str, np.ndarray]]] = {}
        for c in rest:
            hit = sources[c[1]].hit
            key = (heading_leaf(hit.chunk.heading) or hit.document.title) if request.kind == "guideline" else None
            groups.setdefault(key, []).append(c)
        for heading, items in groups.items():
            for c in sorted(items, key=lambda c: (c[1], c[2])):
                yield DraftItem(heading, c[3], (sources[c[1]].n,), quote=c[3])

    def follow_ups(self, question: str, sources: Sequence[Source], audience: Audience) -> list[str]:
        out: list[str] = []
        for s in sources:
            leaf = heading_leaf(s.hit.chunk.heading)
            if not leaf or len(leaf.split()) > 10 or leaf.lower() in question.lower():
                continue
            if leaf.lower() in _GENERIC_HEADINGS or leaf.lower().startswith(("general information", "latest updates")):
                continue
            q = f"What does the evidence say about {leaf[0].lower() + leaf[1:]}?"
            if q not in out:
                out.append(q)
            if len(out) == 3:
                break
        return out
