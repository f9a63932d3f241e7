"""embed.backend: a bfloat16 run of the bundled model is its own fingerprint, and stays close to float32."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.embed import SentenceTransformerEmbedder, hash_files
from pipeline.settings import EmbedSettings, Settings


def test_float32_fingerprint_is_the_bare_file_hash() -> None:
    emb = SentenceTransformerEmbedder(EmbedSettings())
    assert emb.fingerprint() == hash_files(emb.path)  # indexes built before backends existed still open


def test_backend_changes_fingerprint_and_settings_hash() -> None:
    fp32 = SentenceTransformerEmbedder(EmbedSettings(backend="torch"))
    bf16 = SentenceTransformerEmbedder(EmbedSettings(backend="torch-bf16"))
    assert fp32.fingerprint() != bf16.fingerprint()
    assert Settings(embed={"backend": "torch"}).hash() != Settings(embed={"backend": "torch-bf16"}).hash()


@pytest.mark.slow
def test_bf16_vectors_stay_close_to_float32() -> None:
    texts = [
        "Breast cancer screening with mammography every two years for women aged 50 to 74.",
        "Do only changes in coding regions of MEF2C cause developmental disorders?",
        "Oligoprogressive colorectal cancer: local ablative therapy of the progressing lesions.",
    ]
    a = SentenceTransformerEmbedder(EmbedSettings(backend="torch")).encode(texts)
    b = SentenceTransformerEmbedder(EmbedSettings(backend="torch-bf16")).encode(texts)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.999
