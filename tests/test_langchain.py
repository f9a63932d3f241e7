"""MedciteRetriever: LangChain's standard retriever tests, and the options a LangChain user passes."""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from pipeline.chunk import SpacySentences
from pipeline.errors import IndexError_
from pipeline.index import Index, open_index
from pipeline.langchain import MedciteRetriever
from pipeline.settings import Settings
from pipeline.types import Block, Document
from tests.fakes import HashingEmbedder, hashed_index

SETTINGS = Settings.preset("test")
QUERY = "colon cancer chemotherapy"


# (id, kind, title, text): four guidelines and four abstracts, one short chunk each, so eight chunks (more than k=5).
DOCS = [
    ("g1", "guideline", "Colon cancer", "Adjuvant FOLFOX chemotherapy is recommended for stage III colon cancer."),
    ("g2", "guideline", "Rectal cancer", "Neoadjuvant chemoradiotherapy precedes surgery for advanced rectal cancer."),
    ("g3", "guideline", "Migraine", "Triptans are recommended for acute migraine attacks."),
    ("g4", "guideline", "Asthma", "Inhaled corticosteroids are the first controller for persistent asthma."),
    ("r5", "research", "Aspirin and adenoma", "Daily aspirin reduced colorectal adenoma recurrence in a trial."),
    ("r6", "research", "Capecitabine", "Capecitabine chemotherapy matched infusional fluorouracil in colon cancer."),
    ("r7", "research", "Statins", "Statins lowered cardiovascular events in older adults."),
    ("r8", "research", "Vitamin D", "Vitamin D supplements did not prevent fractures in healthy adults."),
]


def _docs() -> list[Document]:
    return [Document(id=i, kind=kind, title=title, blocks=(Block(text),)) for i, kind, title, text in DOCS]  # type: ignore[arg-type]


@functools.cache
def _index_folder() -> Path:
    """The index folder, built once per test process with the hashing embedder and removed at exit.

    The standard tests build the retriever from class properties, not fixtures, hence a cached helper.
    """
    root = Path(tempfile.mkdtemp(prefix="medcite-langchain-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    hashed_index(root / "ix", _docs(), SETTINGS, SpacySentences())
    return root / "ix"


@functools.cache
def _opened() -> Index:
    return open_index(_index_folder(), settings=SETTINGS, embedder=HashingEmbedder())


@pytest.mark.anyio  # runs the async standard test (test_ainvoke_returns_documents); sync tests are left alone
class TestMedciteRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own retriever tests (langchain-tests), unchanged."""

    @property
    def retriever_constructor(self) -> type[MedciteRetriever]:
        return MedciteRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": _opened()}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


@pytest.fixture
def anyio_backend() -> str:
    """The async tests run on asyncio only (anyio would add trio where it is installed)."""
    return "asyncio"


@pytest.fixture
def index() -> Index:
    return _opened()


def test_the_index_holds_one_chunk_per_document(index: Index) -> None:
    assert len(index) == 8
    assert MedciteRetriever(index=index).k == 5


def test_invoke_k_overrides_the_constructor(index: Index) -> None:
    retriever = MedciteRetriever(index=index)
    assert len(retriever.invoke(QUERY)) == 5
    assert len(retriever.invoke(QUERY, k=1)) == 1
    assert len(retriever.invoke(QUERY, k=7)) == 7
    assert retriever.k == 5, "the override is for that call only"
    assert len(retriever.invoke(QUERY)) == 5
    assert [len(d) for d in retriever.batch([QUERY, QUERY], k=2)] == [2, 2]


@pytest.mark.anyio
async def test_ainvoke_passes_the_keywords_on(index: Index) -> None:
    retriever = MedciteRetriever(index=index, kind="guideline")
    docs = await retriever.ainvoke(QUERY, k=2, kind="research")
    assert len(docs) == 2 and {d.metadata["kind"] for d in docs} == {"research"}
    assert await retriever.ainvoke(QUERY, k=0) == []
    assert [len(d) for d in await retriever.abatch([QUERY, QUERY], k=1)] == [1, 1]
    with pytest.raises(ValueError, match="kind is 'guidelines'"):
        await retriever.ainvoke(QUERY, kind="guidelines")


def test_k_zero_returns_no_documents(index: Index) -> None:
    assert MedciteRetriever(index=index, k=0).invoke(QUERY) == []
    assert MedciteRetriever(index=index).invoke(QUERY, k=0) == []
    assert len(MedciteRetriever(index=index, k=0).invoke(QUERY, k=2)) == 2


@pytest.mark.parametrize("k", [-1, 1.5, "3", None, True])
def test_bad_k_is_a_clear_error(index: Index, k: Any) -> None:
    with pytest.raises(ValidationError, match=r"k is .*0 or more"):
        MedciteRetriever(index=index, k=k)
    with pytest.raises(ValueError, match=r"k is .*0 or more"):
        MedciteRetriever(index=index).invoke(QUERY, k=k)


def test_kind_and_mode_kwargs_override_the_constructor(index: Index) -> None:
    retriever = MedciteRetriever(index=index, kind="guideline")
    assert {d.metadata["kind"] for d in retriever.invoke(QUERY)} == {"guideline"}
    assert {d.metadata["kind"] for d in retriever.invoke(QUERY, kind="research")} == {"research"}
    assert {d.metadata["kind"] for d in retriever.invoke(QUERY, kind=None)} == {"guideline", "research"}
    # BM25 only finds chunks that share a word with the query; hybrid also brings in dense neighbours.
    assert [d.metadata["doc_id"] for d in retriever.invoke("triptans", mode="bm25")] == ["g3"]
    assert len(retriever.invoke("triptans")) == 4
    assert (
        MedciteRetriever(index=index, mode="bm25").invoke("triptans", mode="hybrid", k=2)[0].metadata["doc_id"] == "g3"
    )


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("kind", "guidelines", "[None, 'guideline', 'research']"),
        ("kind", "Guideline", "[None, 'guideline', 'research']"),
        ("mode", "semantic", "[None, 'hybrid', 'dense', 'bm25']"),
        ("mode", "", "[None, 'hybrid', 'dense', 'bm25']"),
    ],
)
def test_bad_kind_or_mode_is_refused_at_construction(index: Index, field: str, value: str, choices: str) -> None:
    with pytest.raises(ValidationError) as e:
        MedciteRetriever(index=index, **{field: value})
    assert f"{field} is {value!r}; it must be one of {choices}" in str(e.value)
    with pytest.raises(ValueError, match="it must be one of") as e2:
        MedciteRetriever(index=index).invoke(QUERY, **{field: value})
    assert f"{field} is {value!r}" in str(e2.value)


def test_unknown_invoke_keyword_is_refused(index: Index) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['top_k'\]; it accepts \['k', 'kind', 'mode'\]"):
        MedciteRetriever(index=index).invoke(QUERY, top_k=2)
    assert len(MedciteRetriever(index=index).invoke(QUERY, k=2, verbose=False)) == 2, "LangChain's own keyword"


@pytest.mark.parametrize("as_str", [True, False])
def test_index_may_be_a_path(as_str: bool) -> None:
    folder = _index_folder()
    # Opened by path, the index queries with the embedder named in its manifest (here the fake one, which
    # cannot be loaded), so this checks with BM25 alone.
    retriever = MedciteRetriever(index=str(folder) if as_str else folder, mode="bm25")
    assert isinstance(retriever.index, Index) and len(retriever.index) == 8
    docs = retriever.invoke("triptans")
    assert [d.metadata["doc_id"] for d in docs] == ["g3"] and isinstance(docs[0], LCDocument)


def test_missing_index_path_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match=re.escape(str(tmp_path / "nowhere"))):
        MedciteRetriever(index=tmp_path / "nowhere")


def test_documents_carry_provenance(index: Index) -> None:
    doc = MedciteRetriever(index=index, k=1, mode="bm25").invoke("triptans")[0]
    assert doc.page_content == "Triptans are recommended for acute migraine attacks."
    assert doc.id == doc.metadata["chunk_id"]
    assert {k: doc.metadata[k] for k in ("doc_id", "kind", "title", "rank")} == {
        "doc_id": "g3",
        "kind": "guideline",
        "title": "Migraine",
        "rank": 1,
    }
