"""Cancer questions from the data mirror, for answer-level evaluations (deterministic order)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.corpus import default_mirror

CANCER = re.compile(
    r"cancer|tumou?r|carcinom|oncolog|neoplas|lymphoma|leuka?emi|melanoma|sarcoma|metasta|glioma|myeloma|chemotherap",
    re.I,
)
SEED = "What is the treatment for oligoprogressive colorectal cancer?"


def cancer_questions(n: int, mirror: Path | None = None) -> list[dict[str, str]]:
    """``n`` questions: the seed question, then BioASQ and PubMedQA cancer questions alternately.

    Each item is ``{"id", "question", "source"}``; ids are stable (BioASQ id, PMID).
    """
    mirror = mirror or default_mirror()
    if mirror is None:
        raise SystemExit("no data mirror: set MEDCITE_MIRROR or put the data at ../shared/data")
    bioasq: list[dict[str, str]] = []
    seen: set[str] = set()
    for f in sorted((mirror / "research" / "bioasq").glob("*_golden.json")):
        for q in json.loads(f.read_text())["questions"]:
            if CANCER.search(q["body"]) and q["id"] not in seen and q.get("type") in ("summary", "list", "factoid"):
                seen.add(q["id"])
                bioasq.append({"id": f"bioasq:{q['id']}", "question": q["body"].strip(), "source": "bioasq"})
    pubmedqa = [
        {"id": f"pubmedqa:{pmid}", "question": e["QUESTION"].strip(), "source": "pubmedqa"}
        for pmid, e in sorted(json.loads((mirror / "research/pubmedqa/ori_pqal.json").read_text()).items())
        if CANCER.search(e["QUESTION"])
    ]
    out = [{"id": "seed", "question": SEED, "source": "seed"}]
    for a, b in zip(bioasq, pubmedqa, strict=False):
        out.extend([a, b])
    return out[:n]
