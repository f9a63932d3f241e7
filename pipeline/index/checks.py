"""Checks of an index folder before anything in it is used: the manifest, file hashes, rows, FAISS headers.

Index folders are untrusted (they are shared between machines): a damaged or hand-edited folder gives an
:class:`~pipeline.errors.IndexError_` naming the file, never wrong results or a crash in a C++ reader.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from pipeline.embed import Embedder
from pipeline.errors import IndexError_
from pipeline.index.store import FORMAT, FORMAT_VERSION
from pipeline.settings import Settings
from pipeline.types import KINDS

_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
REQUIRED_FILES = ("documents.jsonl", "chunks.jsonl", "embeddings.npy", "dense.faiss")
# FAISS index headers: four-character code, dimension (int32), vector count (int64), two int64, is_trained, metric.
_FAISS_FOURCC = {"flat": b"IxFI", "hnsw": b"IHNf", "ivf": b"IwFl"}
_FAISS_HEADER = struct.Struct("<4siqqq?i")


def read_manifest(version: Path) -> dict[str, Any]:
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
    missing = [f for f in REQUIRED_FILES if f not in manifest["files"]]
    if missing or not any(str(f).startswith("bm25/") for f in manifest["files"]):
        raise IndexError_(
            f"{mpath}: field 'files' does not list {', '.join(missing) or 'the bm25/ files'}; "
            "the manifest was edited or is incomplete — rebuild"
        )
    return manifest


def safe_file(version: Path, rel: str) -> Path:
    p = (version / rel).resolve()
    if not p.is_relative_to(version.resolve()):
        raise IndexError_(f"{version / 'manifest.json'}: file entry {rel!r} points outside the index folder")
    return p


def unlisted_bm25_files(version: Path, files: dict[str, Any]) -> list[str]:
    """bm25s loads its files by name: each one there must be listed (and so hashed) in the manifest."""
    folder = version / "bm25"
    if not folder.is_dir():
        return []
    return sorted(
        rel for p in folder.rglob("*") if (rel := p.relative_to(version).as_posix()) not in files and not p.is_dir()
    )


_STR, _OPT_STR, _INT, _OPT_INT = (str,), (str, type(None)), (int,), (int, type(None))
CHUNK_FIELDS = {
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
DOCUMENT_FIELDS = {
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


def check_rows(
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


def check_faiss_header(path: Path, index_type: str, n: int, dim: int) -> None:
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


def compare_settings(
    manifest: dict[str, Any], settings: Settings, embedder: Embedder | None
) -> dict[str, tuple[Any, Any]]:
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
