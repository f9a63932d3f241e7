from __future__ import annotations

import json
import os
import shutil

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


COLON = "guidelines/pdq/types-colorectal-hp-colon-treatment-pdq.md"


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """colon PDQ summary (guideline) + the 23 colorectal PubMedQA abstracts (research), built through the CLI."""
    root = tmp_path_factory.mktemp("real")
    (root / "guidelines").mkdir()
    shutil.copy(mirror / COLON, root / "guidelines")
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.corpus import pubmedqa_records

    recs = pubmedqa_records((mirror / "research/pubmedqa/ori_pqal.json").read_bytes())
    recs = [r for r in recs if "colorectal" in r["abstract"].lower() or "colon" in r["title"].lower()][:30]
    assert len(recs) == 23
    (root / "research").mkdir()
    (root / "research" / "pubmedqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "research" / "broken.jsonl").write_text('{"pmid": "1", "abstract": "no title"}\n')
    result = CliRunner().invoke(
        app,
        [
            "index",
            "build",
            "--guidelines",
            str(root / "guidelines"),
            "-r",
            str(root / "research"),
            "--out",
            str(root / "ix"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "24 documents" in result.output
    assert "broken.jsonl:1: missing field 'title'" in result.output
    return root / "ix"
