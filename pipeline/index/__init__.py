"""Hybrid (FAISS + BM25) indexes: build one, open one, search it.

- :mod:`~pipeline.index.build`: :func:`build_index` reads, chunks and embeds documents into a new version.
- :mod:`~pipeline.index.store`: the folder on disk (versions, ``CURRENT``, atomic replacement, pruning).
- :mod:`~pipeline.index.checks`: what is checked before a folder is trusted (manifest, hashes, rows, headers).
- :mod:`~pipeline.index.bm25`: the lexical half (stemmed BM25, no pickle).
- :mod:`~pipeline.index.opened`: :class:`Index`, the opened index that searches, beside :func:`open_index`.
"""

from pipeline.index.build import BuildReport, build_index, corpus_checksum
from pipeline.index.opened import MODES, Index, fuse_hits, index_kind_ranges, open_index, rrf
from pipeline.index.store import build_faiss, resolve_version

__all__ = [
    "MODES",
    "BuildReport",
    "Index",
    "build_faiss",
    "build_index",
    "corpus_checksum",
    "fuse_hits",
    "index_kind_ranges",
    "open_index",
    "resolve_version",
    "rrf",
]
