"""Index folders on disk: versions, ``CURRENT``, atomic replacement, pruning.

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
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np

from pipeline.embed import Embedder
from pipeline.errors import IndexError_
from pipeline.index.bm25 import bm25_tokenize
from pipeline.settings import Settings
from pipeline.types import KINDS, Chunk, Document, Skipped

FORMAT = "medcite-index"
FORMAT_VERSION = 1
VERSION_NAME = re.compile(r"^v-[0-9A-Za-z-]{6,64}$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
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


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
            f.write("\n")


def fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
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


def write_version(
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
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"v-{stamp}-{index_id[:8]}-{secrets.token_hex(2)}"
    tmp = root / f".{name}.tmp"
    tmp.mkdir()
    try:
        write_jsonl(tmp / "documents.jsonl", ({**d.to_dict(), "content_hash": hashes[d.id]} for d in documents))
        write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in chunks))
        np.save(tmp / "embeddings.npy", vectors, allow_pickle=False)
        faiss.write_index(build_faiss(vectors, settings), str(tmp / "dense.faiss"))
        bm25 = bm25s.BM25()
        bm25.index(bm25_tokenize([c.embedding_text() for c in chunks], ids=True), show_progress=False)
        bm25.save(str(tmp / "bm25"), allow_pickle=False)
        kinds = {k: sum(1 for c in chunks if c.kind == k) for k in KINDS}
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "index_id": index_id,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "index_settings_hash": settings.index_hash(),
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
            "libraries": library_versions(),
            "files": files,
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        fsync_tree(tmp)
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
    return sorted(p for p in root.iterdir() if p.is_dir() and VERSION_NAME.match(p.name))


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
    if not VERSION_NAME.match(name):
        raise IndexError_(f"{current}: names {name[:80]!r}, which is not an index version folder")
    version = (root / name).resolve()
    if version.parent != root.resolve() or not version.is_dir():
        raise IndexError_(f"{current}: version folder {name} is missing")
    return version


def current_name(root: Path) -> str:
    """The version name ``CURRENT`` holds now, or "" when it cannot be read."""
    try:
        with (root / "CURRENT").open("rb") as f:
            return f.read(256).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
