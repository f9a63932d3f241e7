"""Hostile and broken inputs written for the hardening tests: PDF bombs, huge PDFs, odd files.

Every file is made in a moment from a few bytes of recipe; only small crash inputs are kept, in tests/regressions/.
"""

from __future__ import annotations

import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pipeline.cite import MARKER
from pipeline.render import to_html, to_markdown


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from object bodies (object ``i + 1`` is ``objects[i]``) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def one_page_pdf(content: bytes, *, flate: bool = False) -> bytes:
    """One page whose content stream is ``content`` (Flate-compressed when asked)."""
    stream = _stream(zlib.compress(content, 9), b"/Filter /FlateDecode ") if flate else _stream(content)
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            stream,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def text_content(lines: list[str]) -> bytes:
    ops = [b"BT /F1 11 Tf 72 770 Td 14 TL"]
    ops += [
        b"(" + line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b") '"
        for line in lines
    ]
    ops.append(b"ET")
    return b"\n".join(ops)


def flate_bomb(uncompressed_mb: int = 200) -> bytes:
    """A page whose content stream inflates to ``uncompressed_mb`` MB from about 1/1000 of that."""
    c = zlib.compressobj(9)
    block = b" " * (1 << 20)
    parts = [c.compress(block) for _ in range(uncompressed_mb)]
    data = b"".join(parts) + c.flush()
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            _stream(data, b"/Filter /FlateDecode "),
        ]
    )


def object_stream_bomb(n_declared: int = 50_000_000) -> bytes:
    """An object stream that declares ``n_declared`` objects and a catalog that lives inside it."""
    header = b"1 0 "
    body = b"<< /Type /Catalog /Pages 2 0 R >>"
    objstm = _stream(header + body, b"/Type /ObjStm /N %d /First %d " % (n_declared, len(header)))
    # Object 1 (the catalog) is compressed in object 3: only an xref stream can say so, so build one.
    objs = [b"", b"<< /Type /Pages /Kids [] /Count 0 >>", objstm]
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for i, body_ in enumerate(objs, start=1):
        if i == 1:
            continue
        offsets[i] = len(out)
        out += b"%d 0 obj\n" % i + body_ + b"\nendobj\n"
    xref_at = len(out)
    rows = [b"\x00\x00\x00\x00\xff\xff", b"\x02\x00\x00\x00\x03\x00"]
    rows += [b"\x01" + offsets[i].to_bytes(4, "big") + b"\x00" for i in (2, 3)]
    rows.append(b"\x01" + xref_at.to_bytes(4, "big") + b"\x00")
    data = b"".join(rows)
    out += b"4 0 obj\n" + _stream(data, b"/Type /XRef /Size 5 /W [1 4 1] /Root 1 0 R ") + b"\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _letters(i: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "ba": distinct words per page (digits would look like page numbers)."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
        if not i:
            return out


def many_pages_pdf(path: Path, pages: int) -> Path:
    """``pages`` pages of short text each: a 2,000-page PDF is written in a fraction of a second."""
    font = 3 + 2 * pages
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for i in range(pages):
        kids.append(b"%d 0 R" % (len(objs) + 1))
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (len(objs) + 2, font)
        )
        objs.append(_stream(text_content([f"Recommendation {_letters(i)} concerns {_letters(i * 7919)} in adults."])))
    objs[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % pages
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    assert len(objs) == font
    path.write_bytes(raw_pdf(objs))
    return path


# --------------------------------------------------------------------------- checks on answers


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.extend((k, v or "") for k, v in attrs)


SAFE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "div", "section", "h1", "h2", "h3", "p", "ul", "li", "a", "b",
    "span", "details", "summary", "table", "tr", "td", "th", "svg", "rect", "line", "text", "mark",
}  # fmt: skip


def assert_safe_html(page: str) -> None:
    """Only the renderer's own tags, no event handlers, links only to http(s) or within the page."""
    parser = _Tags()
    parser.feed(page)
    assert parser.tags <= SAFE_TAGS, parser.tags - SAFE_TAGS
    assert not [k for k, _ in parser.attrs if k.startswith("on")]
    assert all(v.startswith(("#", "http://", "https://")) for k, v in parser.attrs if k in ("href", "src"))


def assert_answer_structure(answer: Any, n_refs_max: int) -> None:
    """Two sections, references numbered 1..n, every citation resolves to a reference of its section's kind,
    statements on one line with no marker left, and the same structure in Markdown and safe HTML."""
    assert [s.title for s in answer.sections] == ["From the Guidelines", "From the Research"]
    refs = [r.n for r in answer.references]
    assert refs == list(range(1, len(refs) + 1)) and len(refs) <= n_refs_max
    for section in answer.sections:
        for group in section.groups:
            for st in group.items:
                assert set(st.citations) <= set(refs)
                assert "\n" not in st.text and MARKER.search(st.text) is None, st.text
    by_kind = {r.n: r.kind for r in answer.references}
    for section, kind in zip(answer.sections, ("guideline", "research"), strict=True):
        assert {by_kind[n] for g in section.groups for st in g.items for n in st.citations} <= {kind}
    md = to_markdown(answer)
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## From the Guidelines", "## From the Research", "## References"], md
    assert_safe_html(to_html(answer))
