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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

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
    result = ingest(sources, progress=progress)  # type: ignore[arg-type]
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
    name = current.read_text(encoding="utf-8", errors="replace").strip()
    if not _VERSION_NAME.match(name):
        raise IndexError_(f"{current}: names {name[:80]!r}, which is not an index version folder")
    version = (root / name).resolve()
    if version.parent != root.resolve() or not version.is_dir():
        raise IndexError_(f"{current}: version folder {name} is missing")
    return version


def _read_manifest(version: Path) -> dict[str, Any]:
    mpath = version / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"{mpath}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexError_(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexError_(f"{mpath}: not a medcite index manifest (format is {manifest.get('format')!r})")
    version_no = manifest.get("format_version")
    if not isinstance(version_no, int) or version_no > FORMAT_VERSION:
        raise IndexError_(
            f"{mpath}: format version {version_no!r} is newer than this medcite reads ({FORMAT_VERSION}); "
            "upgrade medcite"
        )
    for key in ("embedding", "chunking", "index", "corpus", "files"):
        if not isinstance(manifest.get(key), dict):
            raise IndexError_(f"{mpath}: field {key!r} is missing or not an object")
    return manifest


def _safe_file(version: Path, rel: str) -> Path:
    p = (version / rel).resolve()
    if not p.is_relative_to(version.resolve()):
        raise IndexError_(f"{version / 'manifest.json'}: file entry {rel!r} points outside the index folder")
    return p


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
    import faiss

    from pipeline.retrieve import Index

    version = resolve_version(path)
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
        except ValueError as e:
            raise IndexError_(f"{version / 'manifest.json'}: settings recorded in it are invalid ({e})") from None
    for rel, expected in manifest["files"].items():
        p = _safe_file(version, str(rel))
        if not p.is_file():
            raise IndexError_(f"{p}: listed in the manifest but missing")
        if verify and _sha256_file(p) != expected:
            raise IndexError_(f"{p}: sha256 differs from the manifest; the file is damaged or was edited — rebuild")
    try:
        doc_rows = _read_jsonl(version / "documents.jsonl")
        documents = [Document.from_dict({k: v for k, v in row.items() if k != "content_hash"}) for row in doc_rows]
        content_hashes = {str(row.get("id")): str(row.get("content_hash", "")) for row in doc_rows}
        chunks = [Chunk.from_dict(row) for row in _read_jsonl(version / "chunks.jsonl")]
    except (TypeError, ValueError) as e:
        raise IndexError_(f"{version}: a documents or chunks row has unexpected fields ({e})") from None
    try:
        embeddings = np.load(version / "embeddings.npy", allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise IndexError_(f"{version / 'embeddings.npy'}: unreadable ({e})") from None
    try:
        dense = faiss.read_index(str(version / "dense.faiss"))
    except RuntimeError as e:
        raise IndexError_(
            f"{version / 'dense.faiss'}: unreadable FAISS file ({str(e).splitlines()[0][:160]})"
        ) from None
    n = len(chunks)
    dim = manifest["embedding"].get("dim")
    checks = {
        "chunks.jsonl rows": n,
        "embeddings.npy rows": embeddings.shape[0] if embeddings.ndim == 2 else -1,
        "dense.faiss vectors": dense.ntotal,
        "manifest corpus.chunks": manifest["corpus"].get("chunks"),
    }
    if len(set(checks.values())) != 1:
        raise IndexError_(
            f"{version}: row counts disagree ({', '.join(f'{k} {v}' for k, v in checks.items())}); rebuild"
        )
    if embeddings.shape[1] != dim or dense.d != dim:
        raise IndexError_(f"{version}: vector dimension disagrees with the manifest ({dim}); rebuild")
    doc_map = {d.id: d for d in documents}
    orphan = next((c for c in chunks if c.doc_id not in doc_map), None)
    if orphan is not None:
        raise IndexError_(f"{version / 'chunks.jsonl'}: chunk {orphan.id} names unknown document {orphan.doc_id!r}")
    order = [KINDS.index(c.kind) for c in chunks]
    if order != sorted(order):
        raise IndexError_(f"{version / 'chunks.jsonl'}: rows are not grouped by kind (guidelines first); rebuild")
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
