from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline import Settings, build_index, open_index
from pipeline.errors import IndexError_, IndexMismatchError, InputError
from pipeline.index import resolve_version
from pipeline.types import Block, Document
from tests.fakes import FailingEmbedder, HashingEmbedder

SETTINGS = Settings.preset("test")


def _docs() -> list[Document]:
    return [
        Document(
            id="g-colon",
            kind="guideline",
            title="Colon cancer treatment",
            source="NCI",
            year=2025,
            blocks=(
                Block("Resection of isolated liver metastases can cure some patients.", heading="Stage IV > Surgery"),
                Block(
                    "FOLFOX plus bevacizumab is a first-line option for metastatic disease.",
                    heading="Stage IV > Systemic",
                ),
            ),
        ),
        Document(
            id="g-migraine",
            kind="guideline",
            title="Migraine management",
            source="SIGN",
            year=2023,
            blocks=(Block("Triptans are recommended for acute migraine attacks.", heading="Acute treatment", page=12),),
        ),
        Document(
            id="pmid:1",
            kind="research",
            title="Stereotactic radiotherapy for oligoprogressive colorectal cancer",
            source="Radiother Oncol",
            year=2021,
            pmid="1",
            blocks=(
                Block(
                    "Stereotactic body radiotherapy to oligoprogressive lesions delayed a change of systemic therapy."
                ),
            ),
        ),
        Document(
            id="pmid:2",
            kind="research",
            title="Aspirin and colorectal adenoma",
            pmid="2",
            blocks=(Block("Daily aspirin reduced adenoma recurrence in a randomised trial."),),
        ),
    ]


@pytest.fixture
def built(tmp_path: Path, embedder: HashingEmbedder, splitter) -> Path:  # type: ignore[no-untyped-def]
    build_index(
        tmp_path / "ix", documents=_docs(), settings=SETTINGS, embedder=embedder, splitter=splitter, progress=False
    )
    return tmp_path / "ix"


def _open(path: Path, embedder: HashingEmbedder | None = None):  # type: ignore[no-untyped-def]
    return open_index(path, settings=SETTINGS, embedder=embedder or HashingEmbedder())


def test_build_writes_manifest_and_finds_passages(built: Path) -> None:
    index = _open(built)
    m = index.manifest
    assert m["format"] == "medcite-index" and m["format_version"] == 1
    assert m["embedding"]["model"] == "fake/hashing" and m["embedding"]["dim"] == 64
    assert m["embedding"]["fingerprint"] == HashingEmbedder().fingerprint()
    assert m["chunking"] == SETTINGS.chunk.model_dump()
    assert m["corpus"]["documents"] == 4 and m["corpus"]["chunks_by_kind"] == {"guideline": 3, "research": 2}
    assert len(m["corpus"]["checksum"]) == 64
    assert {"faiss-cpu", "bm25s", "numpy"} <= set(m["libraries"])
    hits = index.search("oligoprogressive colorectal radiotherapy", k=2)
    assert hits[0].chunk.doc_id == "pmid:1"
    assert hits[0].rank == 1 and hits[0].dense_rank is not None and hits[0].lexical_rank is not None
    assert hits[0].document.title.startswith("Stereotactic") and hits[0].document.pmid == "1"


def test_kind_filter_and_quotas(built: Path) -> None:
    index = _open(built)
    guideline = index.search("colorectal cancer liver metastases", k=5, kind="guideline")
    assert guideline and all(h.kind == "guideline" for h in guideline)
    by_kind = index.search_by_kind("colorectal cancer", {"guideline": 1, "research": 2})
    assert [h.kind for h in by_kind["guideline"]] == ["guideline"]
    assert [h.kind for h in by_kind["research"]] == ["research", "research"]
    for mode in ("dense", "bm25", "hybrid"):
        assert all(h.kind == "research" for h in index.search("aspirin adenoma", k=3, kind="research", mode=mode))


def test_hit_provenance_and_json_shape(built: Path) -> None:
    (hit,) = _open(built).search("triptans acute migraine", k=1, kind="guideline")
    d = hit.to_dict()
    assert {"rank", "score", "kind", "doc_id", "chunk_id", "title", "page", "text"} <= set(d)
    assert (d["doc_id"], d["page"], d["kind"]) == ("g-migraine", 12, "guideline")


def test_bad_queries_are_input_errors(built: Path) -> None:
    index = _open(built)
    with pytest.raises(InputError, match="empty"):
        index.search("   ")
    with pytest.raises(InputError, match="kind"):
        index.search("x", kind="blog")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mode"):
        index.search("x", mode="fuzzy")


def test_incremental_build_embeds_only_new_or_changed(built: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    docs = _docs()
    docs[1] = Document(
        id="g-migraine", kind="guideline", title="Migraine management", blocks=(Block("Topiramate prevents migraine."),)
    )
    docs = [d for d in docs if d.id != "pmid:2"] + [
        Document(id="pmid:3", kind="research", title="New trial", blocks=(Block("A new finding on colon cancer."),))
    ]
    emb = HashingEmbedder()
    report = build_index(built, documents=docs, settings=SETTINGS, embedder=emb, splitter=splitter, progress=False)
    assert report.added_documents == ("pmid:3",)
    assert report.changed_documents == ("g-migraine",)
    assert report.removed_documents == ("pmid:2",)
    assert report.embedded == 2 and report.reused == 3
    assert len(emb.encoded) == 2
    index = _open(built)
    assert set(index.documents) == {"g-colon", "g-migraine", "pmid:1", "pmid:3"}
    assert all("adenoma" not in c.text for c in index.chunks), "removed documents leave the index"
    # Reused vectors are the same vectors.
    fresh = HashingEmbedder().encode([c.embedding_text() for c in index.chunks])
    assert np.allclose(np.asarray(index.embeddings), fresh)


def test_unchanged_rebuild_embeds_nothing_and_keeps_id(built: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    first = _open(built).id
    emb = HashingEmbedder()
    report = build_index(built, documents=_docs(), settings=SETTINGS, embedder=emb, splitter=splitter, progress=False)
    assert (report.embedded, report.index_id) == (0, first)
    assert emb.encoded == []


def test_other_model_or_settings_rebuild_fully_and_refuse_to_open(built: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    other = HashingEmbedder(salt="v2")
    with pytest.raises(IndexMismatchError, match="embedding model files"):
        open_index(built, settings=SETTINGS, embedder=other)
    with pytest.raises(IndexMismatchError, match=r"chunk.max_tokens: index has 120, settings ask 200"):
        open_index(built, settings=Settings(), embedder=HashingEmbedder())
    report = build_index(built, documents=_docs(), settings=SETTINGS, embedder=other, splitter=splitter, progress=False)
    assert report.reused == 0 and "full rebuild" in report.note


def test_search_with_a_different_query_embedder_fails(built: Path) -> None:
    index = open_index(built, embedder=HashingEmbedder(salt="other"))  # no settings: the index's own
    with pytest.raises(IndexMismatchError, match="embedding model files"):
        index.search("colon")


def test_crash_mid_build_leaves_previous_index_intact(built: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    before = _open(built)
    docs = [*_docs(), Document(id="pmid:9", kind="research", title="T", blocks=(Block("Brand new text."),))]
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_index(
            built, documents=docs, settings=SETTINGS, embedder=FailingEmbedder(), splitter=splitter, progress=False
        )
    after = _open(built)
    assert after.id == before.id and len(after) == len(before)
    assert not list(built.glob(".v-*.tmp")), "the half-written version was removed"


def test_nothing_readable_is_an_input_error(tmp_path: Path, embedder: HashingEmbedder) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "empty.md").write_text("")
    with pytest.raises(InputError, match="no document could be read: .*empty.md: empty file"):
        build_index(
            tmp_path / "ix", guidelines=[tmp_path / "docs"], settings=SETTINGS, embedder=embedder, progress=False
        )
    assert not (tmp_path / "ix" / "CURRENT").exists()


def test_skipped_files_are_reported_and_recorded(tmp_path: Path, embedder: HashingEmbedder, splitter) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "good.md").write_text("# Good\n\nA recommendation.")
    (tmp_path / "docs" / "bad.txt").write_bytes(b"\x00\x01binary")
    report = build_index(
        tmp_path / "ix",
        guidelines=[tmp_path / "docs"],
        settings=SETTINGS,
        embedder=embedder,
        splitter=splitter,
        progress=False,
    )
    assert [Path(s.path).name for s in report.skipped] == ["bad.txt"]
    assert "bad.txt: binary data" in report.summary()
    manifest = _open(tmp_path / "ix", embedder).manifest
    assert [Path(s["path"]).name for s in manifest["skipped"]] == ["bad.txt"]


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_index_types(tmp_path: Path, index_type: str, splitter) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.preset("test", index={"type": index_type})
    docs = [
        Document(
            id=f"d{i}",
            kind="research" if i % 2 else "guideline",
            title=f"Doc {i}",
            blocks=(Block(f"Topic {i} alpha{i} beta{i}."),),
        )
        for i in range(60)
    ]
    build_index(
        tmp_path / "ix",
        documents=docs,
        settings=settings,
        embedder=HashingEmbedder(),
        splitter=splitter,
        progress=False,
    )
    index = open_index(tmp_path / "ix", settings=settings, embedder=HashingEmbedder())
    hits = index.search("alpha7 beta7", k=3, kind="research", mode="dense")
    assert hits[0].chunk.doc_id == "d7" and all(h.kind == "research" for h in hits)


# ---------------------------------------------------------------- damaged folders


def _version(path: Path) -> Path:
    return resolve_version(path)


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="no index here"):
        open_index(tmp_path / "nope")


def test_truncated_faiss_file(built: Path) -> None:
    p = _version(built) / "dense.faiss"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(IndexError_, match="dense.faiss: sha256 differs"):
        _open(built)
    with pytest.raises(IndexError_, match="dense.faiss: unreadable FAISS file"):
        open_index(built, settings=SETTINGS, embedder=HashingEmbedder(), verify=False)


def test_edited_manifest_and_row_count_mismatch(built: Path) -> None:
    v = _version(built)
    m = json.loads((v / "manifest.json").read_text())
    m["corpus"]["chunks"] = 99
    (v / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexError_, match="row counts disagree.*manifest corpus.chunks 99"):
        _open(built)


def test_chunks_file_missing_a_row(built: Path) -> None:
    v = _version(built)
    lines = (v / "chunks.jsonl").read_text().splitlines()
    (v / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IndexError_, match="row counts disagree"):
        open_index(built, settings=SETTINGS, embedder=HashingEmbedder(), verify=False)


def test_newer_format_and_foreign_manifest(built: Path) -> None:
    v = _version(built)
    m = json.loads((v / "manifest.json").read_text())
    (v / "manifest.json").write_text(json.dumps({**m, "format_version": 99}))
    with pytest.raises(IndexError_, match="format version 99 is newer"):
        _open(built)
    (v / "manifest.json").write_text("{not json")
    with pytest.raises(IndexError_, match="manifest.json: not valid JSON"):
        _open(built)


def test_manifest_paths_cannot_escape_and_current_is_checked(built: Path, tmp_path: Path) -> None:
    v = _version(built)
    m = json.loads((v / "manifest.json").read_text())
    m["files"]["../../outside"] = "0" * 64
    (v / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexError_, match="points outside the index folder"):
        _open(built)
    (built / "CURRENT").write_text("../../etc")
    with pytest.raises(IndexError_, match="not an index version folder"):
        _open(built)


def test_pickle_is_never_loaded(built: Path) -> None:
    v = _version(built)
    np.save(v / "embeddings.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(IndexError_, match="embeddings.npy: unreadable"):
        open_index(built, settings=SETTINGS, embedder=HashingEmbedder(), verify=False)


def test_open_version_folder_directly(built: Path) -> None:
    v = _version(built)
    copy = built.parent / "copy"
    shutil.copytree(v, copy)
    assert _open(copy).id == _open(built).id
