"""A statement's verdict: what ``medcite eval`` found for it, read by the summary and the HTML report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# "contradicted": not supported, and a three-way judge reads the cited passages as saying otherwise (worse for a
# clinician than "unsupported", which is silence or too little); judges that read two ways never give it.
LABELS = ("supported", "contradicted", "unsupported", "no_citation", "bad_citation")


@dataclass(frozen=True, slots=True)
class Verdict:
    answer_id: str
    section: str
    block: int
    item: int
    text: str
    label: str
    score: float | None
    citations: tuple[int, ...]
    bad_citations: tuple[int, ...] = ()
    relevant: tuple[bool, ...] = ()  # per citation, for precision
    recall: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["citations"] = list(self.citations)
        d["bad_citations"] = list(self.bad_citations)
        d["relevant"] = list(self.relevant)
        return d
