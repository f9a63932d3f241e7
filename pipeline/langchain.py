"""A LangChain retriever over a medcite index, so the index plugs into LangChain chains."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from pipeline.retrieve import Index
from pipeline.types import Hit


def hit_to_langchain(hit: Hit) -> LCDocument:
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


class MedciteRetriever(BaseRetriever):
    """``MedciteRetriever(index=pipeline.open_index("indexes/demo"), k=5, kind="guideline")``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = 5
    kind: str | None = None
    mode: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        hits = self.index.search(query, self.k, kind=self.kind, mode=self.mode)  # type: ignore[arg-type]
        return [hit_to_langchain(h) for h in hits]
