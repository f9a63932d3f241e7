"""Answers as Markdown and HTML: a self-contained page, or the fragment a notebook shows (``Answer._repr_html_``),
where each citation number reveals the cited passage on hover or click.

This module stands on the ground floor: it knows an answer by its shape (the protocols below), not by its class,
so that :class:`pipeline.types.Answer` can render itself without an import circle. It owns the section titles,
because they are what a reader sees. The JSON shape lives with the types (:func:`pipeline.types.to_dict`).

In "From the Guidelines" a first block with no heading is the lead paragraph; every other block is a
list of bullets under its heading.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from typing import Protocol

from pipeline.quotes import QuoteFinder, quote_span

GUIDELINES_TITLE = "From the Guidelines"
RESEARCH_TITLE = "From the Research"
SECTION_TITLES: dict[str, str] = {"guideline": GUIDELINES_TITLE, "research": RESEARCH_TITLE}


# --------------------------------------------------------------------------- what an answer looks like


class StatementView(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def citations(self) -> tuple[int, ...]: ...
    @property
    def quote(self) -> str: ...


class GroupView(Protocol):
    @property
    def heading(self) -> str | None: ...
    @property
    def items(self) -> Sequence[StatementView]: ...


class SectionView(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def groups(self) -> Sequence[GroupView]: ...
    @property
    def abstained(self) -> bool: ...


class PassageView(Protocol):
    @property
    def page(self) -> int | None: ...
    @property
    def text(self) -> str: ...
    @property
    def heading(self) -> str: ...


class ReferenceView(Protocol):
    @property
    def n(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def year(self) -> int | None: ...
    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def doc_id(self) -> str: ...
    @property
    def passages(self) -> Sequence[PassageView]: ...


class RunView(Protocol):
    @property
    def generator(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def prompt_hash(self) -> str: ...
    @property
    def settings_hash(self) -> str: ...
    @property
    def index_id(self) -> str: ...


class AnswerView(Protocol):
    @property
    def id(self) -> str | None: ...
    @property
    def question(self) -> str: ...
    @property
    def sections(self) -> Sequence[SectionView]: ...
    @property
    def references(self) -> Sequence[ReferenceView]: ...
    @property
    def disclaimer(self) -> str: ...
    @property
    def follow_ups(self) -> Sequence[str]: ...
    @property
    def run(self) -> RunView: ...


def where_line(source: str, year: int | None) -> str:
    """ "organisation or journal, year", either part left out when unknown."""
    return ", ".join(x for x in (source, str(year) if year else "") if x)


def source_header(title: str, source: str, year: int | None) -> str:
    """ "Title (organisation or journal, year)": how a source is named to a generator and a judge."""
    where = where_line(source, year)
    return title + (f" ({where})" if where else "")


def format_citations(numbers: Sequence[int]) -> str:
    """``[1]``, ``[1, 2]``; empty for no numbers."""
    return f"[{', '.join(str(n) for n in numbers)}]" if numbers else ""


# --------------------------------------------------------------------------- Markdown


_BLOCK_START = re.compile(r"^(?:(#{1,6}(?=\s|$)|>|[-+*](?=\s))|(\d{1,9})([.)])(?=\s))")


def markdown_line(text: str) -> str:
    """Document or model text on one Markdown line, its leading "#", ">" or list marker escaped: no text can
    start a heading, a quote or a list item of its own."""
    return _BLOCK_START.sub(
        lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", " ".join(text.split())
    )


def statement_md(st: StatementView) -> str:
    cites = format_citations(st.citations)
    return f"{markdown_line(st.text)} {cites}" if cites else markdown_line(st.text)


def group_md(section_title: str, group: GroupView, first: bool) -> str:
    if group.heading is None and first and section_title == GUIDELINES_TITLE:
        return " ".join(statement_md(st) for st in group.items) + "\n"
    head = f"### {markdown_line(group.heading)}\n\n" if group.heading else ""
    return head + "".join(f"- {statement_md(st)}\n" for st in group.items)


def reference_md(r: ReferenceView) -> str:
    where = _where(r)
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
    return f"{r.n}. {markdown_line('. '.join(bits))}\n"


def quoted_in(st: StatementView, refs: dict[int, ReferenceView]) -> int | None:
    """The number of the reference, of those ``st`` cites, whose passages hold its quote (None: no quote there)."""
    for n in st.citations:
        r = refs.get(n)
        if r is not None and st.quote and QuoteFinder([p.text for p in r.passages]).find(st.quote) is not None:
            return n
    return None


def quotes_md(answer: AnswerView) -> str:
    """The words of the sources the statements restate, one line each under the reference list: ``[n] "..."``."""
    refs = {r.n: r for r in answer.references}
    lines = []
    for s in answer.sections:
        for g in s.groups:
            for st in g.items:
                n = quoted_in(st, refs)
                if n is not None:
                    line = markdown_line(f'[{n}] "{st.quote}"')
                    lines.append(f"- {line}\n")
    return "\n**Quoted from the sources**\n\n" + "".join(dict.fromkeys(lines)) if lines else ""


def tail_md(answer: AnswerView) -> str:
    out = ["\n## References\n\n"]
    out.extend(reference_md(r) for r in answer.references)
    if not answer.references:
        out.append("No sources were cited.\n")
    out.append(quotes_md(answer))
    out.append(f"\n> {markdown_line(answer.disclaimer)}\n")
    if answer.follow_ups:
        out.append("\n**Follow-up questions**\n\n")
        out.extend(f"- {markdown_line(q)}\n" for q in answer.follow_ups)
    return "".join(out)


def to_markdown(answer: AnswerView, *, asked: str | None = None) -> str:
    """The answer as Markdown; ``asked`` as in :func:`to_html_fragment` (the rewrite is shown beneath it)."""
    if asked and asked.strip() != answer.question.strip():
        out = [f"# {' '.join(asked.split())}\n\n*Searched as: {markdown_line(answer.question)}*\n"]
    else:
        out = [f"# {' '.join(answer.question.split())}\n"]
    for s in answer.sections:
        out.append(f"\n## {s.title}\n\n")
        for i, g in enumerate(s.groups):
            out.append(("\n" if i else "") + group_md(s.title, g, i == 0))
    out.append(tail_md(answer))
    return "".join(out)


# --------------------------------------------------------------------------- HTML

# The column of a whole answer page (:func:`to_html`). A class, not ``body``: a web app can serve
# :func:`stylesheet` beside its own and keep its own page layout.
_PAGE_CSS = ".mc-page{margin:2rem auto;max-width:54rem;padding:0 1rem}"

# Scoped under .medcite so an answer shown in a notebook leaves the notebook's own styles alone. Every text colour
# keeps WCAG AA contrast (4.5:1) on the white page and on the tinted boxes it is used on: the lightest grey,
# #5f6673, has 5.8:1 on white (.mc-meta's #7d8596 had 3.7:1).
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
.medcite mark{background:#fff1a8;color:inherit;padding:0 .05em}
.medcite .mc-meta{font-size:.74em;color:#5a6478;margin-top:1rem}
"""


def stylesheet() -> str:
    """All the CSS an answer needs: the page column of :func:`to_html` and the rules scoped under ``.medcite``.

    A page that links this as an external stylesheet (a web app under a Content-Security-Policy that forbids
    inline style) shows answers rendered with ``to_html_fragment(answer, style=False)``. No rule reaches outside
    ``.medcite`` and ``.mc-page``, so it can sit beside the page's own stylesheet.
    """
    return _PAGE_CSS + _CSS


POPUP_CHARS = 600  # of each cited passage shown when a citation number is revealed
POPUP_PASSAGES = 3


def _uid(answer: AnswerView) -> str:
    """A prefix that keeps element ids unique when several answers share one page (a notebook)."""
    raw = answer.id or hashlib.sha256(answer.question.encode()).hexdigest()[:12]
    return "mc-" + (re.sub(r"[^A-Za-z0-9_-]", "", raw)[:24] or "answer")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " …"


def _where(r: ReferenceView) -> str:
    return where_line(r.source, r.year)


def _passage_html(text: str, quote: str) -> str:
    """A passage, escaped and clipped to :data:`POPUP_CHARS`, its ``quote`` (when it holds it) marked and in view."""
    e = html.escape
    span = quote_span(text, quote) if quote else None
    if span is None:
        return e(_clip(text, POPUP_CHARS))
    a, b = span
    lo = max(0, min(a - POPUP_CHARS // 4, len(text) - POPUP_CHARS))
    hi = max(b, lo + POPUP_CHARS)
    before = ("… " if lo else "") + text[lo:a]
    after = text[b:hi] + (" …" if hi < len(text) else "")
    return f"{e(before)}<mark>{e(text[a:b])}</mark>{e(after)}"


def _popup_html(r: ReferenceView, quote: str = "") -> str:
    """What a revealed citation shows: the source's title, and each cited passage with its page and text, the
    statement's ``quote`` marked where the passage holds it."""
    e = html.escape
    out = [f'<span class="mc-pop-title">{r.n}. {e(r.title)}</span>']
    where = _where(r)
    ident = r.id if r.id != r.doc_id else ""
    if where or ident:
        out.append(f'<span class="mc-where">{e(" · ".join(x for x in (where, ident) if x))}</span>')
    for p in r.passages[:POPUP_PASSAGES]:
        head = " · ".join(x for x in (f"p. {p.page}" if p.page else "", p.heading.rsplit(" > ", 1)[-1]) if x)
        page = f'<span class="mc-page">{e(head)}</span>' if head else ""
        out.append(f'<span class="mc-pass">{page}{_passage_html(p.text, quote)}</span>')
    if len(r.passages) > POPUP_PASSAGES:
        out.append(f'<span class="mc-where">and {len(r.passages) - POPUP_PASSAGES} more in the reference list</span>')
    return "".join(out)


class _Cites:
    """Citation markers whose numbers reveal the cited passage on hover, focus (click, tab) or as the URL target.

    The popup is plain content after its link, not an ARIA tooltip: a tooltip is named by its trigger's
    ``aria-describedby`` and holds no structure, and this one holds titles and passages to read and scroll.
    """

    def __init__(self, uid: str, refs: dict[int, ReferenceView]) -> None:
        self.uid = uid
        self.refs = refs
        self.count = 0

    def __call__(self, st: StatementView) -> str:
        if not st.citations:
            return ""
        links = []
        for n in st.citations:
            self.count += 1
            cid = f"{self.uid}-c{self.count}"
            r = self.refs.get(n)
            # tabindex: an open popup that scrolls (a long passage) is the next tab stop after its number, so it
            # can be scrolled from the keyboard; focus within the citation keeps it open.
            pop = f'<span class="mc-pop" tabindex="0">{_popup_html(r, st.quote)}</span>' if r else ""
            links.append(f'<span class="mc-ref" id="{cid}"><a href="#{cid}">{n}</a>{pop}</span>')
        return f' <span class="mc-cite">[{", ".join(links)}]</span>'


def to_html_fragment(answer: AnswerView, *, asked: str | None = None, style: bool = True) -> str:
    """The answer as one ``<div class="medcite">``: what a notebook shows, and what a web page places in its own.

    Every piece of document or model text is escaped. ``asked`` is the question as the user put it, when
    the answer's question is a standalone rewrite of it (a follow-up in a conversation); both are shown.
    ``style=True`` puts the scoped stylesheet inside the div, for a notebook, which has no ``<head>`` to put it
    in; a page that has one leaves it out (``style=False``) and puts :func:`stylesheet` there, inline or linked
    (HTML allows ``<style>`` only in the head).
    """
    e = html.escape
    uid = _uid(answer)
    refs = {r.n: r for r in answer.references}
    cites = _Cites(uid, refs)
    out = [f'<div class="medcite" id="{uid}">' + (f"<style>{_CSS}</style>" if style else "")]
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


def to_html(answer: AnswerView, *, asked: str | None = None) -> str:
    """A self-contained page (see :func:`to_html_fragment`); every piece of document or model text is escaped.

    The stylesheet is in the head and the answer in the page's main landmark, so the page passes the Nu HTML
    checker and axe-core's WCAG 2 AA rules (tests/test_html_valid.py).
    """
    title = asked if asked and asked.strip() != answer.question.strip() else answer.question
    # role="main" on a div: the same landmark as <main>, with a tag the escaping tests allow (tests/hostile.py).
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{stylesheet()}</style></head>"
        f'<body><div class="mc-page" role="main">{to_html_fragment(answer, asked=asked, style=False)}</div>'
        "</body></html>\n"
    )


class StreamEvent(Protocol):
    """An answer event (:mod:`pipeline.types`) that knows which part of a Markdown stream it is."""

    def markdown(self, stream: MarkdownStream) -> str: ...


class MarkdownStream:
    """Turns answer events into Markdown as they arrive (for the terminal).

    The concatenated output equals :func:`to_markdown` of the final answer, less its title line. Each event
    calls back the method for its kind (:meth:`section_started`, :meth:`item_written`, ...).
    """

    def __init__(self) -> None:
        self._in_lead = False
        self._groups = 0

    def feed(self, event: StreamEvent) -> str:
        return event.markdown(self)

    def section_started(self, title: str) -> str:
        self._groups = 0
        return f"\n## {title}\n\n"

    def item_written(self, section: str, heading: str | None, statement: StatementView, first_in_group: bool) -> str:
        out = ""
        if first_in_group:
            if self._in_lead:
                out += "\n"
                self._in_lead = False
            self._groups += 1
            if self._groups > 1:
                out += "\n"
            if heading is None and section == GUIDELINES_TITLE and self._groups == 1:
                self._in_lead = True
                return out + statement_md(statement)
            if heading:
                out += f"### {markdown_line(heading)}\n\n"
        if self._in_lead:
            return " " + statement_md(statement)
        return out + f"- {statement_md(statement)}\n"

    def section_done(self) -> str:
        if self._in_lead:
            self._in_lead = False
            return "\n"
        return ""

    def answer_done(self, answer: AnswerView) -> str:
        return tail_md(answer)
