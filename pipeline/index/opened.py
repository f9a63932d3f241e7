"""An opened index and its loader: hybrid search, dense (FAISS) + lexical (BM25), fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al., 2009): ``score(c) = sum over retrievers of 1 / (rrf_k + rank)``.
It needs no score calibration between cosine similarities and BM25 scores, which live on
different scales.

:func:`open_index` checks the folder first (:mod:`pipeline.index.checks`): opening one never unpickles or
executes anything, every file is checked against the manifest's sha256, every path stays inside the
folder, and each row, header and count is checked before use. Rows are ordered guidelines first, so each
kind is a contiguous id range that FAISS and BM25 can filter without over-fetching.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pydantic import ValidationError

from pipeline.embed import Embedder, default_embedder
from pipeline.errors import IndexError_, IndexMismatchError, InputError
from pipeline.index.bm25 import bm25_tokenize, load_bm25
from pipeline.index.checks import (
    CHUNK_FIELDS,
    DOCUMENT_FIELDS,
    check_faiss_header,
    check_rows,
    compare_settings,
    read_manifest,
    safe_file,
    unlisted_bm25_files,
)
from pipeline.index.store import current_name, read_jsonl, resolve_version, sha256_file
from pipeline.settings import Settings
from pipeline.text import STOP_WORDS
from pipeline.types import KINDS, Chunk, Document, Hit, Kind

log = logging.getLogger(__name__)

_QUERY_MEMO = 256  # query vectors an opened index remembers

Mode = str  # "hybrid" | "dense" | "bm25"
MODES = ("hybrid", "dense", "bm25")
_OPEN_ATTEMPTS = 5


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked lists of row ids; returns (row, score) by falling score, ties by row."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


def fuse_hits(lists: Sequence[Sequence[Hit]], k: int, rrf_k: int = 60) -> list[Hit]:
    """Several ranked hit lists (one question searched in several phrasings) fused by reciprocal rank, top ``k``.

    Each hit keeps the scores and ranks of the first list it appears in (the question's own, when it is there);
    ``rank`` is renumbered and ``score`` becomes the fused score. Ties keep the first list's order.
    """
    first: dict[str, Hit] = {}
    order: dict[str, int] = {}
    rankings: list[list[int]] = []
    for hits in lists:
        ranking = []
        for h in hits:
            cid = h.chunk.id
            if cid not in order:
                order[cid] = len(order)
                first[cid] = h
            ranking.append(order[cid])
        rankings.append(ranking)
    ids = list(order)
    return [
        replace(first[ids[row]], rank=rank, score=float(score))
        for rank, (row, score) in enumerate(rrf(rankings, k=rrf_k)[:k], start=1)
    ]


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
    # Query vectors by text, shared with the copies with_settings makes: one ask searches each section and
    # scores the hits against the same question, which would otherwise embed it four times or more.
    _query_vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _query_lock: Any = field(default_factory=threading.Lock, repr=False)  # Any: pydantic models hold an Index

    def __post_init__(self) -> None:
        self.ranges: dict[Kind, tuple[int, int]] = index_kind_ranges(self.chunks)
        self._row_of = {c.id: i for i, c in enumerate(self.chunks)}
        self._by_doc: dict[str, list[Chunk]] | None = None

    # ------------------------------------------------------------------ info

    @property
    def id(self) -> str:
        return str(self.manifest["index_id"])

    def __len__(self) -> int:
        return len(self.chunks)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {b - a}" for k, (a, b) in self.ranges.items())
        return f"<Index {self.id} at {self.path}: {len(self.documents)} documents, {len(self)} chunks ({counts})>"

    def with_settings(self, settings: Settings) -> Index:
        """This index searched with ``settings`` (retrieval mode, k, candidates, ...): one settings object per call.

        Raises:
            IndexMismatchError: ``settings`` name another embedding model, chunking or index type than the
                index was built with.
        """
        if settings is self.settings or settings == self.settings:
            return self
        diff = compare_settings(self.manifest, settings, self.embedder)
        if diff:
            raise IndexMismatchError(str(self.path), diff)
        # The copy shares this index's (checked) embedder, so the model is loaded once however often it is rebound.
        return replace(self, settings=settings, embedder=self.query_embedder(), _checked_embedder=True)

    def similarity(self, query: str, chunk_ids: Sequence[str]) -> np.ndarray:
        """Cosine similarity between the query and each chunk (vectors are unit length)."""
        vec = self.query_vectors([query])[0]
        rows = [self._row_of[c] for c in chunk_ids]
        return np.asarray(self.embeddings[rows], dtype=np.float32) @ vec if rows else np.zeros(0, dtype=np.float32)

    def unmentioned(self, question: str, kind: Kind | None = None) -> list[str]:
        """The words of ``question`` that no chunk of ``kind`` (all chunks when None) mentions, in question order.

        Words are compared as the lexical index sees them (lower case, English stop words dropped, Snowball
        stems, titles and headings included), so "oligoprogressive" is mentioned by a chunk that says
        "oligoprogression". Numbers, one-letter words and question words ("what", "should") are never reported.
        A word in this list is one the indexed documents of that kind do not contain at all, which an answer can
        state as a fact.
        """
        lo, hi = self._rows(kind)
        bm25 = self._bm25_index()
        indptr, indices = np.asarray(bm25.scores["indptr"]), np.asarray(bm25.scores["indices"])
        words = [w for w in re.findall(r"(?u)\b\w\w+\b", question) if not w.isdigit() and w.lower() not in STOP_WORDS]
        stems = bm25_tokenize(words, ids=False) if words else []
        out: list[str] = []
        for word, toks in zip(words, stems, strict=True):
            if not toks or word.lower() in (o.lower() for o in out):
                continue
            t = bm25.vocab_dict.get(toks[0])
            rows = indices[indptr[t] : indptr[t + 1]] if t is not None else indices[:0]
            if not ((rows >= lo) & (rows < hi)).any():
                out.append(word)
        return out

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in reading order (none for an unknown id)."""
        if self._by_doc is None:
            by_doc: dict[str, list[Chunk]] = {}
            for c in self.chunks:
                by_doc.setdefault(c.doc_id, []).append(c)
            self._by_doc = by_doc
        return list(self._by_doc.get(doc_id, []))

    def chunk(self, chunk_id: str) -> Chunk:
        try:
            return self.chunks[self._row_of[chunk_id]]
        except KeyError:
            raise InputError(f"no chunk {chunk_id!r} in index {self.id}") from None

    # ------------------------------------------------------------------ parts

    def query_vectors(self, queries: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``queries`` (rows in order), each text embedded once and remembered (the last 256)."""
        if not queries:
            return np.zeros((0, self.query_embedder().dim), dtype=np.float32)
        with self._query_lock:
            found = {q: self._query_vectors[q] for q in queries if q in self._query_vectors}
        missing = [q for q in dict.fromkeys(queries) if q not in found]
        if missing:
            found.update(zip(missing, self.query_embedder().encode(missing), strict=True))
            with self._query_lock:  # batch workers share one index
                for q in missing:
                    self._query_vectors[q] = found[q]
                while len(self._query_vectors) > _QUERY_MEMO:
                    del self._query_vectors[next(iter(self._query_vectors))]
        return np.stack([found[q] for q in queries]).astype(np.float32, copy=False)

    def query_embedder(self) -> Embedder:
        """The embedder for queries of this index, loaded on first use and checked against the manifest's model."""
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
            self._bm25 = load_bm25(self.bm25_path, len(self.chunks))
        return self._bm25

    def _rows(self, kind: Kind | None) -> tuple[int, int]:
        if kind is None:
            return 0, len(self.chunks)
        if kind not in KINDS:
            raise InputError(f"kind is {kind!r}; it must be one of {list(KINDS)} or None")
        return self.ranges[kind]

    def _dense(self, vectors: np.ndarray, n: int, kind: Kind | None) -> list[list[tuple[int, float]]]:
        fs: Any = faiss  # its type stubs lack the SearchParameters* classes
        lo, hi = self._rows(kind)
        n = min(n, hi - lo)
        if n <= 0:
            return [[] for _ in range(len(vectors))]
        params: Any = None
        typ = self.settings.index.type
        sel = fs.IDSelectorRange(lo, hi) if (lo, hi) != (0, len(self.chunks)) else None
        if typ == "hnsw":
            params = fs.SearchParametersHNSW(efSearch=max(self.settings.index.hnsw_ef_search, n))
            if sel is not None:
                params.sel = sel
        elif typ == "ivf":
            params = fs.SearchParametersIVF(nprobe=self.settings.index.ivf_nprobe)
            if sel is not None:
                params.sel = sel
        elif sel is not None:
            params = fs.SearchParameters(sel=sel)
        scores, rows = self.dense.search(np.ascontiguousarray(vectors, dtype=np.float32), n, params=params)
        return [
            [(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]

    def _lexical(self, queries: Sequence[str], n: int, kind: Kind | None) -> list[list[tuple[int, float]]]:
        lo, hi = self._rows(kind)
        n = min(n, hi - lo)
        if n <= 0:
            return [[] for _ in queries]
        bm25 = self._bm25_index()
        mask = None
        if (lo, hi) != (0, len(self.chunks)):
            mask = np.zeros(len(self.chunks), dtype=np.float32)
            mask[lo:hi] = 1.0
        tokens = bm25_tokenize(queries, ids=False)
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
        if mode not in MODES:
            raise InputError(f"mode is {mode!r}; it must be one of {list(MODES)}")
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
            vecs = self.query_vectors(queries)
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


# --------------------------------------------------------------------------- open


def open_index(
    path: str | Path,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    verify: bool = True,
) -> Index:
    """Open an index for search.

    Args:
        path: the index folder (or one version folder inside it).
        settings: if given, the index must have been built with the same embedding model, chunking
            and index type; if None, the index's own settings are used.
        embedder: the query embedder; its model files must hash to the index's. Defaults to the bundled model.
        verify: check every file's sha256 against the manifest (catches damaged or edited files).

    Raises:
        IndexError_: the folder is missing, damaged, or from a newer medcite.
        IndexMismatchError: settings or the embedder differ from those the index was built with.
    """
    root = Path(path)
    for attempt in range(1, _OPEN_ATTEMPTS + 1):
        named = current_name(root)
        try:
            return _open_version(resolve_version(root), settings, embedder, verify)
        except IndexError_:
            # A build may have replaced and pruned this version while it was being read: if CURRENT has
            # moved on since, open the version it names now; if not, the damage is real.
            if attempt == _OPEN_ATTEMPTS or not named or current_name(root) == named:
                raise
            log.info("index %s: version %s went away while opening; opening the current one", root, named)
    raise AssertionError("unreachable")


def _open_version(version: Path, settings: Settings | None, embedder: Embedder | None, verify: bool) -> Index:
    try:
        return _open_version_files(version, settings, embedder, verify)
    except OSError as e:  # a file vanished or cannot be read: name it
        where = e.filename or version
        raise IndexError_(f"{where}: unreadable ({e.strerror or e})") from None


def _open_version_files(version: Path, settings: Settings | None, embedder: Embedder | None, verify: bool) -> Index:
    manifest = read_manifest(version)
    if settings is not None:
        diff = compare_settings(manifest, settings, embedder)
        if diff:
            raise IndexMismatchError(str(version), diff)
    else:
        settings = _settings_of(manifest, version)
    _check_files(version, manifest["files"], verify)
    documents, content_hashes, chunks = _read_rows(version)
    embeddings, dense = _read_vectors(version, manifest, len(chunks))
    doc_map = _check_consistency(version, documents, chunks)
    # Loaded now rather than at the first search, so a version pruned later cannot break an open index.
    bm25 = load_bm25(version / "bm25", len(chunks))
    return Index(
        path=version,
        manifest=manifest,
        documents=doc_map,
        content_hashes=content_hashes,
        chunks=chunks,
        embeddings=embeddings,
        dense=dense,
        bm25_path=version / "bm25",
        settings=settings,
        embedder=embedder,
        _bm25=bm25,
    )


def _settings_of(manifest: dict[str, Any], version: Path) -> Settings:
    """The settings an index was built with, as far as its manifest records them."""
    try:
        return Settings.model_validate(
            {
                "chunk": manifest["chunking"],
                "index": manifest["index"],
                "embed": {
                    "model": manifest["embedding"].get("model", ""),
                    # Query with the backend the index was built with (its vectors' fingerprint includes it).
                    **(
                        {"backend": b} if (b := manifest["embedding"].get("backend")) in ("torch", "torch-bf16") else {}
                    ),
                },
            }
        )
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:3])
        where = version / "manifest.json"
        raise IndexError_(f"{where}: settings recorded in it are invalid ({problems})") from None


def _check_files(version: Path, files: dict[str, Any], verify: bool) -> None:
    unlisted = unlisted_bm25_files(version, files)
    if unlisted:
        raise IndexError_(f"{version / unlisted[0]}: not listed in the manifest (added or renamed by hand?); rebuild")
    for rel, expected in files.items():
        p = safe_file(version, str(rel))
        if not p.is_file():
            raise IndexError_(f"{p}: listed in the manifest but missing")
        if verify and sha256_file(p) != expected:
            raise IndexError_(f"{p}: sha256 differs from the manifest; the file is damaged or was edited — rebuild")


def _read_rows(version: Path) -> tuple[list[Document], dict[str, str], list[Chunk]]:
    paths = {name: safe_file(version, name) for name in ("documents.jsonl", "chunks.jsonl")}
    try:
        doc_rows = read_jsonl(paths["documents.jsonl"])
        chunk_rows = read_jsonl(paths["chunks.jsonl"])
    except (ValueError, RecursionError) as e:
        raise IndexError_(f"{version}: documents.jsonl or chunks.jsonl is not UTF-8 JSON lines ({e})") from None
    check_rows(paths["documents.jsonl"], doc_rows, DOCUMENT_FIELDS, ("id", "kind", "title"))
    check_rows(paths["chunks.jsonl"], chunk_rows, CHUNK_FIELDS, ("id", "doc_id", "kind", "text"))
    documents = [Document.from_dict({k: v for k, v in row.items() if k != "content_hash"}) for row in doc_rows]
    content_hashes = {str(row.get("id")): str(row.get("content_hash", "")) for row in doc_rows}
    return documents, content_hashes, [Chunk.from_dict(row) for row in chunk_rows]


def _read_vectors(version: Path, manifest: dict[str, Any], n: int) -> tuple[np.ndarray, Any]:
    """The embeddings (memory-mapped) and the FAISS index, each checked against the rows and the manifest."""
    path = safe_file(version, "embeddings.npy")
    try:
        embeddings = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception as e:  # noqa: BLE001 - numpy's header parser raises EOFError, SyntaxError, TokenError, ...
        raise IndexError_(f"{path}: unreadable ({type(e).__name__}: {str(e)[:160]})") from None
    if embeddings.dtype != np.float32 or embeddings.ndim != 2:
        raise IndexError_(
            f"{path}: holds {embeddings.dtype} with shape {embeddings.shape}, not a float32 matrix; rebuild"
        )
    dim = manifest["embedding"]["dim"]
    counts = {
        "chunks.jsonl rows": n,
        "embeddings.npy rows": embeddings.shape[0],
        "manifest corpus.chunks": manifest["corpus"].get("chunks"),
    }
    if len(set(counts.values())) != 1:
        raise IndexError_(
            f"{version}: row counts disagree ({', '.join(f'{k} {v}' for k, v in counts.items())}); rebuild"
        )
    if embeddings.shape[1] != dim:
        raise IndexError_(f"{path}: vectors have dimension {embeddings.shape[1]}, the manifest says {dim}")
    faiss_path = safe_file(version, "dense.faiss")
    check_faiss_header(faiss_path, str(manifest["index"].get("type")), n, dim)
    try:
        dense = faiss.read_index(str(faiss_path))
    except RuntimeError as e:
        raise IndexError_(f"{faiss_path}: unreadable FAISS file ({str(e).splitlines()[0][:160]})") from None
    if dense.ntotal != n or dense.d != dim:
        raise IndexError_(f"{faiss_path}: holds {dense.ntotal} vectors of dimension {dense.d}; rebuild")
    return embeddings, dense


def _check_consistency(version: Path, documents: list[Document], chunks: list[Chunk]) -> dict[str, Document]:
    doc_map = {d.id: d for d in documents}
    if len(doc_map) != len(documents):
        raise IndexError_(f"{version / 'documents.jsonl'}: a document id appears twice; rebuild")
    orphan = next((c for c in chunks if c.doc_id not in doc_map), None)
    if orphan is not None:
        raise IndexError_(f"{version / 'chunks.jsonl'}: chunk {orphan.id} names unknown document {orphan.doc_id!r}")
    if len({c.id for c in chunks}) != len(chunks):
        raise IndexError_(f"{version / 'chunks.jsonl'}: a chunk id appears twice; rebuild")
    order = [KINDS.index(c.kind) for c in chunks]
    if order != sorted(order):
        raise IndexError_(f"{version / 'chunks.jsonl'}: rows are not grouped by kind (guidelines first); rebuild")
    return doc_map


def index_kind_ranges(chunks: Sequence[Chunk]) -> dict[Kind, tuple[int, int]]:
    """Row range [start, end) of each kind (rows are grouped by kind)."""
    ranges: dict[Kind, tuple[int, int]] = {}
    start = 0
    for k in KINDS:
        n = sum(1 for c in chunks if c.kind == k)
        ranges[k] = (start, start + n)
        start += n
    return ranges
