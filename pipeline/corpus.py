"""Named corpora: manifests in ``corpus/*.toml`` materialised into a git-ignored folder.

``corpus/sources.json`` records the sha256 and size of every third-party file medcite knows, and
the download URL where one exists. A corpus manifest selects files from it and names a converter
for each group. ``pull`` reads each file from the mirror folder (``../shared/data`` beside the
checkout, ``--mirror DIR`` or ``MEDCITE_MIRROR``), checks its sha256, and writes the corpus as
``guidelines/`` and ``research/`` folders that :func:`pipeline.build_index` reads. Where no mirror
exists, PubMed records are fetched by PMID through NCBI E-utilities and files with a URL are
downloaded and checked against the same sha256.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pipeline.errors import ChecksumError, CorpusError, InputError
from pipeline.resources import checkout_root, corpus_dir
from pipeline.settings import CorpusSettings
from pipeline.text import sentences
from pipeline.types import KINDS

log = logging.getLogger(__name__)

CORPUS_DIR = corpus_dir()
_KIND_DIR = {"guideline": "guidelines", "research": "research"}


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True, slots=True)
class Include:
    converter: str
    kind: str
    files: tuple[str, ...]
    output: str | None = None
    ids: tuple[str, ...] = ()
    questions_matching: str | None = None
    pmids: str | None = None


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    name: str
    description: str
    includes: tuple[Include, ...]
    path: Path


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    sha256: str
    bytes: int
    url: str | None = None


def list_corpora(corpus_dir: Path = CORPUS_DIR) -> list[str]:
    return sorted(p.stem for p in corpus_dir.glob("*.toml"))


def load_spec(name: str, corpus_dir: Path = CORPUS_DIR) -> CorpusSpec:
    path = corpus_dir / f"{name}.toml"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not path.is_file():
        raise InputError(f"unknown corpus {name!r}; choose one of {list_corpora(corpus_dir)}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        includes = tuple(
            Include(
                converter=i["converter"],
                kind=i["kind"],
                files=tuple(i["files"]),
                output=i.get("output"),
                ids=tuple(i.get("ids", ())),
                questions_matching=i.get("questions_matching"),
                pmids=i.get("pmids"),
            )
            for i in raw["include"]
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as e:
        raise CorpusError(f"{path}: bad corpus manifest ({type(e).__name__}: {e})") from None
    for inc in includes:
        if inc.converter not in CONVERTERS:
            raise CorpusError(f"{path}: unknown converter {inc.converter!r}; known: {sorted(CONVERTERS)}")
        if inc.kind not in KINDS:
            raise CorpusError(f"{path}: kind {inc.kind!r} must be one of {list(KINDS)}")
    return CorpusSpec(name=raw.get("name", name), description=raw.get("description", ""), includes=includes, path=path)


def load_sources(corpus_dir: Path = CORPUS_DIR) -> dict[str, SourceFile]:
    data = json.loads((corpus_dir / "sources.json").read_text(encoding="utf-8"))
    return {e["path"]: SourceFile(e["path"], e["sha256"], e["bytes"], e.get("url")) for e in data["files"]}


def _select(patterns: tuple[str, ...], sources: dict[str, SourceFile]) -> list[SourceFile]:
    out = [s for p in sorted(sources) for s in [sources[p]] if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    if not out:
        raise CorpusError(f"no known source file matches {list(patterns)} (see corpus/sources.json)")
    return out


def default_mirror(settings: CorpusSettings | None = None) -> Path | None:
    """The mirror folder: settings, ``MEDCITE_MIRROR``, else ``../shared/data`` beside the checkout or the cwd.

    An installed package has no checkout, so there only the working directory's ``../shared/data`` is looked
    for: set ``MEDCITE_MIRROR`` (or pass ``--mirror DIR``) to use a mirror elsewhere. None: no mirror found.
    """
    if settings and settings.mirror:
        return Path(settings.mirror)
    env = os.environ.get("MEDCITE_MIRROR")
    if env:
        return Path(env)
    root = checkout_root()
    beside = [root.parent / "shared" / "data"] if root else []
    for cand in (*beside, Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


# --------------------------------------------------------------------------- fetching bytes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Fetcher:
    """Reads source files from the mirror, or downloads them where there is none."""

    def __init__(self, mirror: Path | None, settings: CorpusSettings, corpus_dir: Path = CORPUS_DIR) -> None:
        self.mirror = mirror
        self.settings = settings
        self.corpus_dir = corpus_dir

    def read(self, src: SourceFile) -> bytes:
        if self.mirror is not None:
            p = self.mirror / src.path
            if not p.is_file():
                raise CorpusError(f"{p}: missing from the mirror {self.mirror}")
            data = p.read_bytes()
            where = str(p)
        elif src.url:
            data = http_get(src.url, timeout=self.settings.timeout_s)
            where = src.url
        else:
            raise CorpusError(f"{src.path}: no mirror and no download URL for it; pass --mirror DIR")
        actual = _sha256(data)
        if actual != src.sha256:
            raise ChecksumError(where, src.sha256, actual)
        return data


def http_get(url: str, *, timeout: float, params: dict[str, str] | None = None, retries: int = 3) -> bytes:
    """GET with retries on 429/5xx; raises CorpusError naming the URL on failure."""
    full = f"{url}?{urllib.parse.urlencode(params)}" if params else url
    req = urllib.request.Request(full, headers={"User-Agent": "medcite (offline-first clinical QA)"})
    for attempt in range(retries):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as e:
            if e.code in (429, 500, 502, 503, 504) and attempt + 1 < retries:
                time.sleep(1.0 * (attempt + 1))
                continue
            raise CorpusError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            if attempt + 1 < retries:
                time.sleep(1.0 * (attempt + 1))
                continue
            raise CorpusError(
                f"{url}: cannot download ({getattr(e, 'reason', e)}); check the network or use --mirror"
            ) from None
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- PubMed E-utilities


def _text(el: ET.Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _labelled(label: object, text: str) -> str:
    return f"{str(label).strip().capitalize()}: {text}" if label and str(label).strip() else text


def parse_pubmed_xml(data: bytes) -> list[dict[str, Any]]:
    """Records from an E-utilities ``efetch`` PubmedArticleSet (title, abstract sections, journal, year, DOI)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise CorpusError(f"E-utilities answered with malformed XML ({e})") from None
    records = []
    for art in root.iter("PubmedArticle"):
        pmid = _text(art.find("MedlineCitation/PMID"))
        a = art.find("MedlineCitation/Article")
        if not pmid or a is None:
            continue
        # Labelled parts stay inline ("Results: ...") so a short abstract packs into one chunk.
        parts = [_labelled(t.get("Label"), _text(t)) for t in a.findall("Abstract/AbstractText") if _text(t)]
        year = (
            _text(a.find("Journal/JournalIssue/PubDate/Year"))
            or _text(a.find("Journal/JournalIssue/PubDate/MedlineDate"))[:4]
        )
        doi = next(
            (_text(x) for x in art.findall("PubmedData/ArticleIdList/ArticleId") if x.get("IdType") == "doi"), None
        )
        records.append(
            {
                "pmid": pmid,
                "title": _text(a.find("ArticleTitle")),
                "journal": _text(a.find("Journal/Title")),
                "year": int(year) if year.isdigit() else None,
                "doi": doi,
                "abstract": "\n\n".join(parts),
                "license": "PubMed abstract (NLM terms)",
            }
        )
    return records


def fetch_pubmed(pmids: list[str], settings: CorpusSettings, *, progress: bool = True) -> Iterator[dict[str, Any]]:
    """PubMed records by PMID through ``efetch``, in batches, at most 3 requests a second (NCBI's rule)."""
    key = os.environ.get("NCBI_API_KEY")
    batches = [pmids[i : i + settings.eutils_batch] for i in range(0, len(pmids), settings.eutils_batch)]
    for batch in tqdm(batches, desc="efetch", unit="batch", disable=not progress):
        params = {"db": "pubmed", "id": ",".join(batch), "retmode": "xml"}
        if key:
            params["api_key"] = key
        t = time.monotonic()
        data = http_get(f"{settings.eutils_url.rstrip('/')}/efetch.fcgi", timeout=settings.timeout_s, params=params)
        yield from parse_pubmed_xml(data)
        time.sleep(max(0.0, (0.11 if key else 0.34) - (time.monotonic() - t)))


# --------------------------------------------------------------------------- converters


@dataclass
class _Out:
    """Files a converter writes, relative to the corpus folder, with the sources they came from."""

    files: dict[str, bytes] = field(default_factory=dict)
    origin: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    # U+2028/2029 are legal in JSON strings but split lines in many readers: escape them.
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _convert_copy(inc: Include, srcs: list[SourceFile], fetch: Fetcher, out: _Out) -> None:
    for s in srcs:
        if fetch.mirror is None and not s.url:
            out.missing.append(f"{s.path}: no mirror and no download URL for it; pass --mirror DIR")
            continue
        data = fetch.read(s)  # checksum and download errors stop the pull: nothing half-written
        rel = f"{_KIND_DIR[inc.kind]}/{Path(*Path(s.path).parts[1:]).as_posix()}"  # drop the mirror's top folder
        out.files[rel] = data
        out.origin[rel] = [{"path": s.path, "sha256": s.sha256}]


_NGC_SKIP = {"Methodology", "Institute of Medicine (IOM) National Healthcare Quality Report Categories", "Disclaimer"}
_NGC_SKIP_FIELDS = {"Guideline Title", "Bibliographic Source(s)", "Guideline Status", "Clinical Algorithm(s)"}


def ngc_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A National Guideline Clearinghouse summary as a medcite guideline record."""
    fields = rec.get("fields") or []
    released = next((f["text"] for f in fields if f.get("field") == "Date Released"), "")
    biblio = next((f["text"] for f in fields if f.get("field") == "Bibliographic Source(s)"), "")
    m = re.search(r"\b(19|20)\d\d\b", released) or re.search(r"\b(19|20)\d\d\b", biblio)
    developer = re.sub(r"\s+-\s+[^-]*$", "", str(rec.get("developer", ""))).strip()
    sections = [
        {"heading": f"{f['section']} > {f['field']}", "text": f["text"]}
        for f in fields
        if f.get("section") not in _NGC_SKIP
        and f.get("field") not in _NGC_SKIP_FIELDS
        and str(f.get("text", "")).strip()
    ]
    return {
        "id": rec["id"],
        "kind": "guideline",
        "title": rec["title"],
        "source": developer or "National Guideline Clearinghouse",
        "year": int(m.group(0)) if m else None,
        "license": rec.get("copyright_statement", ""),
        "sections": sections,
    }


def _convert_ngc(inc: Include, srcs: list[SourceFile], fetch: Fetcher, out: _Out) -> None:
    records: list[dict[str, Any]] = []
    origin = []
    for s in srcs:
        data = fetch.read(s)
        origin.append({"path": s.path, "sha256": s.sha256})
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if not inc.ids or rec.get("id") in inc.ids:
                    records.append(ngc_record(rec))
    rel = f"{_KIND_DIR[inc.kind]}/{inc.output or 'ngc.jsonl'}"
    out.files[rel] = _jsonl(records)
    out.origin[rel] = origin


def pubmedqa_records(data: bytes) -> list[dict[str, Any]]:
    """PubMedQA (ori_pqal.json) entries as research records: labelled abstract sections and conclusion."""
    recs = []
    for pmid, e in json.loads(data).items():
        labels = e.get("LABELS") or [""] * len(e["CONTEXTS"])
        parts = [_labelled(lab, c) for lab, c in zip(labels, e["CONTEXTS"], strict=False)]
        if e.get("LONG_ANSWER"):
            parts.append(_labelled("Conclusions", e["LONG_ANSWER"]))
        recs.append(
            {
                "pmid": str(pmid),
                "title": e["QUESTION"],
                "year": int(e["YEAR"]) if str(e.get("YEAR", "")).isdigit() else None,
                "abstract": "\n\n".join(parts),
                "mesh": e.get("MESHES", []),
                "license": "PubMed abstract via PubMedQA (MIT)",
            }
        )
    return recs


def _pmid(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


_TAG = re.compile(r"</?(?:b|i|u|em|strong|sup|sub|br)\s*/?>", re.I)


def _untag(text: str) -> str:
    """Snippet text without the inline HTML some BioASQ snippets carry ("<b>RESULTS</b>:", "<br>")."""
    return _TAG.sub(lambda m: " " if m.group(0).lower().startswith("<br") else "", text)


def merge_spans(spans: list[tuple[int, int, str]]) -> list[str]:
    """Texts of one abstract's snippets, overlapping snippets joined and no sentence twice.

    ``spans`` are (begin, end, text) offsets into the abstract. Two snippets whose spans overlap are joined when
    their texts agree on the overlap (BioASQ's offsets come from more than one version of some abstracts, and
    there they do not). A snippet whose text is not ``end - begin`` characters long is its own part. Then, in
    text order, a sentence already stated (compared by letters and digits only, so "pain , shock" is "pain,
    shock"), or contained in one already stated, is dropped; a sentence that contains an earlier one replaces it.
    """
    exact = sorted((b, e, t) for b, e, t in spans if e - b == len(t) and e > b)
    merged: list[list[Any]] = []  # [begin, end, text]
    for b, e, t in exact:
        last = merged[-1] if merged else None
        if last is not None and b <= last[1] and last[2][b - last[0] :] == t[: last[1] - b]:
            if e > last[1]:
                last[2] += t[last[1] - b :]
                last[1] = e
        else:
            merged.append([b, e, t])
    parts = [(b, t) for b, _, t in merged]
    parts += [(b, t) for b, e, t in spans if not (e - b == len(t) and e > b)]
    kept: list[list[str]] = []  # sentences of each part
    seen: list[tuple[str, int, int]] = []  # (key, part, sentence) of every sentence kept
    for _, text in sorted(parts, key=lambda x: x[0]):
        kept.append([])
        for sent in sentences(re.sub(r"\s+", " ", _untag(text)).strip()):
            key = re.sub(r"[^a-z0-9]", "", sent.lower())
            if not key or any(key in k for k, _, _ in seen):
                continue
            inside = [i for i, (k, _, _) in enumerate(seen) if k in key]
            if inside:  # the longer sentence takes the place of the first it contains; the others go
                _, part, at = seen[inside[0]]
                kept[part][at] = sent
                seen[inside[0]] = (key, part, at)
                for i in reversed(inside[1:]):
                    _, p2, a2 = seen.pop(i)
                    kept[p2][a2] = ""
                continue
            seen.append((key, len(kept) - 1, len(kept[-1])))
            kept[-1].append(sent)
    return [" ".join(s for s in part if s) for part in kept if any(part)]


def bioasq_records(files: list[bytes], questions_matching: str | None = None) -> list[dict[str, Any]]:
    """BioASQ gold snippets grouped by PMID into research records (title snippet as the title).

    Snippets of one abstract that overlap (several questions often quote the same sentences, cut at different
    places) are joined by their offsets, so no sentence is stated twice or spliced into another.
    """
    pat = re.compile(questions_matching, re.I) if questions_matching else None
    docs: dict[str, dict[str, Any]] = {}
    for data in files:
        for q in json.loads(data)["questions"]:
            if pat and not pat.search(q["body"]):
                continue
            for sn in q.get("snippets", []):
                d = docs.setdefault(_pmid(sn["document"]), {"title": "", "spans": set()})
                if sn.get("beginSection") == "title":
                    d["title"] = d["title"] or re.sub(r"\s+", " ", _untag(sn["text"])).strip()
                elif sn["text"].strip():
                    begin = int(sn.get("offsetInBeginSection") or 0)
                    end = (
                        int(sn.get("offsetInEndSection") or 0) if sn.get("endSection") == sn.get("beginSection") else -1
                    )
                    d["spans"].add((begin, end, sn["text"]))
    recs = []
    for pmid in sorted(docs, key=lambda p: (len(p), p)):
        d = docs[pmid]
        parts = merge_spans(sorted(d["spans"]))
        if not parts and not d["title"]:
            continue
        title = d["title"] or (parts[0][:150] + ("…" if len(parts[0]) > 150 else ""))
        recs.append(
            {
                "pmid": pmid,
                "title": title,
                "abstract": "\n\n".join(parts) or d["title"],
                "license": "PubMed abstract excerpts via BioASQ (research use, attribution)",
            }
        )
    return recs


def _records_by_download(inc: Include, fetch: Fetcher, out: _Out, progress: bool) -> list[dict[str, Any]]:
    if not inc.pmids:
        raise CorpusError(f"converter {inc.converter}: no mirror and no PMID list to download")
    pmids = [x.strip() for x in (fetch.corpus_dir / inc.pmids).read_text().split() if x.strip()]
    records = list(fetch_pubmed(pmids, fetch.settings, progress=progress))
    found = {r["pmid"] for r in records}
    out.missing.extend(f"pmid:{p}: not returned by E-utilities" for p in pmids if p not in found)
    return records


def _convert_pubmedqa(inc: Include, srcs: list[SourceFile], fetch: Fetcher, out: _Out, progress: bool = True) -> None:
    rel = f"{_KIND_DIR[inc.kind]}/{inc.output or 'pubmedqa.jsonl'}"
    if fetch.mirror is None:
        out.files[rel] = _jsonl(_records_by_download(inc, fetch, out, progress))
        out.origin[rel] = [{"path": f"E-utilities efetch of {inc.pmids}", "sha256": ""}]
        return
    records = [r for s in srcs for r in pubmedqa_records(fetch.read(s))]
    out.files[rel] = _jsonl(records)
    out.origin[rel] = [{"path": s.path, "sha256": s.sha256} for s in srcs]


def _convert_bioasq(inc: Include, srcs: list[SourceFile], fetch: Fetcher, out: _Out, progress: bool = True) -> None:
    rel = f"{_KIND_DIR[inc.kind]}/{inc.output or 'bioasq.jsonl'}"
    if fetch.mirror is None:
        out.files[rel] = _jsonl(_records_by_download(inc, fetch, out, progress))
        out.origin[rel] = [{"path": f"E-utilities efetch of {inc.pmids}", "sha256": ""}]
        return
    out.files[rel] = _jsonl(bioasq_records([fetch.read(s) for s in srcs], inc.questions_matching))
    out.origin[rel] = [{"path": s.path, "sha256": s.sha256} for s in srcs]


Converter = Callable[..., None]
CONVERTERS: dict[str, Converter] = {
    "copy": _convert_copy,
    "ngc": _convert_ngc,
    "pubmedqa": _convert_pubmedqa,
    "bioasq": _convert_bioasq,
}


# --------------------------------------------------------------------------- pull


@dataclass(frozen=True, slots=True)
class PullReport:
    name: str
    path: Path
    origin: str
    files: int
    bytes: int
    missing: tuple[str, ...]

    def summary(self) -> str:
        s = f"corpus {self.name}: {self.files} files ({self.bytes / 1e6:.1f} MB) from {self.origin} -> {self.path}"
        if self.missing:
            s += f"\nnot available ({len(self.missing)}):\n" + "\n".join(f"  {m}" for m in self.missing[:50])
            if len(self.missing) > 50:
                s += f"\n  … and {len(self.missing) - 50} more"
        return s


def corpus_path(name: str, settings: CorpusSettings | None = None) -> Path:
    settings = settings or CorpusSettings()
    # A relative data_dir is under the checkout; an installed package has none, so under the working directory.
    base = settings.data_dir if settings.data_dir.is_absolute() else (checkout_root() or Path.cwd()) / settings.data_dir
    return base / name


def corpus_sources(name: str, settings: CorpusSettings | None = None) -> dict[str, Path]:
    """The guideline and research folders of a pulled corpus, for :func:`pipeline.build_index`."""
    root = corpus_path(name, settings)
    if not (root / "corpus.lock.json").is_file():
        raise InputError(f"corpus {name!r} is not pulled yet ({root}); run `medcite corpus pull {name}`")
    return {kind: root / d for kind, d in _KIND_DIR.items() if (root / d).is_dir()}


def index_inputs(name: str, settings: CorpusSettings | None = None) -> dict[str, list[str]]:
    """``guidelines=`` and ``research=`` keyword arguments of :func:`pipeline.build_index` for a pulled corpus."""
    folders = corpus_sources(name, settings)
    return {
        "guidelines": [str(folders["guideline"])] if "guideline" in folders else [],
        "research": [str(folders["research"])] if "research" in folders else [],
    }


def pull(
    name: str,
    *,
    mirror: str | Path | None = None,
    settings: CorpusSettings | None = None,
    download: bool | None = None,
    progress: bool = True,
    corpus_dir: Path = CORPUS_DIR,
) -> PullReport:
    """Materialise corpus ``name`` into ``data/corpora/<name>``, checking every file's sha256.

    Args:
        name: a manifest in ``corpus/`` (``demo``, ``full``, ``bioasq``).
        mirror: folder holding the third-party files; default :func:`default_mirror`.
        settings: corpus settings (data folder, E-utilities address, timeouts).
        download: force the download path (True) or forbid it (False); default: download only without a mirror.
        progress: show progress bars.
        corpus_dir: folder of the manifests and ``sources.json`` (default: the repo's ``corpus/``).
    """
    settings = settings or CorpusSettings()
    spec = load_spec(name, corpus_dir)
    sources = load_sources(corpus_dir)
    mirror_path = Path(mirror) if mirror else (None if download else default_mirror(settings))
    if mirror_path is not None and not mirror_path.is_dir():
        raise InputError(f"mirror folder {mirror_path} does not exist")
    if mirror_path is None and download is False:
        raise InputError("no mirror folder found (../shared/data, --mirror or MEDCITE_MIRROR) and downloads are off")
    fetch = Fetcher(mirror_path, settings, corpus_dir)
    out = _Out()
    for inc in tqdm(spec.includes, desc=f"pull {name}", unit="part", disable=not progress):
        srcs = _select(inc.files, sources)
        conv = CONVERTERS[inc.converter]
        if inc.converter in ("pubmedqa", "bioasq"):
            conv(inc, srcs, fetch, out, progress)
        else:
            conv(inc, srcs, fetch, out)
    if not out.files:
        raise CorpusError(f"corpus {name}: nothing could be materialised:\n" + "\n".join(out.missing[:20]))
    dest = corpus_path(name, settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel, data in out.files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        lock = {
            "name": name,
            "origin": str(mirror_path) if mirror_path else "download",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": [
                {"path": rel, "sha256": _sha256(data), "bytes": len(data), "from": out.origin.get(rel, [])}
                for rel, data in sorted(out.files.items())
            ],
            "missing": out.missing,
        }
        (tmp / "corpus.lock.json").write_text(json.dumps(lock, indent=1) + "\n", encoding="utf-8")
        old = dest.parent / f".{name}.old-{os.getpid()}"
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PullReport(
        name=name,
        path=dest,
        origin=str(mirror_path) if mirror_path else "download (NCBI E-utilities and file URLs)",
        files=len(out.files),
        bytes=sum(len(d) for d in out.files.values()),
        missing=tuple(out.missing),
    )


def verify(name: str, settings: CorpusSettings | None = None) -> list[str]:
    """Files of a pulled corpus whose sha256 no longer matches its lock file (empty: all good)."""
    root = corpus_path(name, settings)
    lock = json.loads((root / "corpus.lock.json").read_text(encoding="utf-8"))
    bad = []
    for f in lock["files"]:
        p = root / f["path"]
        if not p.is_file() or _sha256(p.read_bytes()) != f["sha256"]:
            bad.append(f["path"])
    return bad
