from __future__ import annotations

import pytest

from pipeline.chunk import Chunker, SpacySentences, chunk_id
from pipeline.settings import ChunkSettings
from pipeline.types import Block, Document
from tests.fakes import HashingEmbedder


def _doc(*blocks: Block, title: str = "Guideline") -> Document:
    return Document(id="d1", kind="guideline", title=title, blocks=blocks)


SENTENCES = [f"Sentence number {i} says something about dose {i} mg daily." for i in range(1, 31)]  # 9 words each


def test_sentence_splitter_keeps_clinical_abbreviations(splitter: SpacySentences) -> None:
    (sents,) = splitter.split(
        ["Give 500 mg b.i.d. for 5 days (see Fig. 2). Smith et al. reported a 20% response. Stop."]
    )
    assert sents == ["Give 500 mg b.i.d. for 5 days (see Fig. 2).", "Smith et al. reported a 20% response.", "Stop."]


def test_chunks_fit_end_on_sentences_and_overlap(splitter: SpacySentences) -> None:
    emb = HashingEmbedder(max_tokens=64)
    chunker = Chunker(ChunkSettings(max_tokens=40, overlap_tokens=10, min_body_tokens=16), emb, splitter)
    chunks = chunker.chunk(_doc(Block(" ".join(SENTENCES), heading="Dosing")))
    assert len(chunks) > 3
    for c in chunks:
        assert c.n_tokens <= 40
        assert emb.count_tokens([c.embedding_text()])[0] <= 64 - 2  # context line included
        assert c.text.endswith(".") and c.text.startswith("Sentence number")
        assert c.context == "Guideline — Dosing" and c.heading == "Dosing"
    for a, b in zip(chunks, chunks[1:], strict=False):
        last = a.text.split(". ")[-1]
        assert b.text.startswith(last.rstrip(".")), "each chunk starts with the last sentence of the one before"
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in SENTENCES), "no sentence is lost"


def test_chunk_ids_are_stable_and_content_addressed(splitter: SpacySentences) -> None:
    chunker = Chunker(ChunkSettings(max_tokens=40, overlap_tokens=0, min_body_tokens=16), HashingEmbedder(), splitter)
    doc = _doc(Block(" ".join(SENTENCES[:8])))
    first = [c.id for c in chunker.chunk(doc)]
    assert first == [c.id for c in chunker.chunk(doc)]
    edited = ["Sentence number 1 now says 20 mg instead."] + SENTENCES[1:8]
    second = [c.id for c in chunker.chunk(_doc(Block(" ".join(edited))))]
    assert len(first) == len(second) == 2
    assert second[0] != first[0], "a passage whose text changed gets a new id"
    assert second[1] == first[1], "a passage whose text did not change keeps its id"
    assert chunk_id("d1", "ctx", "text") == chunk_id("d1", "ctx", "text") != chunk_id("d2", "ctx", "text")


def test_pages_and_headings_are_carried(splitter: SpacySentences) -> None:
    chunker = Chunker(ChunkSettings(max_tokens=30, overlap_tokens=0, min_body_tokens=16), HashingEmbedder(), splitter)
    doc = _doc(
        Block(" ".join(SENTENCES[:2]), heading="1 INTRO", page=1),
        Block(" ".join(SENTENCES[2:4]), heading="1 INTRO", page=2),
        Block(" ".join(SENTENCES[4:6]), heading="2 TREATMENT", page=2),
    )
    chunks = chunker.chunk(doc)
    # 10-word sentences, 30-token chunks: a chunk may run across a page break (page..page_end),
    # never across a heading.
    assert [(c.heading, c.page, c.page_end, c.n_tokens) for c in chunks] == [
        ("1 INTRO", 1, 2, 30),
        ("1 INTRO", 2, 2, 10),
        ("2 TREATMENT", 2, 2, 20),
    ]
    assert chunks[2].text == " ".join(SENTENCES[4:6])


def test_overlong_sentence_and_long_context_are_cut_to_fit(splitter: SpacySentences) -> None:
    emb = HashingEmbedder(max_tokens=50)
    chunker = Chunker(ChunkSettings(max_tokens=40, overlap_tokens=5, min_body_tokens=20), emb, splitter)
    table_row = " ".join(f"cell{i}" for i in range(130))  # one "sentence" of 130 tokens
    doc = _doc(Block(table_row, heading=" ".join(["Very long heading"] * 20)))
    chunks = chunker.chunk(doc)
    assert len(chunks) >= 4
    assert all(emb.count_tokens([c.embedding_text()])[0] <= 48 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == table_row.split()


def test_duplicate_passages_in_one_document_are_kept_once(splitter: SpacySentences) -> None:
    chunker = Chunker(ChunkSettings(max_tokens=40, overlap_tokens=0, min_body_tokens=16), HashingEmbedder(), splitter)
    chunks = chunker.chunk(_doc(Block("Same text here."), Block("Other text."), Block("Same text here.")))
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkSettings(max_tokens=32, overlap_tokens=32)
