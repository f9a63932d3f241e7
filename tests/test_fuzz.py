"""Bounded fuzzing of the ingest paths (PDF, JSONL, Markdown front matter, text) with hypothesis.

Seeds are small valid files; hypothesis mutates them (flips, cuts, splices, hostile PDF tokens) and
checks that reading never raises, always yields Documents or one-line Skipped reasons, and stays fast.
CI runs a fixed, derandomized set in well under a minute; a longer random campaign::

    MEDCITE_FUZZ_EXAMPLES=5000 MEDCITE_FUZZ_RANDOM=1 pytest tests/test_fuzz.py

Every input that once crashed is kept in ``tests/regressions/`` and replayed by
:func:`test_regressions_replay`.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import read_file
from pipeline.settings import IngestSettings
from pipeline.types import Document, Skipped
from tests.hostile import many_pages_pdf, object_stream_bomb, one_page_pdf, raw_pdf, text_content

REGRESSIONS = Path(__file__).parent / "regressions"
EXAMPLES = int(os.environ.get("MEDCITE_FUZZ_EXAMPLES", "0"))
RANDOM = os.environ.get("MEDCITE_FUZZ_RANDOM") == "1"
# Small limits keep every example fast: the limits are what is under test, not pypdf's speed.
LIMITS = IngestSettings(max_pdf_stream_bytes=2_000_000, max_pdf_seconds=5, max_record_bytes=200_000)


def fuzz_settings(n: int) -> settings:
    return settings(
        max_examples=EXAMPLES or n,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


def _seeds() -> list[bytes]:
    import tempfile

    from tests.pdfs import text_pdf

    with tempfile.TemporaryDirectory() as d:
        fpdf = text_pdf(Path(d) / "a.pdf", [["1 INTRODUCTION", "Migraine is common."], ["Triptans help."]]).read_bytes()
        pages = many_pages_pdf(Path(d) / "b.pdf", 3).read_bytes()
    return [
        fpdf,
        pages,
        one_page_pdf(text_content(["Aspirin lowers risk.", "Second line."]), flate=True),
        object_stream_bomb(1000),
        raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]),  # a page loop
    ]


SEEDS = _seeds()
TOKENS = [
    b"/Length 999999999", b"/Length -1", b"/N 99999999", b"/First 99999999", b"/Count 99999999", b"/Size 2147483647",
    b"/Filter /FlateDecode", b"/Filter [/FlateDecode /FlateDecode /LZWDecode]", b"/Filter /JBIG2Decode",
    b"/DecodeParms << /Predictor 15 /Columns 99999999 >>", b"<<" * 200, b"[" * 500, b"(" * 300, b"R", b" 0 R",
    b"obj", b"endobj", b"stream\n", b"endstream", b"xref", b"trailer", b"startxref\n0\n", b"%%EOF", b"/Kids [1 0 R]",
    b"/Parent 3 0 R", b"/Encrypt 1 0 R", b"/Type /ObjStm", b"/Type /XRef", b"\x00", b"\xff" * 8,
    zlib.compress(b" " * 3_000_000)[:200],
]  # fmt: skip


@st.composite
def mutated_pdf(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "token", "splice", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        elif op == "token":
            data[at:at] = b" " + draw(st.sampled_from(TOKENS)) + b" "
        elif op == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other) - 1))
            data[at:at] = other[start : start + draw(st.integers(1, 400))]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def _check(items: list[Document | Skipped], path: Path, seconds: float) -> None:
    assert items, "every file gives a Document or a Skipped"
    for item in items:
        assert isinstance(item, Document | Skipped)
        if isinstance(item, Skipped):
            assert item.path.startswith(str(path)) and item.reason and "\n" not in item.reason
        else:
            assert item.blocks and all(b.text.strip() for b in item.blocks)
            assert isinstance(item.title, str) and "\n" not in item.title
            assert all(v is None or isinstance(v, str) for v in (item.url, item.doi, item.pmid))
            json.dumps(item.to_dict(with_blocks=True))  # what the index writes
    assert seconds < 20, f"{path.name} took {seconds:.1f} s"


def _read(path: Path, data: bytes) -> list[Document | Skipped]:
    path.write_bytes(data)
    t0 = time.perf_counter()
    items = list(read_file(path, "guideline", limits=LIMITS))
    _check(items, path, time.perf_counter() - t0)
    return items


@fuzz_settings(150)
@given(data=mutated_pdf())
def test_fuzz_pdf(tmp_path: Path, data: bytes) -> None:
    _read(tmp_path / "f.pdf", data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        k: st.one_of(JSON_VALUES, st.text(max_size=30))
        for k in ("id", "pmid", "doi", "title", "abstract", "text", "kind", "year", "url", "journal", "license")
    }
    | {"sections": st.lists(st.dictionaries(st.sampled_from(["heading", "text"]), JSON_VALUES), max_size=3)},
)
LINES = st.one_of(
    RECORDS.map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        ["[" * 5000, '{"a": ' + "1" * 5000 + "}", "x" * 300_000, "\ufeff{}", "NaN", '{"title": "\\ud800"}']
    ),
)


@fuzz_settings(200)
@given(lines=st.lists(LINES, max_size=6), newline=st.sampled_from(["\n", "\r\n"]))
def test_fuzz_jsonl(tmp_path: Path, lines: list[str], newline: str) -> None:
    path = tmp_path / "f.jsonl"
    items = _read(path, newline.join(lines).encode("utf-8", "surrogatepass"))
    assert len([i for i in items if isinstance(i, Document)]) <= len(lines)


FRONT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "a: &a [1]\nb: &b [*a, *a, *a]\ntitle: *b",
            "title: !!python/object/apply:os.system ['true']",
            "title: " + "[" * 2000,
            "title: {a: 1}\nurl: [x]\npmid: 1e999",
            "? [a, b]\n: c",
            "title: |\n  two\n  lines",
            "kind: research\nyear: 2020-01-01",
        ]
    ),
)


@fuzz_settings(150)
@given(front=FRONT, body=st.text(max_size=200))
def test_fuzz_markdown_front_matter(tmp_path: Path, front: str, body: str) -> None:
    _read(
        tmp_path / "f.md", f"---\n{front}\n---\n\n# Title\n\n{body}\nSome body text.\n".encode("utf-8", "surrogatepass")
    )


@fuzz_settings(100)
@given(data=st.binary(max_size=400))
def test_fuzz_text(tmp_path: Path, data: bytes) -> None:
    _read(tmp_path / "f.txt", data)


REGRESSION_FILES = sorted(p for p in REGRESSIONS.glob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.name for p in REGRESSION_FILES])
def test_regressions_replay(tmp_path: Path, path: Path) -> None:
    """Inputs that once crashed ingest (see tests/regressions/README.md): each now reads or is skipped."""
    _read(tmp_path / f"input{path.suffix}", path.read_bytes())


# --------------------------------------------------------------------------- damaged index folders


@pytest.fixture(scope="module")
def index_folder(tmp_path_factory: pytest.TempPathFactory, splitter) -> Path:  # type: ignore[no-untyped-def]
    from pipeline import Settings, build_index
    from pipeline.types import Block
    from tests.fakes import HashingEmbedder

    docs = [
        Document(id=f"d{i}", kind=kind, title=f"Doc {i}", blocks=(Block(f"Colon cancer {kind} text number {i}."),))
        for i, kind in enumerate(["guideline", "guideline", "research"])
    ]
    path = tmp_path_factory.mktemp("fuzzix") / "ix"
    build_index(
        path,
        documents=docs,
        settings=Settings.preset("test"),
        embedder=HashingEmbedder(),
        splitter=splitter,
        progress=False,
    )
    from pipeline.index import resolve_version

    return resolve_version(path)


@fuzz_settings(120)
@given(data=st.data())
def test_fuzz_index_files(index_folder: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """Any damage to any file of an index folder (hashes not checked) gives IndexLoadError or a working index."""
    import shutil

    from pipeline import open_index
    from pipeline.errors import IndexError_
    from tests.fakes import HashingEmbedder

    folder = tmp_path_factory.mktemp("damaged") / "v"
    shutil.copytree(index_folder, folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    target = folder / data.draw(st.sampled_from(files))
    raw = bytearray(target.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "byte"]))
        if op == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[at:]
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        elif op == "byte" and raw:
            raw[at] = data.draw(st.sampled_from([0, 0x22, 0x5B, 0x7B, 0x39, 0xFF]))
    target.write_bytes(bytes(raw))
    try:
        index = open_index(folder, embedder=HashingEmbedder(), verify=False)
    except IndexError_ as e:
        assert str(e).strip() and "\n" not in str(e)
        return
    try:
        for mode in ("dense", "bm25", "hybrid"):
            hits = index.search("colon cancer text", k=3, mode=mode)
            assert all(h.chunk.doc_id in index.documents for h in hits)
    except IndexError_ as e:  # an edited embedding fingerprint is caught at the first search: IndexMismatchError
        assert "\n" not in str(e)
