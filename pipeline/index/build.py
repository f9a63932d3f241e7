"""Build (or update) an index: read the documents, chunk them, embed what changed, write a new version.

A build reuses the vectors of unchanged chunks from the current version when it was built with the same
settings, writes the new version beside the old one and then points ``CURRENT`` at it (see
:mod:`pipeline.index.store`). Two builds on one folder take turns on ``.lock``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from pipeline.chunk import Chunker, SentenceSplitter
from pipeline.embed import Embedder, default_embedder
from pipeline.errors import IndexError_, IndexMismatchError, InputError
from pipeline.index.opened import open_index
from pipeline.index.store import write_version
from pipeline.ingest import ingest
from pipeline.settings import Settings
from pipeline.types import KINDS, Chunk, Document, Skipped

log = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 600.0


def corpus_checksum(documents: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for doc_id, content in sorted((d.id, d.content_hash()) for d in documents):
        h.update(f"{doc_id}\x00{content}\n".encode())
    return h.hexdigest()


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
    skipped = list(skipped_in)
    docs = _read_documents(root, guidelines, research, documents, settings, skipped, progress)
    prev, note = _load_previous(root, settings, embedder) if incremental else (None, "")
    prev_docs = prev.documents if prev else {}
    ordered = sorted(docs.values(), key=lambda d: KINDS.index(d.kind))  # stable: guidelines first
    hashes = {d.id: d.content_hash() for d in ordered}
    unchanged = {d.id for d in ordered if prev and prev.hashes.get(d.id) == hashes[d.id]}
    chunks = _chunk_all(ordered, unchanged, prev, Chunker(settings.chunk, embedder, splitter), skipped, progress)
    if not chunks:
        raise InputError(f"{root}: documents were read but yielded no chunks")
    vectors, embedded = _embed_missing(chunks, prev.vectors if prev else {}, embedder, progress)
    stored_docs = [d.without_text() for d in ordered if d.id in {c.doc_id for c in chunks}]
    index_id = hashlib.sha256(
        "\n".join([settings.index_hash(), embedder.fingerprint(), *(c.id for c in chunks)]).encode()
    ).hexdigest()[:16]
    write_version(root, index_id, stored_docs, hashes, chunks, vectors, settings, embedder, skipped, progress)
    return BuildReport(
        path=root,
        index_id=index_id,
        n_documents=len(stored_docs),
        n_chunks=len(chunks),
        embedded=embedded,
        reused=len(chunks) - embedded,
        added_documents=tuple(sorted(d for d in docs if d not in prev_docs)),
        changed_documents=tuple(sorted(d for d in docs if d in prev_docs and d not in unchanged)),
        removed_documents=tuple(sorted(d for d in prev_docs if d not in docs)),
        skipped=tuple(skipped),
        seconds=time.perf_counter() - t0,
        note=note,
    )


def _read_documents(
    root: Path,
    guidelines: Sequence[str | Path],
    research: Sequence[str | Path],
    documents: Sequence[Document],
    settings: Settings,
    skipped: list[Skipped],
    progress: bool,
) -> dict[str, Document]:
    """The files read and the documents given, by id; duplicates and unreadable files go to ``skipped``."""
    sources = [(Path(p), "guideline") for p in guidelines] + [(Path(p), "research") for p in research]
    result = ingest(sources, progress=progress, limits=settings.ingest)  # type: ignore[arg-type]
    skipped.extend(result.skipped)
    docs: dict[str, Document] = {}
    for d in (*result.documents, *documents):
        if d.id in docs:
            skipped.append(Skipped(d.path or d.id, f"duplicate document id {d.id!r}"))
        else:
            docs[d.id] = d
    if not docs:
        detail = "; ".join(str(s) for s in skipped[:5])
        raise InputError(f"{root}: no document could be read{': ' + detail if detail else ''}")
    return docs


def _chunk_all(
    ordered: Sequence[Document],
    unchanged: set[str],
    prev: _Previous | None,
    chunker: Chunker,
    skipped: list[Skipped],
    progress: bool,
    batch: int = 64,
) -> list[Chunk]:
    """Chunks of every document in order: the previous version's for unchanged documents, fresh ones for the rest."""
    to_chunk = [d for d in ordered if d.id not in unchanged]
    fresh: dict[str, list[Chunk]] = {}
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
    return chunks


def _embed_missing(
    chunks: Sequence[Chunk], reuse: dict[str, np.ndarray], embedder: Embedder, progress: bool
) -> tuple[np.ndarray, int]:
    """Vectors for ``chunks`` in order, reusing those of unchanged chunks; and how many were embedded."""
    missing = [i for i, c in enumerate(chunks) if c.id not in reuse]
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    for i, c in enumerate(chunks):
        if c.id in reuse:
            vectors[i] = reuse[c.id]
    if missing:
        log.info("embedding %d chunks (%d reused)", len(missing), len(chunks) - len(missing))
        vectors[missing] = embedder.encode([chunks[i].embedding_text() for i in missing], progress=progress)
    return vectors, len(missing)
