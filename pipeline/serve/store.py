"""Saved answers and their editorial review: one SQLite file in write-ahead-log mode.

An answer is written in one transaction when it is complete (question, rewrite, audience, the answer in its
JSON shape with its run record), so a server killed mid-answer leaves every finished answer and no half row.
Each review (Submitted, Under review, Approved, Rejected, with reviewer, note and time) is kept as its own row,
and the answer's row carries the latest, so the review list is one query and the history is never lost.

The store is used from the web server's threads: every call opens its own short transaction on a connection
of the calling thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.types import Answer, to_dict

STATUSES = ("submitted", "under review", "approved", "rejected")
FILENAME = "medcite.sqlite"
MAX_REVIEWER = 120
MAX_NOTE = 4000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    turn INTEGER NOT NULL,
    asked TEXT NOT NULL,
    query TEXT NOT NULL,
    rewriter TEXT NOT NULL,
    audience TEXT NOT NULL,
    answer TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'submitted',
    reviewer TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    UNIQUE (conversation, turn)
);
CREATE INDEX IF NOT EXISTS answers_status ON answers (status, updated);
CREATE TABLE IF NOT EXISTS reviews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL REFERENCES answers (id),
    status TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    note TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


def now() -> str:
    """The time a row is written, in UTC, to the second (ISO 8601)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class Saved:
    """A stored answer with its place in a conversation and its latest review."""

    id: str
    conversation: str
    turn: int
    asked: str
    query: str
    rewriter: str
    audience: str
    answer: dict[str, Any]
    created: str
    status: str
    reviewer: str
    note: str
    updated: str


@dataclass(frozen=True, slots=True)
class Review:
    status: str
    reviewer: str
    note: str
    at: str


class Store:
    """Answers and reviews in ``folder/medcite.sqlite`` (created with its folder)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{self.folder}: cannot make the data folder ({e.strerror or e})") from None
        self.path = self.folder / FILENAME
        self._local = threading.local()
        self._db().executescript(_SCHEMA)  # its own transaction

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a finished answer survives the machine, not only the process
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: object, value: object, tb: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _tx(self) -> Store._Tx:
        return Store._Tx(self._db())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ------------------------------------------------------------------ answers

    def add(self, answer: Answer, *, conversation: str, turn: int, asked: str, rewriter: str, audience: str) -> Saved:
        """Store a finished answer (one transaction: all of it or nothing) as Submitted."""
        if not answer.id:
            raise InputError("an answer without an id cannot be stored")
        at = now()
        shape = to_dict(answer)
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (id, conversation, turn, asked, query, rewriter, audience, answer, created, "
                "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer.id, conversation, turn, asked, answer.question, rewriter, audience, json.dumps(shape), at, at),
            )
            db.execute(
                "INSERT INTO reviews (answer_id, status, reviewer, note, at) VALUES (?, 'submitted', '', '', ?)",
                (answer.id, at),
            )
        return self._must(answer.id)

    def get(self, answer_id: str) -> Saved | None:
        row = self._db().execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return _saved(row) if row else None

    def _must(self, answer_id: str) -> Saved:
        saved = self.get(answer_id)
        if saved is None:  # only if the file was changed behind the store's back
            raise InputError(f"{self.path}: answer {answer_id!r} vanished as it was written")
        return saved

    def conversation(self, conversation: str) -> list[Saved]:
        """The turns of one conversation, in order."""
        rows = self._db().execute("SELECT * FROM answers WHERE conversation = ? ORDER BY turn", (conversation,))
        return [_saved(r) for r in rows]

    def answers(self, *, status: str | None = None, limit: int = 200) -> list[Saved]:
        """The latest answers first, of one status or all."""
        if status is not None:
            _check_status(status)
            rows = self._db().execute(
                "SELECT * FROM answers WHERE status = ? ORDER BY updated DESC, created DESC LIMIT ?", (status, limit)
            )
        else:
            rows = self._db().execute("SELECT * FROM answers ORDER BY updated DESC, created DESC LIMIT ?", (limit,))
        return [_saved(r) for r in rows]

    def count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM answers").fetchone()[0])

    # ------------------------------------------------------------------ review

    def review(self, answer_id: str, *, status: str, reviewer: str, note: str = "") -> Saved:
        """Record a review of an answer: its new status, who set it, why, and when."""
        _check_status(status)
        reviewer = " ".join(reviewer.split())
        if not reviewer:
            raise InputError("a review needs the reviewer's name")
        if len(reviewer) > MAX_REVIEWER or len(note) > MAX_NOTE:
            raise InputError(f"the reviewer's name is at most {MAX_REVIEWER} characters and a note {MAX_NOTE}")
        at = now()
        with self._tx() as db:
            changed = db.execute(
                "UPDATE answers SET status = ?, reviewer = ?, note = ?, updated = ? WHERE id = ?",
                (status, reviewer, note, at, answer_id),
            ).rowcount
            if not changed:
                raise InputError(f"no answer {answer_id!r} to review")
            db.execute(
                "INSERT INTO reviews (answer_id, status, reviewer, note, at) VALUES (?, ?, ?, ?, ?)",
                (answer_id, status, reviewer, note, at),
            )
        return self._must(answer_id)

    def history(self, answer_id: str) -> list[Review]:
        """Every review of an answer, oldest first (its submission first)."""
        rows = self._db().execute(
            "SELECT status, reviewer, note, at FROM reviews WHERE answer_id = ? ORDER BY seq", (answer_id,)
        )
        return [Review(r["status"], r["reviewer"], r["note"], r["at"]) for r in rows]

    def export(self, *, status: str = "approved") -> Iterator[dict[str, Any]]:
        """Answers of a status in the answer JSON shape, with their review (``review``), oldest first."""
        _check_status(status)
        rows = self._db().execute("SELECT * FROM answers WHERE status = ? ORDER BY created", (status,))
        for r in rows:
            yield exported(_saved(r))


def exported(saved: Saved) -> dict[str, Any]:
    """A stored answer in the answer JSON shape, with the question as asked (``asked``) and its latest review."""
    review = {"status": saved.status, "reviewer": saved.reviewer, "note": saved.note, "updated": saved.updated}
    return {**saved.answer, "asked": saved.asked, "review": review}


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InputError(f"unknown review status {status!r}; choose from {', '.join(STATUSES)}")


def _saved(row: sqlite3.Row) -> Saved:
    return Saved(
        id=row["id"],
        conversation=row["conversation"],
        turn=row["turn"],
        asked=row["asked"],
        query=row["query"],
        rewriter=row["rewriter"],
        audience=row["audience"],
        answer=json.loads(row["answer"]),
        created=row["created"],
        status=row["status"],
        reviewer=row["reviewer"],
        note=row["note"],
        updated=row["updated"],
    )
