"""eval.bench_index's accounting: forward-pass FLOPs, the overlap between chunks, the shares of what is embedded."""

from __future__ import annotations

import pytest

from eval.bench_index import accounting, forward_flops, model_config, overlap_prefix
from pipeline.embed import SentenceTransformerEmbedder
from pipeline.settings import Settings
from pipeline.types import Chunk

TINY = {"num_hidden_layers": 2, "hidden_size": 4, "intermediate_size": 8, "num_attention_heads": 2}


def test_forward_flops_counts_matmuls_per_token_and_attention_per_padded_sequence() -> None:
    # Two texts padded to 3 tokens, 2 layers: 2 x 2 x 2 x (3 x (4 x 16 + 2 x 4 x 8) + 2 x 9 x 4) = 3,648.
    assert forward_flops([[3, 1]], TINY) == 3648
    assert forward_flops([[3], [1]], TINY) < forward_flops([[3, 1]], TINY), "padding costs"
    assert forward_flops([], TINY) == 0


def test_minilm_forward_pass_of_a_200_token_chunk_is_about_4_6_gflop() -> None:
    cfg = model_config(Settings())
    assert cfg == {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12}
    assert forward_flops([[200]], cfg) == pytest.approx(4.615e9, rel=1e-3)


@pytest.mark.parametrize(
    ("prev", "text", "expected"),
    [
        ("A b. C d.", "C d. E f.", len("C d.")),
        ("A b. C d.", "E f. G h.", 0),
        ("A b. C d.", "A b. C d. E f.", len("A b. C d.")),  # all of prev, repeated
        ("A b. C d.", "A b. E f.", 0),  # prev's start is no overlap
        ("One. Two.", "One. Two.", len("One. Two.")),
        ("x ab", "b c", 0),  # "b" ends prev only inside the word "ab"
        ("Lead. Same. Same.", "Same. Same. Next.", len("Same. Same.")),  # the longest repeat
        ("", "A.", 0),
    ],
)
def test_overlap_prefix(prev: str, text: str, expected: int) -> None:
    assert overlap_prefix(prev, text) == expected


def _chunk(text: str, ordinal: int, context: str = "Guideline — Dosing", doc_id: str = "d1") -> Chunk:
    return Chunk(
        id=f"c{ordinal}{doc_id}",
        doc_id=doc_id,
        kind="guideline",
        text=text,
        heading="Dosing",
        page=None,
        page_end=None,
        ordinal=ordinal,
        n_tokens=0,
        context=context,
    )


def test_accounting_shares_of_what_is_embedded() -> None:
    chunks = [
        _chunk("Give aspirin daily. Stop after surgery.", 0),
        _chunk("Stop after surgery. Resume the next day.", 1),
        _chunk("Stop after surgery. Resume the next day.", 0, doc_id="d2"),  # another document: no overlap
    ]
    settings = Settings()
    acc = accounting(chunks, settings)
    count = SentenceTransformerEmbedder(settings.embed).count_tokens
    n = acc["tokens"]
    assert n == [k + 2 for k in count([c.embedding_text() for c in chunks])]  # [CLS] and [SEP]
    assert acc["tokens_total"] == sum(n) and acc["truncated_tokens"] == 0
    assert acc["overlap_tokens"] == count(["Stop after surgery."])[0]  # the second chunk only
    assert acc["context_tokens"] == 3 * count(["Guideline — Dosing"])[0]
    assert acc["context_share"] == pytest.approx(acc["context_tokens"] / sum(n))
    assert acc["special_share"] == pytest.approx(6 / sum(n))
    for route in ("sentence-transformers", "ours"):
        assert acc["padded_tokens"][route] >= acc["tokens_total"]
        assert acc["flops"][route] >= acc["flops"]["unpadded"]
