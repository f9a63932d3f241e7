"""Build, store and open hybrid (FAISS + BM25) indexes.

An index folder holds versions; ``CURRENT`` names the one in use::

    indexes/demo/
      CURRENT                 "v-20261127T101500-3f2a9c"
      .lock                   held while a build runs
      v-20261127T101500-3f2a9c/
        manifest.json         format, model and its hash, dimension, chunking, corpus checksum, versions, file hashes
        documents.jsonl       document metadata, one per line
        chunks.jsonl          chunk text and provenance, one per line, in vector order
        embeddings.npy        float32 (n, dim), loaded with allow_pickle=False
        dense.faiss           the FAISS index over the same rows
        bm25/                 bm25s arrays and vocabulary (npy + json; no pickle)

A build writes a new version beside the old one and then replaces ``CURRENT`` atomically, so a
crash mid-build leaves the previous index intact and a reader sees the old or the new one, whole.
Two builds on one folder take turns on ``.lock``; a reader never locks, and if a build prunes the
version it was opening, it reads ``CURRENT`` again.

Index folders are untrusted (they are shared between machines): opening one never unpickles or
executes anything, every file is checked against the manifest's sha256, every path stays inside
the folder, and each row, header and count is checked before use, so a damaged or hand-edited
folder gives an :class:`~pipeline.errors.IndexError_` naming the file, never wrong results.
Rows are ordered guidelines first, so each kind is a contiguous id range that FAISS and BM25 can
filter without over-fetching.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout
from pydantic import ValidationError

from pipeline.chunk import Chunker, SentenceSplitter
from pipeline.embed import Embedder, default_embedder
from pipeline.errors import IndexError_, IndexMismatchError, InputError
from pipeline.ingest import ingest
from pipeline.settings import Settings
from pipeline.types import KINDS, Chunk, Document, Kind, Skipped

if TYPE_CHECKING:
    from pipeline.retrieve import Index

log = logging.getLogger(__name__)

FORMAT = "medcite-index"
FORMAT_VERSION = 1
_VERSION_NAME = re.compile(r"^v-[0-9A-Za-z-]{6,64}$")
_LOCK_TIMEOUT_S = 600.0
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_REQUIRED_FILES = ("documents.jsonl", "chunks.jsonl", "embeddings.npy", "dense.faiss")
# FAISS index headers: four-character code, dimension (int32), vector count (int64), two int64, is_trained, metric.
_FAISS_FOURCC = {"flat": b"IxFI", "hnsw": b"IHNf", "ivf": b"IwFl"}
_FAISS_HEADER = struct.Struct("<4siqqq?i")
_OPEN_ATTEMPTS = 5
_BM25_METHODS = ("robertson", "atire", "bm25l", "bm25+", "lucene")


# --------------------------------------------------------------------------- helpers


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _library_versions() -> dict[str, str]:
    out = {}
    for name in (
        "medcite",
        "faiss-cpu",
        "bm25s",
        "sentence-transformers",
        "transformers",
        "torch",
        "numpy",
        "pypdf",
        "spacy",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
            f.write("\n")


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def corpus_checksum(documents: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for doc_id, content in sorted((d.id, d.content_hash()) for d in documents):
        h.update(f"{doc_id}\x00{content}\n".encode())
    return h.hexdigest()


def build_faiss(vectors: np.ndarray, settings: Settings) -> Any:
    """A FAISS inner-product index of the configured type over ``vectors`` (unit length)."""
    import faiss

    n, dim = vectors.shape
    kind = settings.index.type
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.index.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.index.hnsw_ef_construction
    else:  # ivf
        nlist = settings.index.ivf_nlist or max(1, int(4 * np.sqrt(max(n, 1))))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))  # FAISS wants ~39 points per centroid
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(vectors)
    if n:
        index.add(vectors)
    return index


# --------------------------------------------------------------------------- build


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did."""

    path: Path
    index_id: str
    n_documents: int
    n_chunks: int
    embedded: int
    reused: int
    added_documents: tuple[str, ...]
    changed_documents: tuple[str, ...]
    removed_documents: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    seconds: float
    note: str = ""

    def summary(self) -> str:
        lines = [
            f"index {self.index_id} at {self.path}: {self.n_documents} documents, {self.n_chunks} chunks "
            f"({self.embedded} embedded, {self.reused} reused) in {self.seconds:.1f} s",
            f"documents: {len(self.added_documents)} added, {len(self.changed_documents)} changed, "
            f"{len(self.removed_documents)} removed",
        ]
        if self.note:
            lines.append(self.note)
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines.extend(f"  {s}" for s in self.skipped)
        return "\n".join(lines)


@dataclass(slots=True)
class _Previous:
    documents: dict[str, Document]
    hashes: dict[str, str]
    chunks_by_doc: dict[str, list[Chunk]]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def _load_previous(root: Path, settings: Settings, embedder: Embedder) -> tuple[_Previous | None, str]:
    """The current version's documents, chunks and vectors, if it was built compatibly."""
    try:
        old = open_index(root, settings=settings, embedder=embedder)
    except IndexMismatchError as e:
        return None, f"full rebuild: {e}"
    except IndexError_ as e:
        if (root / "CURRENT").exists():
            return None, f"full rebuild: previous index unreadable ({e})"
        return None, ""
    prev = _Previous(documents=dict(old.documents), hashes=dict(old.content_hashes), chunks_by_doc={})
    for row, c in enumerate(old.chunks):
        prev.chunks_by_doc.setdefault(c.doc_id, []).append(c)
        prev.vectors[c.id] = old.embeddings[row]
    return prev, ""


def build_index(
    path: str | Path,
    *,
    guidelines: Sequence[str | Path] = (),
    research: Sequence[str | Path] = (),
    documents: Sequence[Document] = (),
    skipped: Sequence[Skipped] = (),
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    splitter: SentenceSplitter | None = None,
    progress: bool = True,
    incremental: bool = True,
) -> BuildReport:
    """Build (or update) the index at ``path`` from files and/or documents.

    Args:
        path: the index folder, e.g. ``indexes/demo``.
        guidelines: files or folders read as guideline documents.
        research: files or folders read as research documents.
        documents: documents already read (added after the files).
        skipped: skipped items from an earlier ingest, carried into the report and manifest.
        settings: defaults to ``Settings()``.
        embedder: defaults to the bundled MiniLM.
        splitter: sentence splitter; defaults to spaCy.
        progress: show progress bars.
        incremental: reuse vectors of unchanged chunks from the current version.

    Returns:
        A :class:`BuildReport`; ``report.skipped`` lists every file or record left out, with its reason.

    Raises:
        InputError: no document could be read, or another build holds the lock.
    """
    t0 = time.perf_counter()
    settings = settings or Settings()
    embedder = embedder or default_embedder(settings.embed)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / ".lock"))
    try:
        lock.acquire(timeout=_LOCK_TIMEOUT_S)
    except Timeout:
        raise InputError(f"{root}: another build holds {root / '.lock'}; wait for it to finish") from None
    try:
        return _build_locked(
            root, guidelines, research, documents, skipped, settings, embedder, splitter, progress, incremental, t0
        )
    finally:
        lock.release()


def _build_locked(
    root: Path,
    guidelines: Sequence[str | Path],
    research: Sequence[str | Path],
    documents: Sequence[Document],
    skipped_in: Sequence[Skipped],
    settings: Settings,
    embedder: Embedder,
    splitter: SentenceSplitter | None,
    progress: bool,
    incremental: bool,
    t0: float,
) -> BuildReport:
    sources = [(Path(p), "guideline") for p in guidelines] + [(Path(p), "research") for p in research]
    result = ingest(sources, progress=progress, limits=settings.ingest)  # type: ignore[arg-type]
    skipped = list(skipped_in) + list(result.skipped)
    docs: dict[str, Document] = {}
    for d in (*result.documents, *documents):
        if d.id in docs:
            skipped.append(Skipped(d.path or d.id, f"duplicate document id {d.id!r}"))
        else:
            docs[d.id] = d
    if not docs:
        detail = "; ".join(str(s) for s in skipped[:5])
        raise InputError(f"{root}: no document could be read{': ' + detail if detail else ''}")

    prev, note = _load_previous(root, settings, embedder) if incremental else (None, "")
    prev_docs = prev.documents if prev else {}

    ordered = sorted(docs.values(), key=lambda d: KINDS.index(d.kind))  # stable: guidelines first
    hashes = {d.id: d.content_hash() for d in ordered}
    unchanged = {d.id for d in ordered if prev and prev.hashes.get(d.id) == hashes[d.id]}
    to_chunk = [d for d in ordered if d.id not in unchanged]
    chunker = Chunker(settings.chunk, embedder, splitter)
    fresh: dict[str, list[Chunk]] = {}
    batch = 64
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(to_chunk), batch), desc="chunk", unit="batch", disable=not progress or not to_chunk):
        part = to_chunk[start : start + batch]
        for d, cs in zip(part, chunker.chunk_many(part), strict=True):
            fresh[d.id] = cs
    chunks: list[Chunk] = []
    for d in ordered:
        cs = prev.chunks_by_doc.get(d.id, []) if (prev and d.id in unchanged) else fresh[d.id]
        if not cs:
            skipped.append(Skipped(d.path or d.id, "no text left after chunking"))
        chunks.extend(cs)
    if not chunks:
        raise InputError(f"{root}: documents were read but yielded no chunks")

    reuse = prev.vectors if prev else {}
    missing = [i for i, c in enumerate(chunks) if c.id not in reuse]
    dim = embedder.dim
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    for i, c in enumerate(chunks):
        if c.id in reuse:
            vectors[i] = reuse[c.id]
    if missing:
        log.info("embedding %d chunks (%d reused)", len(missing), len(chunks) - len(missing))
        vectors[missing] = embedder.encode([chunks[i].embedding_text() for i in missing], progress=progress)

    stored_docs = [d.without_text() for d in ordered if d.id in {c.doc_id for c in chunks}]
    added = tuple(sorted(d for d in docs if d not in prev_docs))
    changed = tuple(sorted(d for d in docs if d in prev_docs and d not in unchanged))
    removed = tuple(sorted(d for d in prev_docs if d not in docs))
    index_id = hashlib.sha256(
        "\n".join([settings.hash(), embedder.fingerprint(), *(c.id for c in chunks)]).encode()
    ).hexdigest()[:16]
    _write_version(root, index_id, stored_docs, hashes, chunks, vectors, settings, embedder, skipped, progress)
    return BuildReport(
        path=root,
        index_id=index_id,
        n_documents=len(stored_docs),
        n_chunks=len(chunks),
        embedded=len(missing),
        reused=len(chunks) - len(missing),
        added_documents=added,
        changed_documents=changed,
        removed_documents=removed,
        skipped=tuple(skipped),
        seconds=time.perf_counter() - t0,
        note=note,
    )


def import_bm25s() -> Any:
    """bm25s, with its logger (which it sets to DEBUG on import) brought back to WARNING."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _bm25_tokenize(texts: Sequence[str], *, ids: bool) -> Any:
    import Stemmer

    bm25s = import_bm25s()

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=ids, show_progress=False
    )


def _write_version(
    root: Path,
    index_id: str,
    documents: list[Document],
    hashes: dict[str, str],
    chunks: list[Chunk],
    vectors: np.ndarray,
    settings: Settings,
    embedder: Embedder,
    skipped: list[Skipped],
    progress: bool,
) -> Path:
    import faiss

    bm25s = import_bm25s()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"v-{stamp}-{index_id[:8]}-{secrets.token_hex(2)}"
    tmp = root / f".{name}.tmp"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / "documents.jsonl", ({**d.to_dict(), "content_hash": hashes[d.id]} for d in documents))
        _write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in chunks))
        np.save(tmp / "embeddings.npy", vectors, allow_pickle=False)
        faiss.write_index(build_faiss(vectors, settings), str(tmp / "dense.faiss"))
        bm25 = bm25s.BM25()
        bm25.index(_bm25_tokenize([c.embedding_text() for c in chunks], ids=True), show_progress=False)
        bm25.save(str(tmp / "bm25"), allow_pickle=False)
        kinds = {k: sum(1 for c in chunks if c.kind == k) for k in KINDS}
        files = {p.relative_to(tmp).as_posix(): _sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "index_id": index_id,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "settings_hash": settings.hash(),
            "embedding": {
                "model": embedder.name,
                "fingerprint": embedder.fingerprint(),
                "backend": str(getattr(getattr(embedder, "settings", None), "backend", "n/a")),
                "dim": int(vectors.shape[1]),
                "max_tokens": embedder.max_tokens,
            },
            "chunking": settings.chunk.model_dump(mode="json"),
            "index": settings.index.model_dump(mode="json"),
            "corpus": {
                "checksum": corpus_checksum_from_hashes(hashes, {d.id for d in documents}),
                "documents": len(documents),
                "chunks": len(chunks),
                "chunks_by_kind": kinds,
            },
            "libraries": _library_versions(),
            "files": files,
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)
        final = root / name
        os.replace(tmp, final)
        current_tmp = root / f".CURRENT.{secrets.token_hex(4)}"
        current_tmp.write_text(name + "\n", encoding="utf-8")
        os.replace(current_tmp, root / "CURRENT")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(root, keep={name, *_previous_names(root, name)})
    return final


def corpus_checksum_from_hashes(hashes: dict[str, str], ids: set[str]) -> str:
    h = hashlib.sha256()
    for doc_id in sorted(ids):
        h.update(f"{doc_id}\x00{hashes[doc_id]}\n".encode())
    return h.hexdigest()


def _versions(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and _VERSION_NAME.match(p.name))


def _previous_names(root: Path, current: str) -> list[str]:
    """Keep the newest version before the current one, for readers that opened it a moment ago."""
    older = [p.name for p in _versions(root) if p.name < current]
    return older[-1:]


def _prune(root: Path, keep: set[str]) -> None:
    for p in _versions(root):
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".v-*.tmp"):  # left by a crashed build
        if time.time() - p.stat().st_mtime > 3600:
            shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------- open


def resolve_version(path: str | Path) -> Path:
    """The version folder an index path points at (through ``CURRENT``), checked to stay inside it."""
    root = Path(path)
    if (root / "manifest.json").is_file():
        return root
    current = root / "CURRENT"
    if not current.is_file():
        if not root.exists():
            raise IndexError_(f"{root}: no index here; build one with `medcite index build`")
        raise IndexError_(f"{root}: not an index folder (no CURRENT or manifest.json)")
    with current.open("rb") as f:  # a version name is short; never read a planted huge file whole
        name = f.read(256).decode("utf-8", errors="replace").strip()
    if not _VERSION_NAME.match(name):
        raise IndexError_(f"{current}: names {name[:80]!r}, which is not an index version folder")
    version = (root / name).resolve()
    if version.parent != root.resolve() or not version.is_dir():
        raise IndexError_(f"{current}: version folder {name} is missing")
    return version


def _read_manifest(version: Path) -> dict[str, Any]:
    mpath = version / "manifest.json"
    try:
        if mpath.stat().st_size > _MAX_MANIFEST_BYTES:
            raise IndexError_(f"{mpath}: {mpath.stat().st_size} bytes, too large for a manifest")
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"{mpath}: missing") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nesting
        raise IndexError_(f"{mpath}: not valid JSON ({str(e)[:160]})") from None
    except OSError as e:
        raise IndexError_(f"{mpath}: unreadable ({e.strerror or e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise IndexError_(f"{mpath}: not a medcite index manifest (format is {str(found)[:80]!r})")
    version_no = manifest.get("format_version")
    if type(version_no) is not int or version_no < 1:
        raise IndexError_(f"{mpath}: format_version is {str(version_no)[:40]!r}, not a positive integer")
    if version_no > FORMAT_VERSION:
        raise IndexError_(
            f"{mpath}: format version {version_no!r} is newer than this medcite reads ({FORMAT_VERSION}); "
            "upgrade medcite"
        )
    for key in ("embedding", "chunking", "index", "corpus", "files"):
        if not isinstance(manifest.get(key), dict):
            raise IndexError_(f"{mpath}: field {key!r} is missing or not an object")
    if not isinstance(manifest.get("index_id"), str):
        raise IndexError_(f"{mpath}: field 'index_id' is missing or not a string")
    dim = manifest["embedding"].get("dim")
    if type(dim) is not int or not 1 <= dim <= 65536:
        raise IndexError_(f"{mpath}: embedding.dim is {str(dim)[:40]!r}, not a vector dimension")
    if any(not isinstance(v, str) for v in manifest["files"].values()):
        raise IndexError_(f"{mpath}: field 'files' must map each file to its sha256")
    missing = [f for f in _REQUIRED_FILES if f not in manifest["files"]]
    if missing or not any(str(f).startswith("bm25/") for f in manifest["files"]):
        raise IndexError_(
            f"{mpath}: field 'files' does not list {', '.join(missing) or 'the bm25/ files'}; "
            "the manifest was edited or is incomplete — rebuild"
        )
    return manifest


def _safe_file(version: Path, rel: str) -> Path:
    p = (version / rel).resolve()
    if not p.is_relative_to(version.resolve()):
        raise IndexError_(f"{version / 'manifest.json'}: file entry {rel!r} points outside the index folder")
    return p


def _unlisted_bm25_files(version: Path, files: dict[str, Any]) -> list[str]:
    """bm25s loads its files by name: each one there must be listed (and so hashed) in the manifest."""
    folder = version / "bm25"
    if not folder.is_dir():
        return []
    return sorted(
        rel for p in folder.rglob("*") if (rel := p.relative_to(version).as_posix()) not in files and not p.is_dir()
    )


_STR, _OPT_STR, _INT, _OPT_INT = (str,), (str, type(None)), (int,), (int, type(None))
_CHUNK_FIELDS = {
    "id": _STR,
    "doc_id": _STR,
    "kind": _STR,
    "text": _STR,
    "heading": _STR,
    "page": _OPT_INT,
    "page_end": _OPT_INT,
    "ordinal": _INT,
    "n_tokens": _INT,
    "context": _STR,
}
_DOCUMENT_FIELDS = {
    "id": _STR,
    "kind": _STR,
    "title": _STR,
    "source": _STR,
    "year": _OPT_INT,
    "pmid": _OPT_STR,
    "doi": _OPT_STR,
    "url": _OPT_STR,
    "license": _STR,
    "path": _STR,
    "content_hash": _STR,
}


def _check_rows(
    path: Path, rows: list[dict[str, Any]], fields: dict[str, tuple[type, ...]], required: tuple[str, ...]
) -> None:
    """Every row has the required fields and no unknown one, each of the expected type, and a known kind."""
    for lineno, row in enumerate(rows, start=1):
        extra = set(row) - set(fields)
        missing = {k for k in required if k not in row}
        if extra or missing:
            raise IndexError_(
                f"{path}:{lineno}: unexpected fields {sorted(extra)} or missing fields {sorted(missing)}; rebuild"
            )
        for key, value in row.items():
            if not isinstance(value, fields[key]) or isinstance(value, bool):
                raise IndexError_(f"{path}:{lineno}: field {key!r} is {type(value).__name__}; rebuild")
        if row["kind"] not in KINDS:
            raise IndexError_(f"{path}:{lineno}: kind is {row['kind'][:40]!r}, not one of {list(KINDS)}")


def _check_faiss_header(path: Path, index_type: str, n: int, dim: int) -> None:
    """Check a FAISS file's header and size before FAISS's C++ reader allocates anything for it."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(_FAISS_HEADER.size)
    if len(head) < _FAISS_HEADER.size:
        raise IndexError_(f"{path}: unreadable FAISS file (truncated: {size} bytes)")
    fourcc, d, ntotal, _, _, _, metric = _FAISS_HEADER.unpack(head)
    expected = _FAISS_FOURCC.get(index_type)
    if fourcc != expected:
        raise IndexError_(f"{path}: unreadable FAISS file (type {fourcc!r}, the manifest says {index_type!r})")
    if (d, ntotal, metric) != (dim, n, 0):
        raise IndexError_(
            f"{path}: unreadable FAISS file (header says {ntotal} vectors of dimension {d}, metric {metric}; "
            f"the index has {n} of dimension {dim}, inner product)"
        )
    vectors = n * dim * 4
    if (index_type == "flat" and size != _FAISS_HEADER.size + 8 + vectors) or size < _FAISS_HEADER.size + vectors:
        raise IndexError_(f"{path}: unreadable FAISS file (truncated or padded: {size} bytes for {n}x{dim} vectors)")


def _load_bm25(folder: Path, n: int) -> Any:
    """The BM25 index (numpy arrays without pickle, and JSON), checked to score exactly ``n`` rows."""
    bm25s = import_bm25s()
    try:
        bm25 = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False)
        scores = bm25.scores
        data, indices, indptr = (np.asarray(scores[k]) for k in ("data", "indices", "indptr"))
        ok = (
            bm25.dtype in ("float32", "float64")
            and bm25.int_dtype in ("int32", "int64")
            and bm25.method in _BM25_METHODS
            and bm25.idf_method in _BM25_METHODS
            and bm25.backend == "numpy"
            and all(type(x) in (int, float) and 0 <= x <= 10 for x in (bm25.k1, bm25.b, bm25.delta))
            and int(scores["num_docs"]) == n
            and data.ndim == indices.ndim == indptr.ndim == 1
            and len(data) == len(indices) == (int(indptr[-1]) if len(indptr) else -1)
            and (len(indices) == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n))
            and bool(np.all(np.diff(indptr) >= 0))
            and all(type(t) is int and 0 <= t < len(indptr) for t in bm25.vocab_dict.values())
        )
    except Exception as e:  # noqa: BLE001 - bm25s raises many types on damaged files; all mean "unreadable"
        raise IndexError_(f"{folder}: unreadable BM25 index ({type(e).__name__}: {str(e)[:160]})") from None
    if not ok:
        raise IndexError_(f"{folder}: BM25 parameters or arrays do not fit the {n} chunks of the index; rebuild")
    return bm25


def _compare(manifest: dict[str, Any], settings: Settings, embedder: Embedder | None) -> dict[str, tuple[Any, Any]]:
    diff: dict[str, tuple[Any, Any]] = {}
    emb = manifest["embedding"]
    model = embedder.name if embedder is not None else settings.embed.model
    if emb.get("model") != model:
        diff["embedding model"] = (emb.get("model"), model)
    if embedder is not None:
        if emb.get("fingerprint") != embedder.fingerprint():
            backend = getattr(getattr(embedder, "settings", None), "backend", None)
            if backend is not None and emb.get("backend") not in (None, backend):
                diff["embed.backend"] = (emb.get("backend"), backend)
            else:
                diff["embedding model files (sha256)"] = (str(emb.get("fingerprint"))[:12], embedder.fingerprint()[:12])
        if emb.get("dim") != embedder.dim:
            diff["embedding dimension"] = (emb.get("dim"), embedder.dim)
    for key, value in settings.chunk.model_dump(mode="json").items():
        if manifest["chunking"].get(key) != value:
            diff[f"chunk.{key}"] = (manifest["chunking"].get(key), value)
    if manifest["index"].get("type") != settings.index.type:
        diff["index.type"] = (manifest["index"].get("type"), settings.index.type)
    return diff


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
        named = _current_name(root)
        try:
            return _open_version(resolve_version(root), settings, embedder, verify)
        except IndexError_:
            # A build may have replaced and pruned this version while it was being read: if CURRENT has
            # moved on since, open the version it names now; if not, the damage is real.
            if attempt == _OPEN_ATTEMPTS or not named or _current_name(root) == named:
                raise
            log.info("index %s: version %s went away while opening; opening the current one", root, named)
    raise AssertionError("unreachable")


def _current_name(root: Path) -> str:
    try:
        with (root / "CURRENT").open("rb") as f:
            return f.read(256).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def _open_version(version: Path, settings: Settings | None, embedder: Embedder | None, verify: bool) -> Index:
    try:
        return _open_version_files(version, settings, embedder, verify)
    except OSError as e:  # a file vanished or cannot be read: name it
        where = e.filename or version
        raise IndexError_(f"{where}: unreadable ({e.strerror or e})") from None


def _open_version_files(version: Path, settings: Settings | None, embedder: Embedder | None, verify: bool) -> Index:
    import faiss

    from pipeline.retrieve import Index

    manifest = _read_manifest(version)
    if settings is not None:
        diff = _compare(manifest, settings, embedder)
        if diff:
            raise IndexMismatchError(str(version), diff)
    else:
        try:
            settings = Settings.model_validate(
                {
                    "chunk": manifest["chunking"],
                    "index": manifest["index"],
                    "embed": {
                        "model": manifest["embedding"].get("model", ""),
                        # Query with the backend the index was built with (its vectors' fingerprint includes it).
                        **(
                            {"backend": b}
                            if (b := manifest["embedding"].get("backend")) in ("torch", "torch-bf16")
                            else {}
                        ),
                    },
                }
            )
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:3])
            where = version / "manifest.json"
            raise IndexError_(f"{where}: settings recorded in it are invalid ({problems})") from None
    files = manifest["files"]
    unlisted = _unlisted_bm25_files(version, files)
    if unlisted:
        raise IndexError_(f"{version / unlisted[0]}: not listed in the manifest (added or renamed by hand?); rebuild")
    for rel, expected in files.items():
        p = _safe_file(version, str(rel))
        if not p.is_file():
            raise IndexError_(f"{p}: listed in the manifest but missing")
        if verify and _sha256_file(p) != expected:
            raise IndexError_(f"{p}: sha256 differs from the manifest; the file is damaged or was edited — rebuild")
    paths = {name: _safe_file(version, name) for name in _REQUIRED_FILES}
    try:
        doc_rows = _read_jsonl(paths["documents.jsonl"])
        chunk_rows = _read_jsonl(paths["chunks.jsonl"])
    except (ValueError, RecursionError) as e:
        raise IndexError_(f"{version}: documents.jsonl or chunks.jsonl is not UTF-8 JSON lines ({e})") from None
    _check_rows(paths["documents.jsonl"], doc_rows, _DOCUMENT_FIELDS, ("id", "kind", "title"))
    _check_rows(paths["chunks.jsonl"], chunk_rows, _CHUNK_FIELDS, ("id", "doc_id", "kind", "text"))
    documents = [Document.from_dict({k: v for k, v in row.items() if k != "content_hash"}) for row in doc_rows]
    content_hashes = {str(row.get("id")): str(row.get("content_hash", "")) for row in doc_rows}
    chunks = [Chunk.from_dict(row) for row in chunk_rows]
    try:
        embeddings = np.load(paths["embeddings.npy"], allow_pickle=False, mmap_mode="r")
    except Exception as e:  # noqa: BLE001 - numpy's header parser raises EOFError, SyntaxError, TokenError, ...
        raise IndexError_(f"{version / 'embeddings.npy'}: unreadable ({type(e).__name__}: {str(e)[:160]})") from None
    if embeddings.dtype != np.float32 or embeddings.ndim != 2:
        raise IndexError_(
            f"{version / 'embeddings.npy'}: holds {embeddings.dtype} with shape {embeddings.shape}, "
            "not a float32 matrix; rebuild"
        )
    n = len(chunks)
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
        raise IndexError_(
            f"{version / 'embeddings.npy'}: vectors have dimension {embeddings.shape[1]}, the manifest says {dim}"
        )
    _check_faiss_header(paths["dense.faiss"], str(manifest["index"].get("type")), n, dim)
    try:
        dense = faiss.read_index(str(paths["dense.faiss"]))
    except RuntimeError as e:
        raise IndexError_(
            f"{version / 'dense.faiss'}: unreadable FAISS file ({str(e).splitlines()[0][:160]})"
        ) from None
    if dense.ntotal != n or dense.d != dim:
        raise IndexError_(f"{version / 'dense.faiss'}: holds {dense.ntotal} vectors of dimension {dense.d}; rebuild")
    doc_map = {d.id: d for d in documents}
    if len(doc_map) != len(documents):
        raise IndexError_(f"{version / 'documents.jsonl'}: a document id appears twice; rebuild")
    orphan = next((c for c in chunks if c.doc_id not in doc_map), None)
    if orphan is not None:
        raise IndexError_(f"{version / 'chunks.jsonl'}: chunk {orphan.id} names unknown document {orphan.doc_id!r}")
    if len({c.id for c in chunks}) != n:
        raise IndexError_(f"{version / 'chunks.jsonl'}: a chunk id appears twice; rebuild")
    order = [KINDS.index(c.kind) for c in chunks]
    if order != sorted(order):
        raise IndexError_(f"{version / 'chunks.jsonl'}: rows are not grouped by kind (guidelines first); rebuild")
    # Loaded now rather than at the first search, so a version pruned later cannot break an open index.
    bm25 = _load_bm25(version / "bm25", n)
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


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise IndexError_(f"{path}:{lineno}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise IndexError_(f"{path}:{lineno}: not a JSON object")
            rows.append(row)
    return rows


def index_kind_ranges(chunks: Sequence[Chunk]) -> dict[Kind, tuple[int, int]]:
    """Row range [start, end) of each kind (rows are grouped by kind)."""
    ranges: dict[Kind, tuple[int, int]] = {}
    start = 0
    for k in KINDS:
        n = sum(1 for c in chunks if c.kind == k)
        ranges[k] = (start, start + n)
        start += n
    return ranges
