"""End to end with the real bundled model, real documents from the mirror, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import MedciteRetriever, open_index
from pipeline.cli import app

pytestmark = pytest.mark.slow

COLON = "guidelines/pdq/types-colorectal-hp-colon-treatment-pdq.md"
SEED = "What is the treatment for oligoprogressive colorectal cancer?"


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """colon PDQ summary (guideline) + 40 PubMedQA abstracts (research), built through the CLI."""
    root = tmp_path_factory.mktemp("real")
    (root / "guidelines").mkdir()
    shutil.copy(mirror / COLON, root / "guidelines")
    from pipeline.corpus import pubmedqa_records

    recs = pubmedqa_records((mirror / "research/pubmedqa/ori_pqal.json").read_bytes())[:40]
    (root / "research").mkdir()
    (root / "research" / "pubmedqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "research" / "broken.jsonl").write_text('{"pmid": "1", "abstract": "no title"}\n')
    result = CliRunner().invoke(
        app,
        [
            "index",
            "build",
            "-g",
            str(root / "guidelines"),
            "-r",
            str(root / "research"),
            "--out",
            str(root / "ix"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "41 documents" in result.output
    assert "broken.jsonl:1: missing field 'title'" in result.output
    return root / "ix"


def test_finds_a_known_passage(real_index: Path) -> None:
    index = open_index(real_index)
    hits = index.search("FOLFOXIRI plus bevacizumab for metastatic colorectal cancer", k=5, kind="guideline")
    assert any("FOLFOXIRI" in h.chunk.heading for h in hits[:3]), [h.chunk.heading for h in hits]
    hits = index.search("liver metastases resection", k=5, kind="guideline")
    assert any("Liver Metastasis" in h.chunk.heading for h in hits), [h.chunk.heading for h in hits]
    for mode in ("dense", "bm25"):
        assert index.search("hepatic arterial infusion after liver resection", k=3, kind="guideline", mode=mode)


def test_search_cli_json_shape(real_index: Path) -> None:
    result = CliRunner().invoke(app, ["search", SEED, "--index", str(real_index), "-k", "3", "--by-kind", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["query"] == SEED
    assert [h["kind"] for h in out["hits"]] == ["guideline"] * 3 + ["research"] * 3
    first = out["hits"][0]
    assert {"rank", "score", "kind", "doc_id", "chunk_id", "title", "page", "text"} <= set(first)
    assert first["title"].startswith("Colon Cancer Treatment")


def test_search_cli_text_and_errors(real_index: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["search", SEED, "--index", str(real_index), "--by-kind", "-k", "2"])
    assert ok.exit_code == 0 and "=== From the Guidelines ===" in ok.output and "=== From the Research ===" in ok.output
    missing = runner.invoke(app, ["search", SEED, "--index", str(tmp_path / "none")])
    assert missing.exit_code == 4 and "no index here" in missing.output
    bad_kind = runner.invoke(app, ["search", SEED, "--index", str(real_index), "--kind", "blog"])
    assert bad_kind.exit_code == 2
    empty = runner.invoke(app, ["search", "  ", "--index", str(real_index)])
    assert empty.exit_code == 3 and "question is empty" in empty.output
    info = runner.invoke(app, ["index", "info", str(real_index)])
    assert info.exit_code == 0 and "all-MiniLM-L6-v2" in info.output and "384-d" in info.output


def test_rebuild_is_incremental_with_the_real_model(real_index: Path, tmp_path: Path, mirror: Path) -> None:
    runner = CliRunner()
    src = tmp_path / "g"
    src.mkdir()
    shutil.copy(mirror / COLON, src)
    result = runner.invoke(app, ["index", "build", "-g", str(src), "--out", str(tmp_path / "ix"), "-q", "--json"])
    first = json.loads(result.stdout)
    again = json.loads(
        runner.invoke(app, ["index", "build", "-g", str(src), "--out", str(tmp_path / "ix"), "-q", "--json"]).stdout
    )
    assert first["embedded"] == first["chunks"] > 100
    assert (again["embedded"], again["reused"], again["index_id"]) == (0, first["chunks"], first["index_id"])


def test_langchain_retriever(real_index: Path) -> None:
    retriever = MedciteRetriever(index=open_index(real_index), k=2, kind="guideline")
    docs = retriever.invoke("adjuvant chemotherapy for stage III colon cancer")
    assert len(docs) == 2
    assert docs[0].metadata["kind"] == "guideline" and docs[0].metadata["chunk_id"] and docs[0].page_content
