"""Judge scores cached on disk, keyed by the judge's fingerprint and the hashes of claim and passage."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.judge.base import Judge, Pair


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CachedJudge:
    """Wraps a judge with an SQLite cache keyed by (judge fingerprint, claim sha256, passage sha256)."""

    def __init__(self, judge: Judge, path: str | Path) -> None:
        self.judge = judge
        self.name = judge.name
        self.threshold = judge.threshold
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS scores (judge TEXT, claim TEXT, passage TEXT, score REAL, "
            "PRIMARY KEY (judge, claim, passage))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS relations (judge TEXT, claim TEXT, passage TEXT, supported REAL, "
            "contradicted REAL, nei REAL, PRIMARY KEY (judge, claim, passage))"
        )
        self.hits = 0
        self.misses = 0

    @property
    def three_way(self) -> bool:
        return bool(getattr(self.judge, "three_way", False))

    def relations(self, pairs: Sequence[Pair]) -> np.ndarray:
        """The wrapped judge's three-way reading, cached like its scores."""
        fp = self.judge.fingerprint()
        keys = [(fp, _h(c), _h(p)) for c, p in pairs]
        found: dict[tuple[str, str, str], tuple[float, float, float]] = {}
        with self._lock:
            for k in dict.fromkeys(keys):
                row = self._db.execute(
                    "SELECT supported, contradicted, nei FROM relations WHERE judge=? AND claim=? AND passage=?", k
                ).fetchone()
                if row is not None:
                    found[k] = (float(row[0]), float(row[1]), float(row[2]))
        uniq = list(dict.fromkeys(k for k in keys if k not in found))
        if uniq:
            first: dict[tuple[str, str, str], int] = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            rel = self.judge.relations([pairs[first[k]] for k in uniq])  # type: ignore[attr-defined]
            rows = {k: (float(r[0]), float(r[1]), float(r[2])) for k, r in zip(uniq, rel, strict=True)}
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO relations VALUES (?, ?, ?, ?, ?, ?)", [(*k, *v) for k, v in rows.items()]
                )
                self._db.commit()
            found.update(rows)
        return np.array([found[k] for k in keys], dtype=np.float32).reshape(len(keys), 3)

    def fingerprint(self) -> str:
        return self.judge.fingerprint()

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        fp = self.judge.fingerprint()
        keys = [(fp, _h(c), _h(p)) for c, p in pairs]
        found: dict[tuple[str, str, str], float] = {}
        with self._lock:
            for k in dict.fromkeys(keys):
                row = self._db.execute("SELECT score FROM scores WHERE judge=? AND claim=? AND passage=?", k).fetchone()
                if row is not None:
                    found[k] = float(row[0])
        todo = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(pairs) - len(todo)
        self.misses += len(todo)
        if todo:
            uniq = list(dict.fromkeys(keys[i] for i in todo))
            first = {k: next(i for i in todo if keys[i] == k) for k in uniq}
            scores = self.judge.score([pairs[first[k]] for k in uniq])
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
                    [(*k, float(s)) for k, s in zip(uniq, scores, strict=True)],
                )
                self._db.commit()
            found.update({k: float(s) for k, s in zip(uniq, scores, strict=True)})
        return np.array([found[k] for k in keys], dtype=np.float32)

    def close(self) -> None:
        self._db.close()
