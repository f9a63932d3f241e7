"""Read guideline and research files into :class:`~pipeline.types.Document` values.

Formats: PDF (pypdf, page by page), Markdown with YAML front matter (NCI PDQ summaries among them),
plain text, and JSONL records (one document a line). A file that cannot be read becomes a
:class:`~pipeline.types.Skipped` entry with a one-line reason, and the run goes on: a document is
either read whole or not at all, so nothing half-ingested reaches the index.

Files are untrusted. :class:`~pipeline.settings.IngestSettings` bounds what one file may cost (bytes,
pages, decompressed PDF streams, extraction time, characters, JSONL line length); nothing read is
ever executed (YAML goes through ``safe_load``, pypdf never calls an external decoder), and a symbolic
link that leads out of the corpus folder is not followed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import yaml
from tqdm.auto import tqdm

from pipeline.errors import DocumentError
from pipeline.settings import IngestSettings
from pipeline.types import KINDS, Block, Document, Kind, Skipped

log = logging.getLogger(__name__)

DEFAULT_LIMITS = IngestSettings()
MAX_TITLE_CHARS = 500  # a title or source longer than this is cut: it is metadata, not content


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Documents read, and everything skipped with its reason."""

    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...] = field(default=())


# --------------------------------------------------------------------------- helpers

_WS = re.compile(r"[ \t\u00a0]+")
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
# C0/C1 control characters (terminal escape sequences among them) and the bidi overrides that can make
# text display differently from what it says ("Trojan Source"); newlines and tabs are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _clean(text: str) -> str:
    return _WS.sub(" ", _CONTROL.sub(" ", text)).strip()


def _one_line(text: str, limit: int = 300) -> str:
    """A skip reason on one line (messages from parsers may hold newlines or control characters)."""
    text = _CONTROL.sub("", _LINE_BREAKS.sub(" ", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: object, limit: int = MAX_TITLE_CHARS) -> str:
    """Metadata (a title, a source) on one line, cut to ``limit`` characters."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())[:limit]


def _year(value: object) -> int | None:
    m = _YEAR.search(str(value)) if value is not None else None
    return int(m.group(1)) if m else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "doc"


def _check_size(path: Path, limits: IngestSettings) -> None:
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(str(path), "empty file")
    if size > limits.max_file_bytes:
        raise DocumentError(
            str(path),
            f"file is {size} bytes, over the {limits.max_file_bytes}-byte limit (ingest.max_file_bytes); split it",
        )


def _read_text_file(path: Path, limits: IngestSettings = DEFAULT_LIMITS) -> str:
    _check_size(path, limits)
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DocumentError(str(path), "UTF-16 text; save it as UTF-8")
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


def _pdf_limits(limits: IngestSettings) -> dict[str, Any]:
    """pypdf configuration for one read: every decoder's output capped, no external decoder binary."""
    cap = limits.max_pdf_stream_bytes
    return {
        "maximum_declared_stream_length": cap,
        "array_based_stream_maximum_output_length": cap,
        "zlib_maximum_output_length": cap,
        "lzw_maximum_output_length": cap,
        "run_length_maximum_output_length": cap,
        "brotli_maximum_output_length": cap,
        "jbig2_maximum_output_length": cap,
        "image_maximum_buffer_size": cap,
        "jbig2dec_binary": None,  # never run a program on untrusted input
    }


def _probe_contents(page: Any) -> None:
    """Decode a page's content streams, so a limit tripped there surfaces as LimitReachedError."""
    from pypdf.errors import LimitReachedError

    try:
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
    except LimitReachedError:
        raise
    except Exception:  # noqa: BLE001 - only limits matter here; a page without text stays a page without text
        return


def _pdf_pages(path: Path, limits: IngestSettings) -> tuple[list[str], dict[str, Any]]:
    """Text of each page and the document info, within the limits; DocumentError otherwise."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError

    t0 = time.monotonic()
    try:
        with apply_configuration(**_pdf_limits(limits)):
            reader = PdfReader(str(path))
            if reader.is_encrypted:
                try:
                    opened = bool(reader.decrypt(""))
                except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                    opened = False
                if not opened:
                    raise DocumentError(str(path), "encrypted PDF (needs a password); decrypt it first")
            n_pages = len(reader.pages)
            if n_pages > limits.max_pdf_pages:
                raise DocumentError(
                    str(path),
                    f"{n_pages} pages, over the {limits.max_pdf_pages}-page limit (ingest.max_pdf_pages); split it",
                )
            raw_pages: list[str] = []
            chars = 0
            for i, page in enumerate(reader.pages):
                if time.monotonic() - t0 > limits.max_pdf_seconds:
                    raise DocumentError(
                        str(path),
                        f"text extraction stopped at page {i + 1} of {n_pages}: over the "
                        f"{limits.max_pdf_seconds:g} s limit (ingest.max_pdf_seconds)",
                    )
                text = page.extract_text() or ""
                if not text:
                    _probe_contents(page)  # pypdf's text extraction hides a tripped limit behind ""
                chars += len(text)
                if chars > limits.max_document_chars:
                    raise DocumentError(
                        str(path),
                        f"text passes the {limits.max_document_chars}-character limit at page {i + 1} of {n_pages} "
                        "(ingest.max_document_chars); split it",
                    )
                raw_pages.append(text)
            info: dict[str, Any] = {str(k): v for k, v in dict(reader.metadata or {}).items()}
    except DocumentError:
        raise
    except LimitReachedError as e:
        raise DocumentError(
            str(path),
            f"refused: a pypdf safety limit was reached ({str(e)[:120]}); a decompression bomb or a damaged file",
        ) from None
    except (MemoryError, RecursionError) as e:
        raise DocumentError(
            str(path), f"refused: too large or too deeply nested to parse ({type(e).__name__})"
        ) from None
    except Exception as e:  # noqa: BLE001 - pypdf raises many types on malformed input; the file is skipped
        raise DocumentError(str(path), f"corrupt or unreadable PDF ({type(e).__name__}: {str(e)[:120]})") from None
    return raw_pages, info


def read_pdf(
    path: Path, kind: Kind, meta: dict[str, Any] | None = None, *, limits: IngestSettings = DEFAULT_LIMITS
) -> Document:
    """Read a PDF page by page: repair hyphenation, drop running headers and footers, keep headings.

    Raises:
        DocumentError: empty, encrypted, image-only, corrupt, or over one of ``limits``.
    """
    _check_size(path, limits)
    raw_pages, info = _pdf_pages(path, limits)
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
    title = _short(meta.get("title") or info.get("/Title") or first_line or path.stem) or path.stem
    return Document(
        id=str(meta.get("id") or _slug(path.stem)),
        kind=kind,
        title=title,
        source=_short(meta.get("source") or info.get("/Author") or ""),
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


_SCALARS = (str, int, float, bool, dt.date)


def parse_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """YAML front matter (``safe_load``: no tags, no objects) and the body after it.

    Only single values are kept: a list or mapping (or an alias that expands to one, as in a
    "billion laughs" document) never reaches a field, so nothing can blow up when it is printed.
    """
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise DocumentError(str(path), f"bad YAML front matter ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise DocumentError(str(path), "YAML front matter is nested too deeply") from None
    if not isinstance(meta, dict):
        raise DocumentError(str(path), "front matter is not a mapping of keys to values")
    bad = sorted(str(k) for k, v in meta.items() if v is not None and not isinstance(v, _SCALARS))
    if bad:
        log.debug("%s: front matter fields %s are not single values; ignored", path, bad)
    return {str(k): v for k, v in meta.items() if v is None or isinstance(v, _SCALARS)}, text[m.end() :]


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


def read_markdown(
    path: Path, kind: Kind, meta: dict[str, Any] | None = None, *, limits: IngestSettings = DEFAULT_LIMITS
) -> Document:
    """Read Markdown with optional YAML front matter (title, url, lastReviewed, source, license, kind)."""
    front, body = parse_front_matter(_read_text_file(path, limits), path)
    front = {**front, **(meta or {})}
    blocks, h1 = _markdown_blocks(body)
    doc_kind = _kind(front.get("kind", kind), path)
    title = _short(front.get("title") or h1 or path.stem) or path.stem
    return Document(
        id=str(front.get("id") or _slug(path.stem)),
        kind=doc_kind,
        title=title,
        source=_short(front.get("organisation") or front.get("organization") or front.get("source") or ""),
        year=_year(front.get("year") or front.get("lastReviewed") or front.get("date")),
        pmid=_opt_str(front.get("pmid")),
        doi=_opt_str(front.get("doi")),
        url=_opt_str(front.get("url")),
        license=_short(front.get("license") or ""),
        path=str(path),
        blocks=_require_text(path, blocks),
    )


def read_text(
    path: Path, kind: Kind, meta: dict[str, Any] | None = None, *, limits: IngestSettings = DEFAULT_LIMITS
) -> Document:
    """Read a plain-text file; paragraphs are separated by blank lines, the first line is the title."""
    text = _read_text_file(path, limits)
    paras = [_clean(p.replace("\n", " ")) for p in re.split(r"\n\s*\n", text)]
    paras = [p for p in paras if p]
    meta = meta or {}
    title = _short(meta.get("title") or (paras[0][:200] if paras else path.stem)) or path.stem
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


def _opt_str(value: object) -> str | None:
    """An optional identifier or URL: a string (numbers are written out), or None; never a list or object."""
    if value is None or value == "" or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return _clean(str(value))[:2000] or None


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
            blocks.append(Block(text=_clean(s["text"]), heading=_short(_opt_str(s.get("heading")) or "")))
    for key in ("abstract", "text"):
        value = rec.get(key)
        if isinstance(value, str) and value.strip():
            blocks.extend(Block(text=_clean(p)) for p in re.split(r"\n\s*\n", value) if p.strip())
    blocks = [b for b in blocks if b.text]
    if not blocks:
        raise DocumentError(where, "missing text: give 'abstract', 'text' or 'sections'")
    pmid, doi = _opt_str(rec.get("pmid")), _opt_str(rec.get("doi"))
    doc_id = _opt_str(rec.get("id")) or (f"pmid:{pmid}" if pmid else None) or (f"doi:{doi}" if doi else None)
    if not doc_id:
        raise DocumentError(where, "missing field 'id' (or 'pmid' or 'doi')")
    url = _opt_str(rec.get("url")) or (f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None)
    return Document(
        id=str(doc_id),
        kind=_kind(rec.get("kind", kind), where),
        title=_short(title),
        source=_short(
            _opt_str(rec.get("journal") or rec.get("source") or rec.get("organisation") or rec.get("organization"))
            or ""
        ),
        year=_year(_opt_str(rec.get("year"))),
        pmid=pmid,
        doi=doi,
        url=url,
        license=_short(_opt_str(rec.get("license")) or ""),
        path=where,
        blocks=tuple(blocks),
    )


def _bounded_lines(f: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, line or None when longer than ``limit`` bytes, length): an overlong line is never held whole."""
    lineno = 0
    while raw := f.readline(limit + 1):
        lineno += 1
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield lineno, raw, len(raw.rstrip(b"\r\n"))
            continue
        n = len(raw)
        while not raw.endswith(b"\n") and (raw := f.readline(1 << 20)):
            n += len(raw)
        yield lineno, None, n - (1 if raw.endswith(b"\n") else 0)


def read_jsonl(path: Path, kind: Kind, *, limits: IngestSettings = DEFAULT_LIMITS) -> Iterator[Document | Skipped]:
    """Yield a Document per good line and a Skipped per bad one (the file goes on).

    The file is streamed, so its size is not limited; one line may hold at most ``limits.max_record_bytes``.
    """
    if path.stat().st_size == 0:
        yield Skipped(str(path), "empty file")
        return
    limit = limits.max_record_bytes
    records = 0
    with path.open("rb") as f:
        for lineno, raw, size in _bounded_lines(f, limit):
            where = f"{path}:{lineno}"
            records += raw is None or bool(raw.strip())
            if raw is None:
                yield Skipped(
                    where, f"line is {size} bytes, over the {limit}-byte record limit (ingest.max_record_bytes)"
                )
                continue
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except RecursionError:
                yield Skipped(where, "JSON nested too deeply")
                continue
            except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, and integers past Python's digit limit
                yield Skipped(where, f"not valid JSON ({_one_line(str(e), 80)})")
                continue
            try:
                yield record_to_document(rec, kind, where)
            except DocumentError as e:
                yield Skipped(e.path, e.reason)
    if not records:
        yield Skipped(str(path), "no records: every line is blank")


# --------------------------------------------------------------------------- dispatch


class Reader(Protocol):
    def __call__(
        self, path: Path, kind: Kind, meta: dict[str, Any] | None = None, *, limits: IngestSettings = ...
    ) -> Document: ...


READERS: dict[str, Reader] = {
    ".pdf": read_pdf,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
}
SUFFIXES = (*READERS, ".jsonl")


def read_file(path: Path, kind: Kind, *, limits: IngestSettings = DEFAULT_LIMITS) -> Iterator[Document | Skipped]:
    """Read one file of any supported format; failures come back as Skipped, each with a one-line reason."""
    for item in _read_file(path, kind, limits):
        yield Skipped(item.path, _one_line(item.reason)) if isinstance(item, Skipped) else item


def _read_file(path: Path, kind: Kind, limits: IngestSettings) -> Iterator[Document | Skipped]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from read_jsonl(path, kind, limits=limits)
            return
        reader = READERS.get(suffix)
        if reader is None:
            yield Skipped(str(path), f"unsupported file type {suffix or '(none)'}; medcite reads {', '.join(SUFFIXES)}")
            return
        yield reader(path, kind, None, limits=limits)
    except DocumentError as e:
        yield Skipped(e.path, e.reason)
    except OSError as e:
        yield Skipped(str(path), f"cannot read file ({e.strerror or e})")
    except MemoryError:
        yield Skipped(str(path), "out of memory while reading it; split the file")


def iter_files(root: Path) -> list[Path]:
    """Supported files under a folder (or the file itself), sorted for stable ids and order.

    Hidden files, and anything that is not a regular file (a FIFO, a device), are left out.
    """
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DocumentError(str(root), "no such file or folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _escapes(path: Path, root: Path) -> bool:
    """True when ``path`` is a symbolic link (or under one) that leads out of ``root``."""
    try:
        return root.is_dir() and not path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a link loop
        return True


def ingest(
    sources: Iterable[tuple[Path, Kind]], *, progress: bool = True, limits: IngestSettings = DEFAULT_LIMITS
) -> IngestResult:
    """Read every file under each (path, kind) source.

    Returns the documents in a stable order and every skipped file or record with its reason.
    Documents whose id repeats an earlier one are skipped, so ids stay unique. A symbolic link that
    leads out of its source folder is skipped, so a shared index never holds a file from elsewhere.
    """
    files = [(f, kind, Path(root)) for root, kind in sources for f in iter_files(Path(root))]
    docs: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path, kind, root in tqdm(files, desc="ingest", unit="file", disable=not progress):
        if _escapes(path, root):
            items: Iterable[Document | Skipped] = [
                Skipped(str(path), f"symbolic link to a file outside {root}; copy the file in if it belongs")
            ]
        else:
            items = read_file(path, kind, limits=limits)
        for item in items:
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
