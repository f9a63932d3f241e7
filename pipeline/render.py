"""Answers as JSON (the shape other tools read), Markdown, and HTML: a self-contained page, or the fragment a
notebook shows (``Answer._repr_html_``), where each citation number reveals the cited passage on hover or click.

JSON shape::

    {"id", "question", "audience",
     "sections": [{"title", "abstained", "blocks": [{"heading": str | null, "items": [{"text", "citations": [int]}]}]}],
     "references": [{"n", "kind", "title", "source", "year", "id", "url", "passages": [{"chunk_id", "page", "text"}]}],
     "disclaimer", "follow_ups": [str],
     "run": {"generator", "model", "prompt_hash", "settings_hash", "index_id"}, "stats": {...}}

In "From the Guidelines" a first block with no heading is the lead paragraph; every other block is a
list of bullets under its heading.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

from pipeline.cite import format_citations
from pipeline.errors import InputError
from pipeline.types import GUIDELINES_TITLE, Answer, Group, Passage, Reference, RunInfo, Section, Statement


def to_dict(answer: Answer) -> dict[str, Any]:
    return {
        "id": answer.id,
        "question": answer.question,
        "audience": answer.audience,
        "sections": [
            {
                "title": s.title,
                "abstained": s.abstained,
                "blocks": [
                    {
                        "heading": g.heading,
                        "items": [{"text": st.text, "citations": list(st.citations)} for st in g.items],
                    }
                    for g in s.groups
                ],
            }
            for s in answer.sections
        ],
        "references": [
            {
                "n": r.n,
                "kind": r.kind,
                "title": r.title,
                "source": r.source,
                "year": r.year,
                "id": r.id,
                "url": r.url,
                "doc_id": r.doc_id,
                "passages": [
                    {"chunk_id": p.chunk_id, "page": p.page, "heading": p.heading, "text": p.text} for p in r.passages
                ],
            }
            for r in answer.references
        ],
        "disclaimer": answer.disclaimer,
        "follow_ups": list(answer.follow_ups),
        "run": {
            "generator": answer.run.generator,
            "model": answer.run.model,
            "prompt_hash": answer.run.prompt_hash,
            "settings_hash": answer.run.settings_hash,
            "index_id": answer.run.index_id,
        },
        "stats": dict(answer.stats),
        **({"verification": answer.verification} if answer.verification is not None else {}),
    }


def from_dict(d: dict[str, Any]) -> Answer:
    """An :class:`Answer` from its JSON shape (as written by :func:`to_dict` or another tool)."""
    try:
        sections = tuple(
            Section(
                title=str(s["title"]),
                groups=tuple(
                    Group(
                        b.get("heading"),
                        tuple(
                            Statement(str(i["text"]), tuple(int(c) for c in i.get("citations", []))) for i in b["items"]
                        ),
                    )
                    for b in s["blocks"]
                ),
                abstained=bool(s.get("abstained", False)),
            )
            for s in d["sections"]
        )
        refs = tuple(
            Reference(
                n=int(r["n"]),
                kind=r.get("kind", "research"),
                title=str(r.get("title", "")),
                source=str(r.get("source", "")),
                year=r.get("year"),
                id=str(r.get("id", "")),
                url=r.get("url"),
                doc_id=str(r.get("doc_id", r.get("id", ""))),
                passages=tuple(
                    Passage(
                        str(p.get("chunk_id", "")), p.get("page"), str(p.get("text", "")), str(p.get("heading", ""))
                    )
                    for p in r.get("passages", [])
                ),
            )
            for r in d.get("references", [])
        )
        run = d.get("run") or {}
        return Answer(
            question=str(d["question"]),
            sections=sections,
            references=refs,
            disclaimer=str(d.get("disclaimer", "")),
            follow_ups=tuple(str(q) for q in d.get("follow_ups", [])),
            run=RunInfo(
                *(str(run.get(k, "")) for k in ("generator", "model", "prompt_hash", "settings_hash", "index_id"))
            ),
            audience=str(d.get("audience", "clinician")),
            id=d.get("id"),
            stats=dict(d.get("stats", {})),
            verification=d.get("verification"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"not an answer in medcite's JSON shape ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------- Markdown


_BLOCK_START = re.compile(r"^(?:(#{1,6}(?=\s|$)|>|[-+*](?=\s))|(\d{1,9})([.)])(?=\s))")


def _line(text: str) -> str:
    """Document or model text on one Markdown line, its leading "#", ">" or list marker escaped: no text can
    start a heading, a quote or a list item of its own."""
    return _BLOCK_START.sub(
        lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", " ".join(text.split())
    )


def statement_md(st: Statement) -> str:
    cites = format_citations(st.citations)
    return f"{_line(st.text)} {cites}" if cites else _line(st.text)


def group_md(section_title: str, group: Group, first: bool) -> str:
    if group.heading is None and first and section_title == GUIDELINES_TITLE:
        return " ".join(statement_md(st) for st in group.items) + "\n"
    head = f"### {_line(group.heading)}\n\n" if group.heading else ""
    return head + "".join(f"- {statement_md(st)}\n" for st in group.items)


def reference_md(r: Reference) -> str:
    where = ", ".join(x for x in (r.source, str(r.year) if r.year else "") if x)
    bits = [r.title + (f". {where}" if where else "")]
    if r.id and r.id != r.doc_id:
        bits.append(r.id)
    if r.url:
        bits.append(r.url)
    pages = sorted({p.page for p in r.passages if p.page})
    if pages:
        bits.append("p. " + ", ".join(str(p) for p in pages))
    heads = list(dict.fromkeys(p.heading.rsplit(" > ", 1)[-1] for p in r.passages if p.heading))
    if heads:
        bits.append("§ " + "; ".join(heads[:3]))
    return f"{r.n}. {_line('. '.join(bits))}\n"


def tail_md(answer: Answer) -> str:
    out = ["\n## References\n\n"]
    out.extend(reference_md(r) for r in answer.references)
    if not answer.references:
        out.append("No sources were cited.\n")
    out.append(f"\n> {answer.disclaimer}\n")
    if answer.follow_ups:
        out.append("\n**Follow-up questions**\n\n")
        out.extend(f"- {_line(q)}\n" for q in answer.follow_ups)
    return "".join(out)


def to_markdown(answer: Answer, *, asked: str | None = None) -> str:
    """The answer as Markdown; ``asked`` as in :func:`to_html_fragment` (the rewrite is shown beneath it)."""
    if asked and asked.strip() != answer.question.strip():
        out = [f"# {asked}\n\n*Searched as: {answer.question}*\n"]
    else:
        out = [f"# {answer.question}\n"]
    for s in answer.sections:
        out.append(f"\n## {s.title}\n\n")
        for i, g in enumerate(s.groups):
            out.append(("\n" if i else "") + group_md(s.title, g, i == 0))
    out.append(tail_md(answer))
    return "".join(out)


# --------------------------------------------------------------------------- HTML

_PAGE_CSS = "body{margin:2rem auto;max-width:54rem;padding:0 1rem;background:#fff}"

# Scoped under .medcite so an answer shown in a notebook leaves the notebook's own styles alone.
_CSS = """
.medcite{font:15px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;max-width:52rem}
.medcite h1{font-size:1.35rem;line-height:1.3;margin:.3rem 0 .2rem}
.medcite h2{font-size:1.1rem;border-bottom:1px solid #dde1ea;padding-bottom:.2rem;margin:1.4rem 0 .6rem}
.medcite h3{font-size:.98rem;margin:.8rem 0 .2rem}
.medcite ul{margin:.2rem 0 .6rem;padding-left:1.4rem}.medcite li{margin:.15rem 0}
.medcite .mc-query{color:#4b5568;font-size:.88rem;margin:0 0 .6rem}
.medcite .mc-query b{font-weight:600}
.medcite .mc-cite{font-size:.78em;vertical-align:super;line-height:0;white-space:nowrap;color:#5a6478}
.medcite .mc-ref{position:static}.medcite li,.medcite p{position:relative}
.medcite .mc-ref>a{color:#1a5fb4;text-decoration:none;padding:0 .12em;border-radius:3px;cursor:pointer}
.medcite .mc-ref>a:hover,.medcite .mc-ref>a:focus{background:#dbe7fb;outline:none}
.medcite .mc-pop{display:none;position:absolute;left:0;right:0;top:100%;z-index:20;max-width:40rem;
max-height:20rem;overflow:auto;box-sizing:border-box;margin-top:.1rem;padding:.6rem .75rem;background:#fff;
border:1px solid #c6cddb;border-radius:6px;box-shadow:0 6px 18px rgba(20,30,60,.18);font-size:.82rem;
font-weight:normal;line-height:1.45;color:#1d2330;white-space:normal;text-align:left;vertical-align:baseline}
.medcite .mc-ref:hover>.mc-pop,.medcite .mc-ref:focus-within>.mc-pop,.medcite .mc-ref:target>.mc-pop{display:block}
.medcite .mc-ref:target>a{background:#dbe7fb}
.medcite .mc-pop-title{display:block;font-weight:600;margin-bottom:.15rem}
.medcite .mc-where{display:block;color:#5a6478;font-size:.95em;margin-bottom:.3rem}
.medcite .mc-pass{display:block;border-left:3px solid #c9d6ee;padding:.1rem 0 .1rem .5rem;margin:.35rem 0}
.medcite .mc-page{display:block;color:#5a6478;font-size:.92em;font-weight:600}
.medcite .mc-refitem{margin:.45rem 0}.medcite .mc-refitem a{color:#1a5fb4;overflow-wrap:anywhere}
.medcite details{margin:.15rem 0 0 1.2rem;font-size:.88em;color:#3c4658}
.medcite summary{cursor:pointer;color:#5a6478}
.medcite .mc-passage{margin:.25rem 0 .25rem .2rem;border-left:3px solid #e1e6f0;padding-left:.5rem}
.medcite .mc-disclaimer{background:#f5f6f9;border-left:3px solid #99a3b8;padding:.6rem .8rem;font-size:.88em;
margin-top:1.2rem}
.medcite .mc-abstain{color:#5f6673;font-style:italic}
.medcite .mc-meta{font-size:.74em;color:#7d8596;margin-top:1rem}
"""

POPUP_CHARS = 600  # of each cited passage shown when a citation number is revealed
POPUP_PASSAGES = 3


def _uid(answer: Answer) -> str:
    """A prefix that keeps element ids unique when several answers share one page (a notebook)."""
    raw = answer.id or hashlib.sha256(answer.question.encode()).hexdigest()[:12]
    return "mc-" + (re.sub(r"[^A-Za-z0-9_-]", "", raw)[:24] or "answer")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " …"


def _where(r: Reference) -> str:
    return ", ".join(x for x in (r.source, str(r.year) if r.year else "") if x)


def _popup_html(r: Reference) -> str:
    """What a revealed citation shows: the source's title, and each cited passage with its page and text."""
    e = html.escape
    out = [f'<span class="mc-pop-title">{r.n}. {e(r.title)}</span>']
    where = _where(r)
    ident = r.id if r.id != r.doc_id else ""
    if where or ident:
        out.append(f'<span class="mc-where">{e(" · ".join(x for x in (where, ident) if x))}</span>')
    for p in r.passages[:POPUP_PASSAGES]:
        head = " · ".join(x for x in (f"p. {p.page}" if p.page else "", p.heading.rsplit(" > ", 1)[-1]) if x)
        page = f'<span class="mc-page">{e(head)}</span>' if head else ""
        out.append(f'<span class="mc-pass">{page}{e(_clip(p.text, POPUP_CHARS))}</span>')
    if len(r.passages) > POPUP_PASSAGES:
        out.append(f'<span class="mc-where">and {len(r.passages) - POPUP_PASSAGES} more in the reference list</span>')
    return "".join(out)


class _Cites:
    """Citation markers whose numbers reveal the cited passage on hover, focus (click, tab) or as the URL target."""

    def __init__(self, uid: str, refs: dict[int, Reference]) -> None:
        self.uid = uid
        self.refs = refs
        self.count = 0

    def __call__(self, st: Statement) -> str:
        if not st.citations:
            return ""
        links = []
        for n in st.citations:
            self.count += 1
            cid = f"{self.uid}-c{self.count}"
            r = self.refs.get(n)
            pop = f'<span class="mc-pop" role="tooltip">{_popup_html(r)}</span>' if r else ""
            links.append(f'<span class="mc-ref" id="{cid}"><a href="#{cid}">{n}</a>{pop}</span>')
        return f' <span class="mc-cite">[{", ".join(links)}]</span>'


def to_html_fragment(answer: Answer, *, asked: str | None = None) -> str:
    """The answer as one ``<div class="medcite">`` with its own scoped style: what a notebook shows.

    Every piece of document or model text is escaped. ``asked`` is the question as the user put it, when
    the answer's question is a standalone rewrite of it (a follow-up in a conversation); both are shown.
    """
    e = html.escape
    uid = _uid(answer)
    refs = {r.n: r for r in answer.references}
    cites = _Cites(uid, refs)
    out = [f'<div class="medcite" id="{uid}"><style>{_CSS}</style>']
    if asked and asked.strip() != answer.question.strip():
        out.append(f"<h1>{e(asked)}</h1>")
        out.append(f'<p class="mc-query"><b>Searched as:</b> {e(answer.question)}</p>')
    else:
        out.append(f"<h1>{e(answer.question)}</h1>")
    for s in answer.sections:
        out.append(f"<section><h2>{e(s.title)}</h2>")
        for i, g in enumerate(s.groups):
            if s.abstained:
                out.append(f'<p class="mc-abstain">{e(g.items[0].text)}</p>')
            elif g.heading is None and i == 0 and s.title == GUIDELINES_TITLE:
                out.append("<p>" + " ".join(e(st.text) + cites(st) for st in g.items) + "</p>")
            else:
                if g.heading:
                    out.append(f"<h3>{e(g.heading)}</h3>")
                out.append("<ul>" + "".join(f"<li>{e(st.text)}{cites(st)}</li>" for st in g.items) + "</ul>")
        out.append("</section>")
    out.append("<section><h2>References</h2>")
    for r in answer.references:
        where = _where(r)
        link = (
            f' <a href="{e(r.url, quote=True)}">{e(r.url.split("://", 1)[1].rstrip("/"))}</a>'
            if r.url and r.url.startswith(("https://", "http://"))
            else ""
        )
        bits = [r.title.rstrip(" ."), where, r.id if r.id != r.doc_id else ""]
        out.append(
            f'<div class="mc-refitem" id="{uid}-ref-{r.n}"><b>{r.n}.</b> '
            + ". ".join(e(b) for b in bits if b)
            + "."
            + link
        )
        if r.passages:
            pages = sorted({p.page for p in r.passages if p.page})
            label = f"{len(r.passages)} cited passage" + ("s" if len(r.passages) > 1 else "")
            label += f" (p. {', '.join(str(p) for p in pages)})" if pages else ""
            out.append(f"<details><summary>{e(label)}</summary>")
            for p in r.passages:
                page = f"p. {p.page}: " if p.page else ""
                out.append(f'<div class="mc-passage">{e(page)}{e(p.text)}</div>')
            out.append("</details>")
        out.append("</div>")
    if not answer.references:
        out.append('<p class="mc-abstain">No sources were cited.</p>')
    out.append(f'</section><p class="mc-disclaimer">{e(answer.disclaimer)}</p>')
    if answer.follow_ups:
        out.append(
            "<h2>Follow-up questions</h2><ul>" + "".join(f"<li>{e(q)}</li>" for q in answer.follow_ups) + "</ul>"
        )
    run = answer.run
    meta = " · ".join(
        [
            run.generator,
            run.model,
            f"prompt {run.prompt_hash}",
            f"settings {run.settings_hash}",
            f"index {run.index_id}",
        ]
    )
    out.append(f'<p class="mc-meta">{e(meta)}</p></div>')
    return "".join(out)


def to_html(answer: Answer, *, asked: str | None = None) -> str:
    """A self-contained page (see :func:`to_html_fragment`); every piece of document or model text is escaped."""
    title = asked if asked and asked.strip() != answer.question.strip() else answer.question
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}</style></head><body>"
        f"{to_html_fragment(answer, asked=asked)}</body></html>\n"
    )


class MarkdownStream:
    """Turns :mod:`pipeline.answer` events into Markdown as they arrive (for the terminal).

    The concatenated output equals :func:`to_markdown` of the final answer, less its title line.
    """

    def __init__(self) -> None:
        self._in_lead = False
        self._groups = 0

    def feed(self, event: object) -> str:
        from pipeline.answer import AnswerDone, ItemWritten, SectionDone, SectionStarted

        if isinstance(event, SectionStarted):
            self._groups = 0
            return f"\n## {event.title}\n\n"
        if isinstance(event, ItemWritten):
            out = ""
            if event.first_in_group:
                if self._in_lead:
                    out += "\n"
                    self._in_lead = False
                self._groups += 1
                if self._groups > 1:
                    out += "\n"
                if event.heading is None and event.section == GUIDELINES_TITLE and self._groups == 1:
                    self._in_lead = True
                    return out + statement_md(event.statement)
                if event.heading:
                    out += f"### {_line(event.heading)}\n\n"
            if self._in_lead:
                return " " + statement_md(event.statement)
            return out + f"- {statement_md(event.statement)}\n"
        if isinstance(event, SectionDone):
            if self._in_lead:
                self._in_lead = False
                return "\n"
            return ""
        if isinstance(event, AnswerDone):
            return tail_md(event.answer)
        return ""
