"""Answers as JSON (the shape other tools read), Markdown, and a self-contained HTML page.

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

import html
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


def statement_md(st: Statement) -> str:
    cites = format_citations(st.citations)
    return f"{st.text} {cites}" if cites else st.text


def group_md(section_title: str, group: Group, first: bool) -> str:
    if group.heading is None and first and section_title == GUIDELINES_TITLE:
        return " ".join(statement_md(st) for st in group.items) + "\n"
    head = f"### {group.heading}\n\n" if group.heading else ""
    return head + "".join(f"- {statement_md(st)}\n" for st in group.items)


def reference_md(r: Reference) -> str:
    where = ", ".join(x for x in (r.source, str(r.year) if r.year else "") if x)
    bits = [f"{r.n}. {r.title}" + (f". {where}" if where else "")]
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
    return ". ".join(bits) + "\n"


def tail_md(answer: Answer) -> str:
    out = ["\n## References\n\n"]
    out.extend(reference_md(r) for r in answer.references)
    if not answer.references:
        out.append("No sources were cited.\n")
    out.append(f"\n> {answer.disclaimer}\n")
    if answer.follow_ups:
        out.append("\n**Follow-up questions**\n\n")
        out.extend(f"- {q}\n" for q in answer.follow_ups)
    return "".join(out)


def to_markdown(answer: Answer) -> str:
    out = [f"# {answer.question}\n"]
    for s in answer.sections:
        out.append(f"\n## {s.title}\n\n")
        for i, g in enumerate(s.groups):
            out.append(("\n" if i else "") + group_md(s.title, g, i == 0))
    out.append(tail_md(answer))
    return "".join(out)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#1d2330}
h1{font-size:1.4rem}h2{font-size:1.15rem;border-bottom:1px solid #dde;padding-bottom:.2rem;margin-top:1.6rem}
h3{font-size:1rem;margin-bottom:.3rem}.cite{font-size:.8em;vertical-align:super}
.cite a{text-decoration:none;color:#1a5fb4}.ref{margin:.4rem 0}
.passage{font-size:.85em;color:#445;margin:.2rem 0 .2rem 1rem}
.disclaimer{background:#f6f6f9;border-left:3px solid #99a;padding:.6rem .8rem;font-size:.9em}
.abstain{color:#666;font-style:italic}
.meta{font-size:.75em;color:#889}
"""


def _cites_html(st: Statement, refs: dict[int, Reference]) -> str:
    if not st.citations:
        return ""
    links = []
    for n in st.citations:
        r = refs.get(n)
        tip = f"{r.title} — {r.passages[0].text[:300]}" if r and r.passages else (r.title if r else "")
        links.append(f'<a href="#ref-{n}" title="{html.escape(tip, quote=True)}">{n}</a>')
    return f' <span class="cite">[{", ".join(links)}]</span>'


def to_html(answer: Answer) -> str:
    """A self-contained page; every piece of document or model text is escaped."""
    e = html.escape
    refs = {r.n: r for r in answer.references}
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(answer.question)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(answer.question)}</h1>",
    ]
    for s in answer.sections:
        out.append(f"<section><h2>{e(s.title)}</h2>")
        for i, g in enumerate(s.groups):
            if s.abstained:
                out.append(f'<p class="abstain">{e(g.items[0].text)}</p>')
            elif g.heading is None and i == 0 and s.title == GUIDELINES_TITLE:
                out.append("<p>" + " ".join(e(st.text) + _cites_html(st, refs) for st in g.items) + "</p>")
            else:
                if g.heading:
                    out.append(f"<h3>{e(g.heading)}</h3>")
                out.append(
                    "<ul>" + "".join(f"<li>{e(st.text)}{_cites_html(st, refs)}</li>" for st in g.items) + "</ul>"
                )
        out.append("</section>")
    out.append("<section><h2>References</h2>")
    for r in answer.references:
        where = ", ".join(x for x in (r.source, str(r.year) if r.year else "") if x)
        link = (
            f' <a href="{e(r.url, quote=True)}">{e(r.url)}</a>'
            if r.url and r.url.startswith(("https://", "http://"))
            else ""
        )
        out.append(
            f'<div class="ref" id="ref-{r.n}"><b>{r.n}.</b> {e(r.title)}'
            + (f". {e(where)}" if where else "")
            + f". {e(r.id)}{link}"
        )
        for p in r.passages:
            page = f"p. {p.page}: " if p.page else ""
            out.append(f'<div class="passage">{e(page)}{e(p.text)}</div>')
        out.append("</div>")
    out.append(f'</section><p class="disclaimer">{e(answer.disclaimer)}</p>')
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
    out.append(f'<p class="meta">{e(meta)}</p>')
    out.append("</body></html>\n")
    return "".join(out)


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
                    out += f"### {event.heading}\n\n"
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
