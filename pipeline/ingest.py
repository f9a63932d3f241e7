"""Read guideline and research files into :class:`~pipeline.types.Document` values.

Formats: PDF (pypdf, page by page), Markdown with YAML front matter (NCI PDQ summaries among them),
plain text, and JSONL records (one document a line). A file that cannot be read becomes a
:class:`~pipeline.types.Skipped` entry with a one-line reason, and the run goes on: a document is
either read whole or not at all, so nothing half-ingested reaches the index.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from pipeline.errors import DocumentError
from pipeline.types import KINDS, Block, Document, Kind, Skipped

log = logging.getLogger(__name__)

# Limits that keep one hostile file from taking the run down; generous for real documents.
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PDF_PAGES = 1500
MAX_RECORD_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Documents read, and everything skipped with its reason."""

    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...] = field(default=())


# --------------------------------------------------------------------------- helpers

_WS = re.compile(r"[ \t\u00a0]+")
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _year(value: object) -> int | None:
    m = _YEAR.search(str(value)) if value is not None else None
    return int(m.group(1)) if m else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "doc"


def _read_text_file(path: Path) -> str:
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(str(path), "empty file")
    if size > MAX_FILE_BYTES:
        raise DocumentError(str(path), f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise DocumentError(str(path), "binary data (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(str(path), f"not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}") from None


def _require_text(path: Path, blocks: list[Block]) -> tuple[Block, ...]:
    blocks = [b for b in blocks if b.text.strip()]
    if not blocks:
        raise DocumentError(str(path), "no text found")
    return tuple(blocks)


# --------------------------------------------------------------------------- PDF

_HEADING_NUMBERED = re.compile(r"^(\d{1,2}(\.\d{1,2}){0,3}\.?)\s+[A-Z][^.!?]{2,90}$")
_HEADING_CAPS = re.compile(r"^[A-Z][A-Z0-9 ,&/()\-–:]{3,80}$")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_PAGE_NO = re.compile(r"^\W*(page\s*)?\d+(\s*(of|/)\s*\d+)?\W*$", re.I)


def _norm_line(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip().lower())


def _repeated_lines(pages: list[list[str]], edge: int = 3) -> set[str]:
    """Normalised lines that open or close at least half of the pages (running headers/footers)."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        edges = {_norm_line(x) for x in lines[:edge] + lines[-edge:] if x.strip()}
        counts.update(edges)
    return {line for line, c in counts.items() if c >= max(2, len(pages) // 2)}


def _is_heading(line: str) -> bool:
    """Numbered ("4.3 Topiramate") or upper-case ("KEY RECOMMENDATIONS") short lines; not reference entries."""
    words = line.split()
    if not 1 <= len(words) <= 14 or line.endswith((".", ",", ";", ":")) or line.count(",") > 1:
        return False
    alpha = sum(1 for w in words if len(w) >= 3 and w.isalpha())
    if _HEADING_NUMBERED.match(line):
        return alpha >= 1
    return alpha >= 2 and bool(_HEADING_CAPS.match(line))


def read_pdf(path: Path, kind: Kind, meta: dict[str, Any] | None = None) -> Document:
    """Read a PDF page by page: repair hyphenation, drop running headers and footers, keep headings."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if path.stat().st_size == 0:
        raise DocumentError(str(path), "empty file")
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                opened = False
            if not opened:
                raise DocumentError(str(path), "encrypted PDF (needs a password); decrypt it first")
        n_pages = len(reader.pages)
        if n_pages > MAX_PDF_PAGES:
            raise DocumentError(str(path), f"{n_pages} pages, over the {MAX_PDF_PAGES}-page limit")
        raw_pages = [(page.extract_text() or "") for page in reader.pages]
        info: dict[str, Any] = dict(reader.metadata or {})
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as e:
        raise DocumentError(str(path), f"corrupt or unreadable PDF ({type(e).__name__}: {str(e)[:120]})") from None
    if not any(p.strip() for p in raw_pages):
        raise DocumentError(
            str(path), f"no text layer on any of {len(raw_pages)} pages (image-only PDF?); OCR it first"
        )

    pages = [[line.rstrip() for line in p.splitlines()] for p in raw_pages]
    repeated = _repeated_lines(pages)
    blocks: list[Block] = []
    heading = ""
    first_line = ""
    para: list[tuple[str, int]] = []

    def flush() -> None:
        if para:
            text = _HYPHEN_BREAK.sub(r"\1\2", "\n".join(t for t, _ in para)).replace("\n", " ")
            blocks.append(Block(text=_clean(text), heading=heading, page=para[0][1]))
            para.clear()

    for page_no, lines in enumerate(pages, start=1):
        kept = [x for x in lines if x.strip() and _norm_line(x) not in repeated and not _PAGE_NO.match(x)]
        for line in kept:
            s = _clean(line)
            first_line = first_line or s
            if _is_heading(s):
                flush()
                heading = s
            else:
                para.append((s, page_no))
        flush()  # paragraphs do not cross pages, so every block has one page

    meta = dict(meta or {})
    title = str(meta.get("title") or info.get("/Title") or first_line or path.stem).strip()
    return Document(
        id=str(meta.get("id") or _slug(path.stem)),
        kind=kind,
        title=title,
        source=str(meta.get("source") or info.get("/Author") or ""),
        year=_year(meta.get("year")) or _year(info.get("/CreationDate")),
        doi=meta.get("doi"),
        url=meta.get("url"),
        license=str(meta.get("license") or ""),
        path=str(path),
        blocks=_require_text(path, blocks),
    )


# --------------------------------------------------------------------------- Markdown

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# NCI PDQ reference markers: [[1](#cit/section_1.1)], [[1](#cit/..),[2](#cit/..)], [[1](#cit/..)-[3](#cit/..)]
_PDQ_CITE = re.compile(r"\[(?:\[\d+\]\(#cit/[^)]*\)[,;\-–\s]*)+\]")
_PDQ_LEVEL = re.compile(r"\[\[(Levels? of evidence[^\]]*)\]\([^)]*\)\]")
_PUBMED_LINK = re.compile(r"\[\[PUBMED Abstract\]\([^)]*\)\]|\[\[PUBMED Abstract\]\]\([^)]*\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
# Link text may hold one level of brackets ("[FOLFOX (leucovorin [LV])](/url)"); the target may hold parentheses.
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
# A link wrapped over two source lines leaves "[Colon Cancer" on one line and "Treatment](/url)" on the next.
_LINK_TAIL = re.compile(r"\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_LINK_HEAD = re.compile(r"(?<![\w\]])\[(?=[^\[\]]*$)")
_EMPH = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")
_SKIP_SECTIONS = {"references", "reference", "bibliography", "changes to this summary", "about this pdq summary"}


def strip_markdown(text: str) -> str:
    """Plain text from one Markdown line: PDQ reference markers, images and links removed."""
    text = _PDQ_CITE.sub("", text)
    text = _PDQ_LEVEL.sub(r"(\1)", text)
    text = _PUBMED_LINK.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _LINK_HEAD.sub("", _LINK_TAIL.sub("", text))
    text = _EMPH.sub(r"\2", text)
    return _clean(text.replace(" ,", ",").replace(" .", "."))


def parse_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise DocumentError(str(path), f"bad YAML front matter ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise DocumentError(str(path), "front matter is not a mapping of keys to values")
    return meta, text[m.end() :]


def _markdown_blocks(body: str) -> tuple[list[Block], str]:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []  # (level, heading) below the title
    title = ""
    skipping_level = 0
    para: list[str] = []

    def heading_text() -> str:
        return " > ".join(h for _, h in path)

    def flush() -> None:
        if para and not skipping_level:
            blocks.append(Block(text=_clean(" ".join(para)), heading=heading_text()))
        para.clear()

    for raw in body.splitlines():
        line = raw.strip()
        m = _MD_HEADING.match(line)
        if m:
            flush()
            level, name = len(m.group(1)), strip_markdown(m.group(2))
            if skipping_level and level > skipping_level:
                continue
            skipping_level = 0
            if name.lower() in _SKIP_SECTIONS:
                skipping_level = level
                continue
            if level == 1:
                title = title or name
                path.clear()
                continue
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, name))
            continue
        if skipping_level:
            continue
        if not line:
            flush()
            continue
        text = strip_markdown(line)
        if not text or (line.startswith("[") and line.endswith(")") and _LINK.fullmatch(line)):
            continue  # link-only lines ("Go to Patient Version") carry no content
        if line.startswith(("- ", "* ", "+ ")) or re.match(r"^\d+\.\s", line) or line.startswith("|"):
            flush()
            para.append(text.lstrip("-*+ ").strip() if not line.startswith("|") else text)
            flush()
        else:
            para.append(text)
    flush()
    return blocks, title


def read_markdown(path: Path, kind: Kind, meta: dict[str, Any] | None = None) -> Document:
    """Read Markdown with optional YAML front matter (title, url, lastReviewed, source, license, kind)."""
    front, body = parse_front_matter(_read_text_file(path), path)
    front = {**front, **(meta or {})}
    blocks, h1 = _markdown_blocks(body)
    doc_kind = _kind(front.get("kind", kind), path)
    title = str(front.get("title") or h1 or path.stem).strip()
    return Document(
        id=str(front.get("id") or _slug(path.stem)),
        kind=doc_kind,
        title=title,
        source=str(front.get("organisation") or front.get("organization") or front.get("source") or ""),
        year=_year(front.get("year") or front.get("lastReviewed") or front.get("date")),
        pmid=str(front["pmid"]) if front.get("pmid") else None,
        doi=front.get("doi"),
        url=front.get("url"),
        license=str(front.get("license") or ""),
        path=str(path),
        blocks=_require_text(path, blocks),
    )


def read_text(path: Path, kind: Kind, meta: dict[str, Any] | None = None) -> Document:
    """Read a plain-text file; paragraphs are separated by blank lines, the first line is the title."""
    text = _read_text_file(path)
    paras = [_clean(p.replace("\n", " ")) for p in re.split(r"\n\s*\n", text)]
    paras = [p for p in paras if p]
    meta = meta or {}
    title = str(meta.get("title") or (paras[0][:200] if paras else path.stem))
    return Document(
        id=str(meta.get("id") or _slug(path.stem)),
        kind=kind,
        title=title,
        source=str(meta.get("source") or ""),
        year=_year(meta.get("year")),
        url=meta.get("url"),
        license=str(meta.get("license") or ""),
        path=str(path),
        blocks=_require_text(path, [Block(text=p) for p in paras]),
    )


# --------------------------------------------------------------------------- JSONL records


def _kind(value: object, where: Path | str) -> Kind:
    if value not in KINDS:
        raise DocumentError(str(where), f"kind is {value!r}; it must be one of {list(KINDS)}")
    return value


def record_to_document(rec: dict[str, Any], kind: Kind, where: str) -> Document:
    """One JSONL record -> Document.

    Fields: ``title`` (required); text as ``abstract``, ``text`` or ``sections`` (a list of
    ``{"heading", "text"}``; at least one); ``id`` or ``pmid`` or ``doi`` (one required); optional
    ``kind``, ``journal``/``source``/``organisation``, ``year``, ``url``, ``license``.
    """
    if not isinstance(rec, dict):
        raise DocumentError(where, f"record is a JSON {type(rec).__name__}, not an object")
    title = rec.get("title")
    if not isinstance(title, str) or not title.strip():
        raise DocumentError(where, "missing field 'title'")
    blocks: list[Block] = []
    sections = rec.get("sections")
    if sections is not None:
        if not isinstance(sections, list):
            raise DocumentError(where, "field 'sections' must be a list of {heading, text}")
        for s in sections:
            if not isinstance(s, dict) or not isinstance(s.get("text"), str):
                raise DocumentError(where, "each entry of 'sections' needs a string 'text'")
            blocks.append(Block(text=_clean(s["text"]), heading=str(s.get("heading") or "")))
    for key in ("abstract", "text"):
        value = rec.get(key)
        if isinstance(value, str) and value.strip():
            blocks.extend(Block(text=_clean(p)) for p in re.split(r"\n\s*\n", value) if p.strip())
    blocks = [b for b in blocks if b.text]
    if not blocks:
        raise DocumentError(where, "missing text: give 'abstract', 'text' or 'sections'")
    pmid = str(rec["pmid"]).strip() if rec.get("pmid") not in (None, "") else None
    doc_id = rec.get("id") or (f"pmid:{pmid}" if pmid else None) or (f"doi:{rec['doi']}" if rec.get("doi") else None)
    if not doc_id:
        raise DocumentError(where, "missing field 'id' (or 'pmid' or 'doi')")
    url = rec.get("url") or (f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None)
    return Document(
        id=str(doc_id),
        kind=_kind(rec.get("kind", kind), where),
        title=_clean(title),
        source=str(rec.get("journal") or rec.get("source") or rec.get("organisation") or rec.get("organization") or ""),
        year=_year(rec.get("year")),
        pmid=pmid,
        doi=rec.get("doi"),
        url=url,
        license=str(rec.get("license") or ""),
        path=where,
        blocks=tuple(blocks),
    )


def read_jsonl(path: Path, kind: Kind) -> Iterator[Document | Skipped]:
    """Yield a Document per good line and a Skipped per bad one (the file goes on)."""
    if path.stat().st_size == 0:
        yield Skipped(str(path), "empty file")
        return
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            if len(raw) > MAX_RECORD_BYTES:
                yield Skipped(where, f"line is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte record limit")
                continue
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield Skipped(where, f"not valid JSON ({str(e)[:80]})")
                continue
            try:
                yield record_to_document(rec, kind, where)
            except DocumentError as e:
                yield Skipped(e.path, e.reason)


# --------------------------------------------------------------------------- dispatch

Reader = Callable[[Path, Kind, dict[str, Any] | None], Document]
READERS: dict[str, Reader] = {
    ".pdf": read_pdf,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
}
SUFFIXES = (*READERS, ".jsonl")


def read_file(path: Path, kind: Kind) -> Iterator[Document | Skipped]:
    """Read one file of any supported format; failures come back as Skipped."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from read_jsonl(path, kind)
            return
        reader = READERS.get(suffix)
        if reader is None:
            yield Skipped(str(path), f"unsupported file type {suffix or '(none)'}; medcite reads {', '.join(SUFFIXES)}")
            return
        yield reader(path, kind, None)
    except DocumentError as e:
        yield Skipped(e.path, e.reason)
    except OSError as e:
        yield Skipped(str(path), f"cannot read file ({e.strerror or e})")


def iter_files(root: Path) -> list[Path]:
    """Supported files under a folder (or the file itself), sorted for stable ids and order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DocumentError(str(root), "no such file or folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def ingest(sources: Iterable[tuple[Path, Kind]], *, progress: bool = True) -> IngestResult:
    """Read every file under each (path, kind) source.

    Returns the documents in a stable order and every skipped file or record with its reason.
    Documents whose id repeats an earlier one are skipped, so ids stay unique.
    """
    files = [(f, kind) for root, kind in sources for f in iter_files(Path(root))]
    docs: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path, kind in tqdm(files, desc="ingest", unit="file", disable=not progress):
        for item in read_file(path, kind):
            if isinstance(item, Skipped):
                log.warning("skipped %s", item)
                skipped.append(item)
            elif item.id in seen:
                skipped.append(
                    Skipped(item.path, f"duplicate document id {item.id!r} (first read from {seen[item.id]})")
                )
            else:
                seen[item.id] = item.path
                docs.append(item)
    return IngestResult(tuple(docs), tuple(skipped))
