"""medcite: offline-first answers to clinical questions from guidelines and research, with checked citations.

The public API::

    import pipeline
    pipeline.pull_corpus("demo")
    pipeline.build_index("indexes/demo", **pipeline.corpus_sources("demo"))
    index = pipeline.open_index("indexes/demo")
    answer = pipeline.ask("What is the treatment for oligoprogressive colorectal cancer?", index,
                          generator="extractive")
    chat = pipeline.Conversation(index, generator="extractive")
"""

from pipeline.answer import AskOptions, ask, ask_stream
from pipeline.batch import BatchOptions, BatchResult, BatchSummary, ask_many, run_batch
from pipeline.conversation import Conversation
from pipeline.corpus import PullReport, default_mirror, list_corpora, pubmedqa_records
from pipeline.corpus import index_inputs as corpus_sources
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
    RunMismatchError,
)
from pipeline.generate import Generator, make_generator
from pipeline.index import BuildReport, Index, build_index, open_index
from pipeline.ingest import IngestResult, ingest
from pipeline.judge import Judge, make_judge
from pipeline.settings import Settings
from pipeline.types import Answer, Block, Chunk, Document, Hit, Skipped, from_dict, to_dict


def __getattr__(name: str) -> object:
    # langchain-core adds half a second to every `import pipeline`: it is imported when first asked for.
    if name == "MedciteRetriever":
        from pipeline.langchain import MedciteRetriever

        return MedciteRetriever
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


__all__ = [
    "Answer",
    "AskOptions",
    "BatchOptions",
    "BatchResult",
    "BatchSummary",
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
    "Generator",
    "Hit",
    "Index",
    "IndexLoadError",
    "IndexMismatchError",
    "IngestResult",
    "InputError",
    "Judge",
    "MedciteRetriever",
    "PipelineError",
    "PullReport",
    "RunMismatchError",
    "SentenceTransformerEmbedder",
    "Settings",
    "Skipped",
    "ask",
    "ask_many",
    "ask_stream",
    "build_index",
    "corpus_sources",
    "default_mirror",
    "from_dict",
    "ingest",
    "list_corpora",
    "make_generator",
    "make_judge",
    "open_index",
    "pubmedqa_records",
    "pull_corpus",
    "run_batch",
    "to_dict",
]
