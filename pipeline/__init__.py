"""medcite: offline-first answers to clinical questions from guidelines and research, with checked citations.

The public API::

    import pipeline
    pipeline.pull_corpus("demo")
    report = pipeline.build_index("indexes/demo", **pipeline.corpus_sources("demo"))
    index = pipeline.open_index("indexes/demo")
    hits = index.search("What is the treatment for oligoprogressive colorectal cancer?", k=5, kind="guideline")
"""

from pipeline.batch import ask_many, run_batch
from pipeline.conversation import Conversation
from pipeline.corpus import PullReport, list_corpora
from pipeline.corpus import pull as pull_corpus
from pipeline.embed import Embedder, SentenceTransformerEmbedder
from pipeline.errors import (
    ChecksumError,
    CorpusError,
    DocumentError,
    GenerationError,
    IndexLoadError,
    IndexMismatchError,
    InputError,
    PipelineError,
)
from pipeline.index import BuildReport, build_index, open_index
from pipeline.ingest import IngestResult, ingest
from pipeline.retrieve import Index
from pipeline.settings import Settings
from pipeline.types import Block, Chunk, Document, Hit, Skipped


def corpus_sources(name: str) -> dict[str, list[str]]:
    """``guidelines=`` and ``research=`` keyword arguments of :func:`build_index` for a pulled corpus."""
    from pipeline.corpus import corpus_sources as _sources

    folders = _sources(name)
    return {
        "guidelines": [str(folders["guideline"])] if "guideline" in folders else [],
        "research": [str(folders["research"])] if "research" in folders else [],
    }


def __getattr__(name: str) -> object:
    if name == "MedciteRetriever":  # imported lazily: langchain-core is heavy
        from pipeline.langchain import MedciteRetriever

        return MedciteRetriever
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


__all__ = [
    "Block",
    "BuildReport",
    "ChecksumError",
    "Chunk",
    "Conversation",
    "CorpusError",
    "Document",
    "DocumentError",
    "Embedder",
    "GenerationError",
    "Hit",
    "Index",
    "IndexLoadError",
    "IndexMismatchError",
    "IngestResult",
    "InputError",
    "MedciteRetriever",
    "PipelineError",
    "PullReport",
    "SentenceTransformerEmbedder",
    "Settings",
    "Skipped",
    "ask_many",
    "build_index",
    "corpus_sources",
    "ingest",
    "list_corpora",
    "open_index",
    "pull_corpus",
    "run_batch",
]
