"""Small real PDFs written for the tests (fpdf2), including broken ones."""

from __future__ import annotations

from pathlib import Path


def text_pdf(path: Path, pages: list[list[str]], *, header: str = "", footer: bool = True, title: str = "") -> Path:
    """A PDF with a text layer: one list of lines per page, optional running header and page footer."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=11)
    for n, lines in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            pdf.cell(0, 8, header, new_x="LMARGIN", new_y="NEXT")
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        if footer:
            pdf.set_y(-15)
            pdf.cell(0, 8, f"Page {n} of {len(pages)}")
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = text_pdf(path.with_suffix(".plain.pdf"), [["Secret guideline text that needs a password."]])
    writer = PdfWriter(clone_from=PdfReader(str(plain)))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")
    with path.open("wb") as f:
        writer.write(f)
    plain.unlink()
    return path


def image_only_pdf(path: Path, pages: int = 2) -> Path:
    """Pages with no text layer at all (as a scanned document without OCR)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    with path.open("wb") as f:
        writer.write(f)
    return path
