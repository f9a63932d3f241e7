"""Batches of the embedding step: sorted by token count, capped in texts and padded tokens, vectors unchanged."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.embed import MAX_BATCH_TOKENS, SentenceTransformerEmbedder, length_batches


@pytest.mark.parametrize(
    ("lengths", "batch_size", "max_tokens", "expected"),
    [
        ([], 32, 2048, []),
        ([7], 32, 2048, [[0]]),
        ([3, 9, 5], 32, 2048, [[1, 2, 0]]),  # longest first
        ([4, 4, 4, 4, 4], 2, 2048, [[0, 1], [2, 3], [4]]),  # batch_size caps; equal lengths keep input order
        ([10, 10, 10, 10], 32, 30, [[0, 1, 2], [3]]),  # 3 x 10 padded tokens fit 30, 4 x 10 do not
        ([100, 5, 5], 32, 50, [[0], [1, 2]]),  # a text over the budget still gets a batch of its own
        ([5, 40, 6, 41], 32, 100, [[3, 1], [2, 0]]),  # padded to the batch's longest: 3 x 41 > 100
    ],
)
def test_length_batches(lengths: list[int], batch_size: int, max_tokens: int, expected: list[list[int]]) -> None:
    assert length_batches(lengths, batch_size, max_tokens) == expected


def test_length_batches_cover_every_text_once_within_the_caps() -> None:
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(3, 256) for _ in range(rng.randint(0, 300))]
        batch_size, budget = rng.choice([1, 8, 32, 64]), rng.choice([256, 1024, MAX_BATCH_TOKENS])
        batches = length_batches(lengths, batch_size, budget)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert 1 <= len(b) <= batch_size
            assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
        widths = [lengths[b[0]] for b in batches]
        assert widths == sorted(widths, reverse=True), "longest first, so no batch pads to a longer text than needed"


@pytest.mark.slow
def test_encode_in_length_batches_gives_sentence_transformers_vectors_in_input_order() -> None:
    emb = SentenceTransformerEmbedder()
    words = "metastatic colorectal cancer oligoprogression stereotactic radiotherapy 5-fluorouracil q.d. 40 mg".split()
    rng = random.Random(1)
    # Lengths from a few word pieces to past the model's 256-token limit, with duplicates, in no order.
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 220))) for _ in range(40)] + ["Stop.", "Stop."]
    rng.shuffle(texts)
    ours = emb.encode(texts, progress=True)
    theirs = emb.model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), emb.dim)
    assert float(np.min(np.sum(ours * theirs, axis=1))) >= 0.9999
    assert len(length_batches([min(n + 2, emb.max_tokens) for n in emb.count_tokens(texts)], 32)) > 1
