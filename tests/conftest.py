from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pipeline.chunk import SpacySentences  # noqa: E402
from pipeline.corpus import default_mirror  # noqa: E402
from tests.fakes import HashingEmbedder  # noqa: E402

MIRROR = default_mirror()


@pytest.fixture(scope="session")
def mirror() -> Path:
    if MIRROR is None:
        pytest.skip("no data mirror (../shared/data) on this machine")
    return MIRROR


@pytest.fixture(scope="session")
def splitter() -> SpacySentences:
    return SpacySentences()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from pipeline.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write("a/b.md", "text") -> path under tmp_path."""

    def _write(rel: str, content: str | bytes) -> Path:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    return _write
