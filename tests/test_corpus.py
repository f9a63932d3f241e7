from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from pipeline import corpus
from pipeline.errors import ChecksumError, CorpusError, InputError
from pipeline.ingest import ingest
from pipeline.settings import CorpusSettings

RECORDED = Path(__file__).parent / "data" / "efetch_pubmed.xml"
GUIDELINE = b"# Local guideline\n\n## Treatment\n\nOffer local therapy to oligoprogressive sites.\n"


class _Server:
    """A local stand-in for NCBI E-utilities and a file host, serving recorded responses."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.requests.append(self.path)
                url = urlparse(self.path)
                if url.path == "/eutils/efetch.fcgi":
                    q = parse_qs(url.query)
                    assert q["db"] == ["pubmed"] and q["retmode"] == ["xml"]
                    self._send(200, RECORDED.read_bytes())
                elif url.path == "/files/guideline.md":
                    self._send(200, GUIDELINE)
                else:
                    self._send(404, b"not found")

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


def _corpus_dir(tmp_path: Path, server_url: str, *, guideline_sha: str | None = None) -> Path:
    d = tmp_path / "corpus"
    (d / "pmids").mkdir(parents=True)
    (d / "pmids" / "tiny.txt").write_text("11111111\n22222222\n33333333\n")
    sha = guideline_sha or hashlib.sha256(GUIDELINE).hexdigest()
    sources = {
        "files": [
            {
                "path": "guidelines/local.md",
                "sha256": sha,
                "bytes": len(GUIDELINE),
                "url": f"{server_url}/files/guideline.md",
            },
            {"path": "guidelines/mirror-only.md", "sha256": "0" * 64, "bytes": 1},
            {"path": "research/pubmedqa/ori_pqal.json", "sha256": "0" * 64, "bytes": 1},
        ]
    }
    (d / "sources.json").write_text(json.dumps(sources))
    (d / "tiny.toml").write_text(
        """
name = "tiny"
description = "test corpus"
[[include]]
converter = "copy"
kind = "guideline"
files = ["guidelines/*.md"]
[[include]]
converter = "pubmedqa"
kind = "research"
files = ["research/pubmedqa/ori_pqal.json"]
output = "pubmed.jsonl"
pmids = "pmids/tiny.txt"
"""
    )
    return d


def _settings(tmp_path: Path, server: _Server) -> CorpusSettings:
    return CorpusSettings(data_dir=tmp_path / "out", eutils_url=f"{server.url}/eutils", timeout_s=5)


def test_download_path_uses_eutils_and_checks_sha256(tmp_path: Path, server: _Server) -> None:
    d = _corpus_dir(tmp_path, server.url)
    report = corpus.pull("tiny", settings=_settings(tmp_path, server), download=True, progress=False, corpus_dir=d)
    assert report.origin.startswith("download")
    assert sorted(report.missing) == [
        "guidelines/mirror-only.md: no mirror and no download URL for it; pass --mirror DIR",
        "pmid:33333333: not returned by E-utilities",
    ]
    assert any(
        r.startswith("/eutils/efetch.fcgi?") and "id=11111111%2C22222222%2C33333333" in r for r in server.requests
    )
    root = report.path
    assert (root / "guidelines" / "local.md").read_bytes() == GUIDELINE
    recs = [json.loads(x) for x in (root / "research" / "pubmed.jsonl").read_text().splitlines()]
    assert [r["pmid"] for r in recs] == ["11111111", "22222222"]
    first = recs[0]
    assert first["journal"].startswith("Radiotherapy and oncology") and first["year"] == 2021
    assert first["doi"] == "10.1016/j.example.2021.01.001"
    assert first["abstract"] == (
        "Background: Oligoprogression is progression at a few sites while other disease stays controlled.\n\n"
        "Results: SBRT to progressing sites delayed a change of systemic therapy by a median of 9 months."
    )
    assert recs[1]["year"] == 2019
    assert recs[1]["abstract"] == "Local therapies add to systemic treatment in selected patients."
    lock = json.loads((root / "corpus.lock.json").read_text())
    assert {f["path"] for f in lock["files"]} == {"guidelines/local.md", "research/pubmed.jsonl"}
    assert corpus.verify("tiny", _settings(tmp_path, server)) == []
    # The pulled folders are a valid build input.
    result = ingest([(root / "guidelines", "guideline"), (root / "research", "research")], progress=False)
    assert sorted(doc.id for doc in result.documents) == ["local", "pmid:11111111", "pmid:22222222"]


def test_download_with_wrong_sha256_is_refused(tmp_path: Path, server: _Server) -> None:
    d = _corpus_dir(tmp_path, server.url, guideline_sha="f" * 64)
    with pytest.raises(ChecksumError, match="sha256 is .* the corpus manifest expects ffff"):
        corpus.pull("tiny", settings=_settings(tmp_path, server), download=True, progress=False, corpus_dir=d)
    assert not (tmp_path / "out" / "tiny").exists(), "nothing half-written"


def test_unreachable_eutils_is_a_clear_error(tmp_path: Path, server: _Server) -> None:
    d = _corpus_dir(tmp_path, server.url)
    settings = CorpusSettings(data_dir=tmp_path / "out", eutils_url="http://127.0.0.1:9/eutils", timeout_s=1)
    with pytest.raises(CorpusError, match="127.0.0.1:9/eutils/efetch.fcgi: cannot download"):
        corpus.pull("tiny", settings=settings, download=True, progress=False, corpus_dir=d)


def test_malformed_eutils_answer() -> None:
    with pytest.raises(CorpusError, match="malformed XML"):
        corpus.parse_pubmed_xml(b"<PubmedArticleSet><PubmedArticle>")


def test_unknown_corpus_and_missing_mirror() -> None:
    with pytest.raises(InputError, match=r"unknown corpus 'nope'; choose one of \['bioasq', 'demo', 'full'\]"):
        corpus.load_spec("nope")
    with pytest.raises(InputError, match="unknown corpus"):
        corpus.load_spec("../etc/passwd")
    with pytest.raises(InputError, match="does not exist"):
        corpus.pull("demo", mirror="/no/such/folder", progress=False)


def test_every_named_corpus_manifest_loads_and_matches_sources() -> None:
    sources = corpus.load_sources()
    for name in corpus.list_corpora():
        spec = corpus.load_spec(name)
        for inc in spec.includes:
            assert corpus._select(inc.files, sources), (name, inc.files)
            if inc.pmids:
                assert (corpus.CORPUS_DIR / inc.pmids).is_file()


def test_pull_demo_from_mirror(mirror: Path, tmp_path: Path) -> None:
    settings = CorpusSettings(data_dir=tmp_path / "corpora")
    report = corpus.pull("demo", settings=settings, progress=False)
    assert report.missing == ()
    root = report.path
    assert len(list((root / "guidelines" / "pdq").glob("*.md"))) == 33
    assert (root / "guidelines" / "sign-155-migraine-2023-update-v3.pdf").is_file()
    qa = (root / "research" / "pubmedqa.jsonl").read_text().splitlines()
    assert len(qa) == 1000
    bio = [json.loads(x) for x in (root / "research" / "bioasq.jsonl").read_text().splitlines()]
    pmids = (corpus.CORPUS_DIR / "pmids" / "bioasq-cancer.txt").read_text().split()
    assert [r["pmid"] for r in bio] == pmids
    assert all(r["title"] and r["abstract"] for r in bio)
    assert corpus.verify("demo", settings) == []
    (root / "research" / "pubmedqa.jsonl").write_text("tampered\n")
    assert corpus.verify("demo", settings) == ["research/pubmedqa.jsonl"]


def test_damaged_mirror_file_fails_the_checksum(mirror: Path, tmp_path: Path) -> None:
    fake = tmp_path / "mirror"
    shutil.copytree(mirror / "guidelines", fake / "guidelines")
    (fake / "guidelines" / "pdq" / "types-colorectal-hp-colon-treatment-pdq.md").write_text("edited")
    with pytest.raises(ChecksumError, match="types-colorectal-hp-colon-treatment-pdq.md: sha256 is"):
        corpus.pull("demo", mirror=fake, settings=CorpusSettings(data_dir=tmp_path / "c"), progress=False)


def _snippet(text: str, begin: int, section: str = "abstract") -> dict:
    return {
        "document": "http://www.ncbi.nlm.nih.gov/pubmed/123",
        "text": text,
        "beginSection": section,
        "endSection": section,
        "offsetInBeginSection": begin,
        "offsetInEndSection": begin + len(text),
    }


def test_overlapping_bioasq_snippets_are_joined_by_offset_and_no_sentence_is_stated_twice() -> None:
    abstract = (
        "Adjuvant FOLFOX improves survival in stage III colon cancer (oxaliplatin). "
        "Currently, adjuvant therapy lasts six months. Three months of CAPOX is noninferior."
    )
    cut = abstract.index("urrently")
    late = abstract.index("Three")
    questions = [
        {"body": "q1", "snippets": [_snippet(abstract[:cut], 0), _snippet("Colon trial", 0, "title")]},
        {"body": "q2", "snippets": [_snippet(abstract[40:late], 40)]},
        # the same sentence again, from another version of the abstract (other offsets, inline HTML, spacing)
        {"body": "q3", "snippets": [_snippet("<b>Three</b>  months of CAPOX is noninferior.", 900)]},
    ]
    (rec,) = corpus.bioasq_records([json.dumps({"questions": questions}).encode()])
    assert rec["title"] == "Colon trial"
    assert rec["abstract"].split("\n\n") == [abstract[:late].strip(), "Three months of CAPOX is noninferior."]
    assert "urrently" not in rec["abstract"].replace("Currently", "")


def test_bioasq_snippets_whose_offsets_disagree_with_their_text_are_kept_apart() -> None:
    spans = [(0, 30, "Aspirin lowers colorectal risk."[:30]), (10, 45, "something else entirely, not aspirin.")]
    parts = corpus.merge_spans(spans)
    assert parts == ["Aspirin lowers colorectal risk", "something else entirely, not aspirin."]
