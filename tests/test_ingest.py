from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import DocumentError
from pipeline.ingest import ingest, read_file, read_markdown, read_pdf, record_to_document, strip_markdown
from pipeline.types import Document, Skipped
from tests.pdfs import encrypted_pdf, image_only_pdf, text_pdf


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Surgery cures 50% of patients.[[1](#cit/section_1.1)]", "Surgery cures 50% of patients."),
        ("FOLFOX is standard.[[2](#cit/section_2.1),[3](#cit/section_2.1)] Next.", "FOLFOX is standard. Next."),
        ("Range cited.[[4](#cit/section_3.2)-[7](#cit/section_3.2)]", "Range cited."),
        (
            "Better PFS.[[5](#cit/section_4.1)][[Level of evidence B1](/Common/PopUps/popDefinition.aspx?id=1)]",
            "Better PFS.(Level of evidence B1)",
        ),
        ("See [the patient version](/types/colorectal/patient).", "See the patient version."),
        ('Trial X.[[PUBMED Abstract](https://pubmed.ncbi.nlm.nih.gov/123/ "x")]', "Trial X."),
        ("**Bold** and *italic* text", "Bold and italic text"),
        ("![figure](img.png) Caption", "Caption"),
        ("[ FOLFOXIRI (leucovorin [ LV], 5-FU)](/types/rectal-pdq#_1115).", "FOLFOXIRI (leucovorin [ LV], 5-FU)."),
        ('Trial.[[PUBMED Abstract]](http://x/q?cmd=Retrieve&list_uids=1 "http://x")', "Trial."),
        ("See [Table 2](https://en.wikipedia.org/wiki/X_(y)) below.", "See Table 2 below."),
        ("Treatment](/types/colorectal/hp/colon-treatment-pdq); and more", "Treatment; and more"),
        ("summaries on [Colon Cancer", "summaries on Colon Cancer"),
    ],
)
def test_strip_markdown_removes_pdq_markers_and_links(line: str, expected: str) -> None:
    assert strip_markdown(line) == expected


PDQ = """---
title: Colon Cancer Treatment (PDQ®) - NCI
url: https://www.cancer.gov/types/colorectal/hp/colon-treatment-pdq
lastReviewed: '2025-12-30'
source: NCI
license: public_domain
---

# Colon Cancer Treatment (PDQ®) - NCI

## Treatment of Stage IV Colon Cancer

[Go to Patient Version](/types/colorectal/patient/colon-treatment-pdq)

Surgery for isolated liver metastases can cure some patients.[[1](#cit/section_1.1)]

### Systemic therapy

- FOLFOX with bevacizumab.[[2](#cit/section_1.2)]
- FOLFIRI with cetuximab for RAS wild-type tumours.

###### References

1. Smith A, et al.: A trial. J Clin Oncol 12 (3): 1-9, 2001.

## Latest Updates

The summary was updated.
"""


def test_markdown_front_matter_headings_and_dropped_references(write) -> None:  # type: ignore[no-untyped-def]
    doc = read_markdown(write("colon.md", PDQ), "guideline")
    assert doc.title == "Colon Cancer Treatment (PDQ®) - NCI"
    assert (doc.source, doc.year, doc.license) == ("NCI", 2025, "public_domain")
    assert doc.url == "https://www.cancer.gov/types/colorectal/hp/colon-treatment-pdq"
    texts = [(b.heading, b.text) for b in doc.blocks]
    assert texts == [
        ("Treatment of Stage IV Colon Cancer", "Surgery for isolated liver metastases can cure some patients."),
        ("Treatment of Stage IV Colon Cancer > Systemic therapy", "FOLFOX with bevacizumab."),
        ("Treatment of Stage IV Colon Cancer > Systemic therapy", "FOLFIRI with cetuximab for RAS wild-type tumours."),
        ("Latest Updates", "The summary was updated."),
    ]
    assert "Smith A" not in " ".join(t for _, t in texts)  # the reference list is not content


def test_markdown_kind_from_front_matter_overrides_folder(write) -> None:  # type: ignore[no-untyped-def]
    doc = read_markdown(write("paper.md", "---\nkind: research\ntitle: A trial\n---\nBody text."), "guideline")
    assert doc.kind == "research"
    (bad,) = read_file(write("bad.md", "---\nkind: opinion\n---\nBody."), "guideline")
    assert isinstance(bad, Skipped) and "opinion" in bad.reason


def test_pdf_pages_headers_hyphenation_and_headings(tmp_path: Path) -> None:
    pages = [
        ["1 INTRODUCTION", "Migraine is a common disabling pri-", "mary headache disorder in adults."],
        ["2 ACUTE TREATMENT", "Triptans are recommended for acute", "treatment of migraine attacks."],
        ["Aspirin 900 mg is effective in acute migraine."],
    ]
    path = text_pdf(tmp_path / "g.pdf", pages, header="SIGN 155 Migraine guideline", title="Migraine guideline")
    doc = read_pdf(path, "guideline")
    assert doc.title == "Migraine guideline"
    joined = " ".join(b.text for b in doc.blocks)
    assert "primary headache disorder" in joined  # hyphenation repaired
    assert "SIGN 155" not in joined and "Page 1" not in joined  # running header and footers gone
    by_page = {(b.page, b.heading): b.text for b in doc.blocks}
    assert by_page[(1, "1 INTRODUCTION")].startswith("Migraine is a common")
    assert by_page[(2, "2 ACUTE TREATMENT")].startswith("Triptans are recommended")
    assert by_page[(3, "2 ACUTE TREATMENT")] == "Aspirin 900 mg is effective in acute migraine."


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.pdf", lambda p: p.write_bytes(b""), "empty file"),
        (
            "corrupt.pdf",
            lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>> garbage"),
            "corrupt or unreadable PDF",
        ),
        ("encrypted.pdf", encrypted_pdf, "encrypted PDF"),
        ("scanned.pdf", image_only_pdf, "no text layer"),
        ("latin1.txt", lambda p: p.write_bytes("Fran\xe7ois".encode("latin-1")), "not UTF-8 text: byte 0xe7"),
        ("binary.txt", lambda p: p.write_bytes(b"\x7fELF\x00\x00\x01binary"), "binary data"),
        ("slides.pptx", lambda p: p.write_bytes(b"PK\x03\x04"), "unsupported file type .pptx"),
    ],
)
def test_bad_files_become_one_line_skips(tmp_path: Path, name: str, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    make(path)
    items = list(read_file(path, "guideline"))
    assert len(items) == 1 and isinstance(items[0], Skipped)
    assert items[0].path == str(path)
    assert reason in items[0].reason
    assert "\n" not in str(items[0])


def test_truncated_pdf_is_skipped_not_half_read(tmp_path: Path) -> None:
    good = text_pdf(tmp_path / "good.pdf", [["Page one text here."], ["Page two text here."]])
    data = good.read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
    items = list(read_file(tmp_path / "cut.pdf", "research"))
    # pypdf may recover pages from a truncated file; either it reads text or it skips with a reason.
    assert all(isinstance(i, Document | Skipped) for i in items) and len(items) == 1


def test_jsonl_good_rows_read_bad_rows_reported(write) -> None:  # type: ignore[no-untyped-def]
    rows = [
        json.dumps(
            {
                "pmid": "111",
                "title": "Trial A",
                "abstract": "Drug A lowered blood pressure.",
                "journal": "BMJ",
                "year": 2020,
            }
        ),
        "{not json",
        json.dumps({"pmid": "222", "abstract": "No title here."}),
        json.dumps({"title": "No id", "abstract": "Text."}),
        json.dumps({"pmid": "333", "title": "No text"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps(
            {"id": "g1", "kind": "guideline", "title": "Guideline G", "sections": [{"heading": "Rec", "text": "Do X."}]}
        ),
    ]
    path = write("records.jsonl", "\n".join(rows) + "\n")
    result = ingest([(path, "research")], progress=False)
    assert [d.id for d in result.documents] == ["pmid:111", "g1"]
    a, g = result.documents
    assert (a.kind, a.source, a.year, a.url) == ("research", "BMJ", 2020, "https://pubmed.ncbi.nlm.nih.gov/111/")
    assert (g.kind, g.blocks[0].heading) == ("guideline", "Rec")
    reasons = {s.path.rsplit(":", 1)[1]: s.reason for s in result.skipped}
    assert reasons == {
        "2": reasons["2"],
        "3": "missing field 'title'",
        "4": "missing field 'id' (or 'pmid' or 'doi')",
        "5": "missing text: give 'abstract', 'text' or 'sections'",
        "6": "record is a JSON list, not an object",
    }
    assert reasons["2"].startswith("not valid JSON")


def test_record_kind_must_be_known() -> None:
    with pytest.raises(DocumentError, match="kind is 'blog'"):
        record_to_document({"id": "x", "title": "t", "text": "b", "kind": "blog"}, "research", "f.jsonl:1")


def test_ingest_folder_summary_lists_every_skip_and_keeps_going(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write("docs/a.md", "# A guideline\n\nRecommendation one.")
    write("docs/b.txt", "A research note\n\nFinding one.")
    write("docs/empty.md", "")
    write("docs/sub/bad.txt", b"\xff\xfe\x00\x00")
    image_only_pdf(tmp_path / "docs" / "scan.pdf")
    result = ingest([(tmp_path / "docs", "guideline")], progress=False)
    assert sorted(d.id for d in result.documents) == ["a", "b"]
    assert sorted(Path(s.path).name for s in result.skipped) == ["bad.txt", "empty.md", "scan.pdf"]


def test_duplicate_ids_keep_the_first(write) -> None:  # type: ignore[no-untyped-def]
    write("x/one/a.md", "# First\n\nText one.")
    write("x/two/a.md", "# Second\n\nText two.")
    result = ingest([(write("x/one/a.md", "# First\n\nText one.").parent.parent, "guideline")], progress=False)
    assert [d.title for d in result.documents] == ["First"]
    assert "duplicate document id 'a'" in result.skipped[0].reason


def test_missing_source_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file or folder"):
        ingest([(tmp_path / "nope", "guideline")], progress=False)
