"""The lexical half of an index: BM25 (bm25s) over stemmed, stop-worded tokens, stored without pickle."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

from pipeline.errors import IndexError_

BM25_METHODS = ("robertson", "atire", "bm25l", "bm25+", "lucene")


def bm25_tokenize(texts: Sequence[str], *, ids: bool) -> Any:
    """Tokens for BM25: English stop words removed, Snowball-stemmed; ids for indexing, strings for queries."""
    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=ids, show_progress=False
    )


def load_bm25(folder: Path, n: int) -> Any:
    """The BM25 index (numpy arrays without pickle, and JSON), checked to score exactly ``n`` rows."""
    try:
        bm25 = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False)
        scores = bm25.scores
        data, indices, indptr = (np.asarray(scores[k]) for k in ("data", "indices", "indptr"))
        ok = (
            bm25.dtype in ("float32", "float64")
            and bm25.int_dtype in ("int32", "int64")
            and bm25.method in BM25_METHODS
            and bm25.idf_method in BM25_METHODS
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
