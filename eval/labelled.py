"""Labelled (claim, passage) pairs: the record every faithfulness and NLI loader returns, and what they share."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("eval.calibrate")


class Labelled(NamedTuple):
    """One labelled pair; a plain tuple ``(claim, passage, label)`` with names, and two optional fields.

    ``relation`` says more than ``label`` where the set does: "supported", "contradicted" (the passage says
    otherwise), "nei" (not enough information), or "" (not supported, the set does not say which). ``group``
    is the key that keeps related pairs on one side of the held-out split (``eval.calibrate.split_of``):
    "" means the set's default (claim, or passage); a group starting with ``train:`` is always training data.
    """

    claim: str
    passage: str
    label: int  # 1 = supported, 0 = not fully supported
    relation: str = ""
    group: str = ""

    @property
    def relation3(self) -> str:
        """The relation, with a bare supported label read as "supported" and a bare unsupported one as ""."""
        return self.relation or ("supported" if self.label == 1 else "")


def as_list(value: object) -> list[object]:
    """A list as given, or one written as a Python list repr (``"['[1] URL\\n\\npassage']"``), or ``[value]``.

    ``ast.literal_eval`` reads literals only, so a hostile string cannot run code.
    """
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return [] if value is None else [value]
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed = None  # "[1] URL\n\n... ]" is a passage, not a list
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return list(parsed)
    return [value]


def dedupe(rows: Iterable[Labelled], source: str = "") -> list[Labelled]:
    """First occurrence of each (claim, passage); pairs labelled both ways are dropped as ambiguous."""
    labels: dict[tuple[str, str], set[tuple[int, str]]] = {}
    first: dict[tuple[str, str], Labelled] = {}
    total = 0
    for row in rows:
        total += 1
        key = (row.claim, row.passage)
        labels.setdefault(key, set()).add((row.label, row.relation3))
        first.setdefault(key, row)
    conflicts = sum(1 for v in labels.values() if len(v) > 1)
    out = [row for key, row in first.items() if len(labels[key]) == 1]
    if total != len(out):
        log.info("%s: %d duplicate pairs merged, %d labelled both ways dropped", source, total - len(first), conflicts)
    return out


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                log.warning("%s:%d: not JSON (%s); line skipped", path, lineno, e)
                continue
            if not isinstance(record, dict):
                log.warning("%s:%d: expected a JSON object, got %s; line skipped", path, lineno, type(record).__name__)
                continue
            yield lineno, record
