"""Hybrid retrieval over an opened index: dense (FAISS) + lexical (BM25), fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al., 2009): ``score(c) = sum over retrievers of 1 / (rrf_k + rank)``.
It needs no score calibration between cosine similarities and BM25 scores, which live on
different scales.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed import Embedder, default_embedder
from pipeline.errors import IndexError_, IndexMismatchError, InputError
from pipeline.settings import Settings
from pipeline.types import KINDS, Chunk, Document, Hit, Kind

log = logging.getLogger(__name__)

Mode = str  # "hybrid" | "dense" | "bm25"
_MODES = ("hybrid", "dense", "bm25")


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked lists of row ids; returns (row, score) by falling score, ties by row."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


@dataclass
class Index:
    """An opened index. Build with :func:`pipeline.build_index`, open with :func:`pipeline.open_index`."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    content_hashes: dict[str, str]
    chunks: list[Chunk]
    embeddings: np.ndarray
    dense: Any
    bm25_path: Path
    settings: Settings
    embedder: Embedder | None = None
    _bm25: Any = field(default=None, repr=False)
    _checked_embedder: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        from pipeline.index import index_kind_ranges

        self.ranges: dict[Kind, tuple[int, int]] = index_kind_ranges(self.chunks)
        self._row_of = {c.id: i for i, c in enumerate(self.chunks)}

    # ------------------------------------------------------------------ info

    @property
    def id(self) -> str:
        return str(self.manifest["index_id"])

    def __len__(self) -> int:
        return len(self.chunks)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {b - a}" for k, (a, b) in self.ranges.items())
        return f"<Index {self.id} at {self.path}: {len(self.documents)} documents, {len(self)} chunks ({counts})>"

    def similarity(self, query: str, chunk_ids: Sequence[str]) -> np.ndarray:
        """Cosine similarity between the query and each chunk (vectors are unit length)."""
        vec = self._embedder().encode([query])[0]
        rows = [self._row_of[c] for c in chunk_ids]
        return np.asarray(self.embeddings[rows], dtype=np.float32) @ vec if rows else np.zeros(0, dtype=np.float32)

    def chunk(self, chunk_id: str) -> Chunk:
        try:
            return self.chunks[self._row_of[chunk_id]]
        except KeyError:
            raise InputError(f"no chunk {chunk_id!r} in index {self.id}") from None

    # ------------------------------------------------------------------ parts

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            self.embedder = default_embedder(self.settings.embed)
        if not self._checked_embedder:
            emb = self.manifest["embedding"]
            if emb.get("fingerprint") != self.embedder.fingerprint():
                raise IndexMismatchError(
                    str(self.path),
                    {
                        "embedding model files (sha256)": (
                            str(emb.get("fingerprint"))[:12],
                            self.embedder.fingerprint()[:12],
                        )
                    },
                )
            self._checked_embedder = True
        return self.embedder

    def _bm25_index(self) -> Any:
        if self._bm25 is None:
            from pipeline.index import import_bm25s

            bm25s = import_bm25s()

            try:
                self._bm25 = bm25s.BM25.load(str(self.bm25_path), allow_pickle=False, show_progress=False)
            except (OSError, ValueError, KeyError) as e:
                raise IndexError_(f"{self.bm25_path}: unreadable BM25 index ({e})") from None
        return self._bm25

    def _rows(self, kind: Kind | None) -> tuple[int, int]:
        if kind is None:
            return 0, len(self.chunks)
        if kind not in KINDS:
            raise InputError(f"kind is {kind!r}; it must be one of {list(KINDS)} or None")
        return self.ranges[kind]

    def _dense(self, vectors: np.ndarray, n: int, kind: Kind | None) -> list[list[tuple[int, float]]]:
        import faiss as _faiss

        faiss: Any = _faiss  # its type stubs lack the SearchParameters* classes

        lo, hi = self._rows(kind)
        n = min(n, hi - lo)
        if n <= 0:
            return [[] for _ in range(len(vectors))]
        params: Any = None
        typ = self.settings.index.type
        sel = faiss.IDSelectorRange(lo, hi) if (lo, hi) != (0, len(self.chunks)) else None
        if typ == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.settings.index.hnsw_ef_search, n))
            if sel is not None:
                params.sel = sel
        elif typ == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.settings.index.ivf_nprobe)
            if sel is not None:
                params.sel = sel
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        scores, rows = self.dense.search(np.ascontiguousarray(vectors, dtype=np.float32), n, params=params)
        return [
            [(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]

    def _lexical(self, queries: Sequence[str], n: int, kind: Kind | None) -> list[list[tuple[int, float]]]:
        from pipeline.index import _bm25_tokenize

        lo, hi = self._rows(kind)
        n = min(n, hi - lo)
        if n <= 0:
            return [[] for _ in queries]
        bm25 = self._bm25_index()
        mask = None
        if (lo, hi) != (0, len(self.chunks)):
            mask = np.zeros(len(self.chunks), dtype=np.float32)
            mask[lo:hi] = 1.0
        tokens = _bm25_tokenize(queries, ids=False)
        out: list[list[tuple[int, float]]] = []
        for toks in tokens:
            if not toks:
                out.append([])
                continue
            rows, scores = bm25.retrieve([toks], k=n, show_progress=False, weight_mask=mask, n_threads=1)
            out.append([(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0 and lo <= r < hi])
        return out

    # ------------------------------------------------------------------ search

    def search_many(
        self, queries: Sequence[str], k: int | None = None, *, kind: Kind | None = None, mode: Mode | None = None
    ) -> list[list[Hit]]:
        """Top ``k`` hits for each query; dense queries are embedded in one batch."""
        mode = mode or self.settings.retrieve.mode
        if mode not in _MODES:
            raise InputError(f"mode is {mode!r}; it must be one of {list(_MODES)}")
        k = k or self.settings.retrieve.k
        if k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise InputError("the question is empty; ask something")
        n_cand = max(self.settings.retrieve.candidates, k)
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        lexical: list[list[tuple[int, float]]] = [[] for _ in queries]
        if mode in ("hybrid", "dense"):
            vecs = self._embedder().encode(list(queries))
            dense = self._dense(vecs, n_cand if mode == "hybrid" else k, kind)
        if mode in ("hybrid", "bm25"):
            lexical = self._lexical(queries, n_cand if mode == "hybrid" else k, kind)
        return [self._fuse(d, lx, k, mode) for d, lx in zip(dense, lexical, strict=True)]

    def search(
        self, query: str, k: int | None = None, *, kind: Kind | None = None, mode: Mode | None = None
    ) -> list[Hit]:
        """Top ``k`` hits for ``query``, of one kind or both.

        Args:
            query: the question.
            k: number of hits (default ``settings.retrieve.k``).
            kind: ``"guideline"``, ``"research"`` or None for both.
            mode: ``"hybrid"`` (default), ``"dense"`` or ``"bm25"``.
        """
        return self.search_many([query], k, kind=kind, mode=mode)[0]

    def search_by_kind(
        self, query: str, quotas: Mapping[Kind, int] | int | None = None, *, mode: Mode | None = None
    ) -> dict[Kind, list[Hit]]:
        """Hits per kind, each kind with its own quota (default ``settings.retrieve.k`` each)."""
        if quotas is None or isinstance(quotas, int):
            n = quotas or self.settings.retrieve.k
            quotas = dict.fromkeys(KINDS, n)
        return {kind: (self.search(query, n, kind=kind, mode=mode) if n > 0 else []) for kind, n in quotas.items()}

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int, mode: Mode) -> list[Hit]:
        d_rank = {row: (i + 1, s) for i, (row, s) in enumerate(dense)}
        l_rank = {row: (i + 1, s) for i, (row, s) in enumerate(lexical)}
        if mode == "hybrid":
            fused = rrf([[r for r, _ in dense], [r for r, _ in lexical]], k=self.settings.retrieve.rrf_k)
        elif mode == "dense":
            fused = dense
        else:
            fused = lexical
        hits = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            c = self.chunks[row]
            dr, ds = d_rank.get(row, (None, None))
            lr, ls = l_rank.get(row, (None, None))
            hits.append(
                Hit(
                    rank=rank,
                    score=float(score),
                    chunk=c,
                    document=self.documents[c.doc_id],
                    dense_score=ds,
                    dense_rank=dr,
                    lexical_score=ls,
                    lexical_rank=lr,
                )
            )
        return hits
