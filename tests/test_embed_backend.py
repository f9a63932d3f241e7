"""embed.backend: a bfloat16 run of the bundled model is its own fingerprint, and stays close to float32.
embed.runtime: ONNX Runtime gives torch's vectors, falls back to torch where it cannot, exports once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline import embed
from pipeline.embed import SentenceTransformerEmbedder, bundled_model_path, hash_files
from pipeline.errors import InputError
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


# ---------------------------------------------------------------------------- embed.runtime: ONNX Runtime


def test_runtimes_share_fingerprint_and_hashes() -> None:
    """ONNX Runtime and torch give the same vectors, so an index built by either is searched by the other."""
    onnx = SentenceTransformerEmbedder(EmbedSettings(runtime="onnx"))
    torch_ = SentenceTransformerEmbedder(EmbedSettings(runtime="torch"))
    assert onnx.fingerprint() == torch_.fingerprint() == hash_files(onnx.path)
    a, b = Settings(embed={"runtime": "onnx"}), Settings(embed={"runtime": "torch", "cache_dir": "/elsewhere"})
    assert a.hash() == b.hash() and a.index_hash() == b.index_hash()


def _model_copy(tmp_path: Path, pooling: dict[str, object]) -> Path:
    """The bundled model's folder, linked file by file, with another pooling config."""
    src = bundled_model_path()
    dst = tmp_path / "model"
    for p in src.rglob("*"):
        if p.is_file():
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(src)).symlink_to(p)
    cfg = dst / "1_Pooling" / "config.json"
    cfg.unlink()
    cfg.write_text(json.dumps(pooling))
    return dst


def test_auto_runs_torch_for_a_model_onnx_cannot_finish(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cls_pooled = {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    path = _model_copy(tmp_path, cls_pooled)
    auto = SentenceTransformerEmbedder(EmbedSettings(path=path, cache_dir=tmp_path / "onnx"))
    with caplog.at_level("WARNING", logger="pipeline.embed"):
        assert auto.runtime == "torch"
    assert "pooling ['pooling_mode_cls_token'], not the mean of the tokens" in caplog.text
    assert not (tmp_path / "onnx").exists()  # nothing exported for it
    explicit = SentenceTransformerEmbedder(EmbedSettings(path=path, runtime="onnx", cache_dir=tmp_path / "onnx"))
    with pytest.raises(InputError, match="embed.runtime is onnx but .* not the mean of the tokens"):
        explicit.encode(["a text"])


def test_bf16_and_torch_runtime_never_export(tmp_path: Path) -> None:
    for settings in (EmbedSettings(backend="torch-bf16", cache_dir=tmp_path), EmbedSettings(runtime="torch")):
        assert SentenceTransformerEmbedder(settings).onnx is None
    assert not any(tmp_path.iterdir())


def test_export_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake_export(model_dir: Path, out: Path) -> Path:
        calls.append(out)
        out.write_bytes(b"onnx")
        return out

    monkeypatch.setattr(embed, "export_onnx", fake_export)
    first = embed.onnx_model(bundled_model_path(), "ab" * 32, tmp_path)
    second = embed.onnx_model(bundled_model_path(), "ab" * 32, tmp_path)
    assert first == second and first.read_bytes() == b"onnx" and len(calls) == 1
    assert first.name.startswith("abababababababab-torch") and calls[0] != first  # written aside, then renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, f"{first.name}.lock"]


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_export(model_dir: Path, out: Path) -> Path:
        out.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(embed, "export_onnx", broken_export)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        embed.onnx_model(bundled_model_path(), "cd" * 32, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_onnx_vectors_are_torch_vectors(tmp_path: Path) -> None:
    texts = [
        "Breast cancer screening with mammography every two years for women aged 50 to 74.",
        "  leading and trailing spaces  ",
        "a very long text " * 120,  # truncated at embed.max_tokens by both
        "5-FU/LV (400 mg/m² IV bolus) plus oxaliplatin 85 mg/m²; KRAS G12C",
        "",
    ]
    onnx = SentenceTransformerEmbedder(EmbedSettings(runtime="onnx", cache_dir=tmp_path))
    torch_ = SentenceTransformerEmbedder(EmbedSettings(runtime="torch"))
    a, b = onnx.encode(texts), torch_.encode(texts)
    assert onnx.runtime == "onnx" and torch_.runtime == "torch" and onnx.dim == torch_.dim == 384
    assert a.dtype == np.float32 and a.shape == b.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.99999
    assert [p.suffix for p in tmp_path.iterdir() if p.suffix == ".onnx"] == [".onnx"]
