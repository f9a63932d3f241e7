"""The questions of a batch: read from a JSON Lines or CSV file, or given in code, each with a stable id."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a batch. ``row`` is its line in the questions file (0 when it came from code)."""

    id: str
    question: str
    audience: str | None = None
    row: int = 0


def question_id(question: str, audience: str | None = None) -> str:
    """The default id of a question: stable across runs and row order (a hash of its text and audience)."""
    return "q-" + hashlib.sha256(f"{audience or ''}\x00{question.strip()}".encode()).hexdigest()[:12]


def _item(row: Mapping[str, Any], where: str, n: int) -> Question:
    text = row.get("question")
    text = "" if text is None else str(text) if not isinstance(text, str) else text
    audience = row.get("audience")
    audience = str(audience).strip() or None if audience is not None else None
    raw_id = row.get("id")
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise InputError(f"{where}: id must be a string or a number, not {type(raw_id).__name__}")
    qid = str(raw_id).strip() if raw_id is not None and str(raw_id).strip() else question_id(text, audience)
    return Question(qid, text, audience, n)


def _check_unique(items: Sequence[Question], where: str) -> None:
    rows: dict[str, list[int]] = {}
    for i, q in enumerate(items, start=1):
        rows.setdefault(q.id, []).append(q.row or i)
    dups = {k: v for k, v in rows.items() if len(v) > 1}
    if dups:
        shown = "; ".join(f"{k!r} on rows {', '.join(map(str, v))}" for k, v in list(dups.items())[:5])
        more = f" (and {len(dups) - 5} more)" if len(dups) > 5 else ""
        raise InputError(
            f"{where}: duplicate question ids: {shown}{more}; give each row its own id "
            "(without an id column, the same question twice for the same audience gets the same id)"
        )


def read_questions(path: str | Path) -> list[Question]:
    """Questions from a ``.jsonl`` file (one object a line) or a ``.csv`` file with a header row.

    Each row needs ``question``; ``id`` and ``audience`` are optional. A row without an id gets
    :func:`question_id`. A row with an empty question or an unknown audience is kept: it fails on its
    own when answered, and the rest go on.

    Raises:
        InputError: the file is unreadable, not JSON Lines / CSV, has no ``question`` column, or two
            rows share an id (the message names the rows).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputError(f"{p}: questions must be a .jsonl file (one JSON object a line) or a .csv file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read the questions ({e})") from None
    items: list[Question] = []
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f'{p}:{n}: each line must be a JSON object like {{"question": "..."}}')
            items.append(_item(row, f"{p}:{n}", n))
    else:
        reader = csv.DictReader(text.splitlines())
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if "question" not in header:
            raise InputError(f"{p}: the first row must name the columns, one of them 'question' (found {header})")
        reader.fieldnames = header
        for row in reader:
            n = reader.line_num
            items.append(_item({k: v for k, v in row.items() if k}, f"{p}:{n}", n))
    _check_unique(items, str(p))
    return items


def as_questions(questions: Iterable[str | Question | Mapping[str, Any]]) -> list[Question]:
    """Strings, :class:`Question` values or ``{"question", "id"?, "audience"?}`` dicts, as questions."""
    items: list[Question] = []
    for n, q in enumerate(questions, start=1):
        if isinstance(q, Question):
            items.append(q)
        elif isinstance(q, str):
            items.append(Question(question_id(q), q, None, n))
        elif isinstance(q, Mapping):
            items.append(_item(q, f"question {n}", n))
        else:
            raise InputError(f"question {n} is a {type(q).__name__}; give a string or a dict with 'question'")
    _check_unique(items, "questions")
    return items
