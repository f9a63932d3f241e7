"""A LangChain retriever over a medcite index, so the index plugs into LangChain chains."""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any, Literal, get_args

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, field_validator

from pipeline.index import Index, open_index
from pipeline.types import KINDS, Hit, Kind

RetrieveMode = Literal["hybrid", "dense", "bm25"]
_KIND_CHOICES: tuple[str | None, ...] = (None, *KINDS)
_MODE_CHOICES: tuple[str | None, ...] = (None, *get_args(RetrieveMode))
_CALL_OPTIONS = ("k", "kind", "mode")
# Keywords LangChain itself reads from the invoke keywords (and passes on): accepted and left to it.
_LANGCHAIN_OPTIONS = ("verbose",)


def hit_to_langchain(hit: Hit) -> LCDocument:
    """Turn one search hit into a LangChain document.

    Args:
        hit: a hit from :meth:`pipeline.index.Index.search`.

    Returns:
        A document whose ``id`` is the chunk id, whose ``page_content`` is the chunk text, and whose metadata holds
        the chunk's provenance (document id, kind, title, source, year, PMID, DOI, URL, heading, page) and the hit's
        score and rank.
    """
    d = hit.document
    return LCDocument(
        id=hit.chunk.id,
        page_content=hit.chunk.text,
        metadata={
            "chunk_id": hit.chunk.id,
            "doc_id": d.id,
            "kind": hit.chunk.kind,
            "title": d.title,
            "source": d.source,
            "year": d.year,
            "pmid": d.pmid,
            "doi": d.doi,
            "url": d.url,
            "heading": hit.chunk.heading,
            "page": hit.chunk.page,
            "score": hit.score,
            "rank": hit.rank,
        },
    )


def _check_k(value: Any) -> int:
    """``value`` as a number of results: an int of 0 or more (0 asks for no documents)."""
    if isinstance(value, bool):
        raise ValueError(f"k is {value!r}; it must be a whole number of 0 or more")
    try:
        k = operator.index(value)
    except TypeError:
        raise ValueError(f"k is {value!r}; it must be a whole number of 0 or more") from None
    if k < 0:
        raise ValueError(f"k is {k}; it must be 0 or more")
    return k


def _check_choice(name: str, value: Any, choices: tuple[str | None, ...]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError naming both."""
    if value not in choices:
        raise ValueError(f"{name} is {value!r}; it must be one of {list(choices)}")
    return value


class MedciteRetriever(BaseRetriever):
    """A LangChain retriever over a medcite index.

    Example::

        retriever = MedciteRetriever(index="indexes/demo", k=5, kind="guideline")
        docs = retriever.invoke("adjuvant chemotherapy for stage III colon cancer")
        docs = retriever.invoke("adjuvant chemotherapy for stage III colon cancer", k=2, kind="research")

    Keyword arguments ``k``, ``kind`` and ``mode`` given to ``invoke`` (or ``ainvoke``, ``batch``, ``bind``)
    override the fields of the same name for that call only; any other keyword is refused.

    Attributes:
        index: the opened index; a folder path (``str`` or ``os.PathLike``) is opened with
            :func:`pipeline.index.open_index` and the index's own settings and the bundled embedder.
        k: the number of documents to return; 0 returns none.
        kind: ``"guideline"``, ``"research"``, or None for both.
        mode: ``"hybrid"``, ``"dense"``, ``"bm25"``, or None for the index settings' default.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = 5
    kind: Kind | None = None
    mode: RetrieveMode | None = None

    @field_validator("index", mode="before")
    @classmethod
    def _open_path(cls, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            return open_index(Path(value))
        return value

    @field_validator("k", mode="before")
    @classmethod
    def _valid_k(cls, value: Any) -> int:
        return _check_k(value)

    @field_validator("kind", mode="before")
    @classmethod
    def _valid_kind(cls, value: Any) -> Any:
        return _check_choice("kind", value, _KIND_CHOICES)

    @field_validator("mode", mode="before")
    @classmethod
    def _valid_mode(cls, value: Any) -> Any:
        return _check_choice("mode", value, _MODE_CHOICES)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        """Search the index, with ``k``, ``kind`` and ``mode`` from ``kwargs`` overriding the fields.

        Raises:
            TypeError: a keyword other than ``k``, ``kind`` and ``mode``.
            ValueError: a negative or non-integer ``k``, an unknown ``kind`` or ``mode``, or an empty query.
        """
        unknown = sorted(set(kwargs) - {*_CALL_OPTIONS, *_LANGCHAIN_OPTIONS})
        if unknown:
            raise TypeError(f"MedciteRetriever got unexpected keyword(s) {unknown}; it accepts {list(_CALL_OPTIONS)}")
        k = _check_k(kwargs["k"]) if "k" in kwargs else self.k
        kind: Kind | None = _check_choice("kind", kwargs["kind"], _KIND_CHOICES) if "kind" in kwargs else self.kind
        mode: str | None = _check_choice("mode", kwargs["mode"], _MODE_CHOICES) if "mode" in kwargs else self.mode
        if k == 0:
            return []
        hits = self.index.search(query, k, kind=kind, mode=mode)
        return [hit_to_langchain(h) for h in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        """:meth:`_get_relevant_documents` in an executor thread, with the same keywords.

        LangChain's default passes no keywords on, so ``ainvoke(q, k=1)`` would fail.
        """
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
        )
