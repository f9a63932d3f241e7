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
    result = runner.invoke(
        app, ["index", "build", "--guidelines", str(src), "--out", str(tmp_path / "ix"), "-q", "--json"]
    )
    first = json.loads(result.stdout)
    again = json.loads(
        runner.invoke(
            app, ["index", "build", "--guidelines", str(src), "--out", str(tmp_path / "ix"), "-q", "--json"]
        ).stdout
    )
    assert first["embedded"] == first["chunks"] > 100
    assert (again["embedded"], again["reused"], again["index_id"]) == (0, first["chunks"], first["index_id"])


def test_langchain_retriever(real_index: Path) -> None:
    retriever = MedciteRetriever(index=open_index(real_index), k=2, kind="guideline")
    docs = retriever.invoke("adjuvant chemotherapy for stage III colon cancer")
    assert len(docs) == 2
    assert docs[0].metadata["kind"] == "guideline" and docs[0].metadata["chunk_id"] and docs[0].page_content


def _check_answer_json(out: dict, question: str) -> None:  # type: ignore[type-arg]
    assert out["question"] == question
    assert [s["title"] for s in out["sections"]] == ["From the Guidelines", "From the Research"]
    refs = {r["n"]: r for r in out["references"]}
    assert sorted(refs) == list(range(1, len(refs) + 1))
    order: list[int] = []
    for section, kind in zip(out["sections"], ["guideline", "research"], strict=True):
        if section["abstained"]:
            continue
        for block in section["blocks"]:
            for item in block["items"]:
                assert item["citations"], item
                for n in item["citations"]:
                    assert refs[n]["kind"] == kind, "each section cites only its own kind"
                    if n not in order:
                        order.append(n)
    assert order == sorted(order), "numbers follow first use"
    for r in refs.values():
        assert r["title"] and r["passages"] and all(p["chunk_id"] and p["text"] for p in r["passages"])
    assert out["disclaimer"] and set(out["run"]) == {"generator", "model", "prompt_hash", "settings_hash", "index_id"}


def test_ask_extractive_end_to_end(real_index: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ask", SEED, "--index", str(real_index), "-g", "extractive", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    _check_answer_json(out, SEED)
    assert not out["sections"][0]["abstained"], "the colon PDQ summary covers stage IV treatment"
    assert out["run"]["generator"] == "extractive"
    # Every extractive statement is a sentence of a cited passage, after the notice that no indexed document
    # mentions "oligoprogressive" (which names the closest sections' headings).
    refs = {r["n"]: r for r in out["references"]}
    lead = out["sections"][0]["blocks"][0]["items"][0]["text"]
    assert lead.startswith('The indexed guidelines do not mention "oligoprogressive"; the closest guidance covers')
    for section in out["sections"]:
        for block in section["blocks"]:
            for item in block["items"]:
                if item["text"].startswith("The indexed "):
                    continue
                body = item["text"].split(": ", 1)[-1] if item["text"].startswith("According to") else item["text"]
                assert any(body in p["text"] for n in item["citations"] for p in refs[n]["passages"])
    md = runner.invoke(app, ["ask", SEED, "--index", str(real_index), "-g", "extractive"])
    assert md.exit_code == 0 and "## From the Guidelines" in md.stdout and "## References" in md.stdout
    page = tmp_path / "a.html"
    html = runner.invoke(app, ["ask", SEED, "-i", str(real_index), "-g", "extractive", "-f", "html", "-o", str(page)])
    assert html.exit_code == 0 and page.read_text().startswith("<!doctype html>")
    off_topic = json.loads(
        runner.invoke(
            app, ["ask", "How do I tune a guitar string?", "-i", str(real_index), "-g", "extractive", "-f", "json"]
        ).stdout
    )
    assert [s["abstained"] for s in off_topic["sections"]] == [True, True]
    assert off_topic["references"] == []
