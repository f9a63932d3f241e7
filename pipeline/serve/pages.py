"""The web page's HTML around the answer component (:func:`pipeline.render.to_html_fragment`).

Every text that comes from a user, a document or a model is escaped here or in the renderer. No inline script
or style: the page's behaviour is ``/static/app.js`` and its look ``/static/medcite.css`` (the renderer's
stylesheet and :data:`APP_CSS`), so the Content-Security-Policy can forbid everything else.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote

from pipeline.render import to_html_fragment
from pipeline.serve.store import STATUSES, Review, Saved
from pipeline.types import Answer, from_dict

e = html.escape
MAX_QUESTION = 2000  # characters: longer is not a question but a document

APP_CSS = """
body{margin:0;background:#fff;color:#1d2330;font:15px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif}
.app-head{display:flex;gap:1.5rem;align-items:baseline;padding:.7rem 1.5rem;border-bottom:1px solid #dde1ea}
.app-head .brand{font-weight:700;color:#1d2330;text-decoration:none;font-size:1.1rem}
.app-head nav a{margin-right:1rem;color:#1a5fb4}
.app-main{padding:1rem 1.5rem 3rem;max-width:56rem}
.ask-form textarea{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #8a93a6;
border-radius:4px}
.ask-form{margin-top:1.2rem}
.ask-form fieldset{border:0;padding:0;margin:.6rem 0}
.ask-form legend{font-weight:600;padding:0}
.ask-form label{margin-right:1rem}
.ask-form .row{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}
button,.button{font:inherit;padding:.35rem .9rem;border-radius:4px;border:1px solid #1a5fb4;background:#1a5fb4;
color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1a5fb4}
button:disabled{background:#6b7386;border-color:#6b7386}
.status-line{color:#4b5568;font-size:.9rem;min-height:1.4em}
.turn{border-top:1px solid #dde1ea;margin-top:1.2rem;padding-top:.6rem}
.turn .draft h2{font-size:1.05rem}
.follow-ups{margin:.8rem 0}.follow-ups button{margin:.2rem .4rem .2rem 0;background:#fff;color:#1a5fb4}
.review-box{border:1px solid #dde1ea;border-radius:6px;padding:.6rem .9rem;margin:1rem 0}
.review-box label{display:block;margin:.3rem 0 .1rem;font-weight:600}
.review-box input,.review-box select,.review-box textarea{font:inherit;padding:.25rem;border:1px solid #8a93a6;
border-radius:4px;max-width:100%}
.badge{display:inline-block;padding:0 .5rem;border-radius:9px;font-size:.85rem;border:1px solid #4b5568;color:#1d2330}
.badge.approved{background:#dff3e4;border-color:#1e6b34}.badge.rejected{background:#fbe3e3;border-color:#a12622}
.badge.under-review{background:#fff4d6;border-color:#7a5a00}
table.answers{border-collapse:collapse;width:100%}
table.answers th,table.answers td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde1ea;
vertical-align:top}
.error{color:#a12622;font-weight:600}
.muted{color:#4b5568}
"""


def layout(title: str, body: str) -> str:
    """A whole page: the stylesheet and script linked, the content in ``<main>``."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · medcite</title>"
        '<link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/medcite.css"><script src="/static/app.js" defer></script></head>'
        '<body><header class="app-head"><a class="brand" href="/">medcite</a>'
        '<nav aria-label="Main"><a href="/">Ask</a><a href="/review">Review answers</a></nav></header>'
        f'<main class="app-main" id="main">{body}</main></body></html>\n'
    )


def ask_page(generator: str, verify: bool) -> str:
    """The question box, the audience choice and the place the conversation's answers appear."""
    checked = "Each statement is checked against its sources before it is shown. " if verify else ""
    body = (
        "<h1>Ask the guidelines and the research</h1>"
        f'<p class="muted">Answers are written by <b>{e(generator)}</b> from the indexed guidelines and papers, '
        f"each statement cited. {checked}Every answer is saved for review.</p>"
        # The conversation's answers, then the box for the next question under them.
        '<div id="turns"></div>'
        '<form class="ask-form" id="ask-form" method="post" action="/api/ask">'
        '<label for="question" id="question-label"><b>Your question</b></label>'
        f'<textarea id="question" name="question" rows="3" maxlength="{MAX_QUESTION}" required '
        'placeholder="What is the treatment for oligoprogressive colorectal cancer?"></textarea>'
        "<fieldset><legend>Which best describes you?</legend>"
        '<label><input type="radio" name="audience" value="clinician" checked> Clinician</label>'
        '<label><input type="radio" name="audience" value="patient"> Patient or carer</label></fieldset>'
        '<input type="hidden" name="conversation" id="conversation" value="">'
        '<div class="row"><button type="submit" id="ask-button">Ask</button>'
        '<button type="button" class="secondary" id="new-button" hidden>New conversation</button></div>'
        '<p class="status-line" id="status" role="status" aria-live="polite"></p>'
        '<noscript><p class="error">This page needs JavaScript to stream answers.</p></noscript>'
        "</form>"
    )
    return layout("Ask", body)


def answer_html(answer: Answer, asked: str) -> str:
    """The answer as the notebook shows it (the renderer's component, its style linked by the page), under the
    line that says how its statements were checked when the server runs with ``--verify``."""
    checked = ""
    v = answer.verification
    if v:
        checked = (
            f'<p class="muted verification">Each statement was checked against its cited passages by '
            f"{e(str(v.get('judge', '')))}: {e(str(v.get('checked', 0)))} checked, {len(v.get('removed', []))} "
            f"removed, {len(v.get('marked', []))} marked.</p>"
        )
    return checked + to_html_fragment(answer, asked=asked, style=False)


def _badge(status: str) -> str:
    return f'<span class="badge {e(status.replace(" ", "-"))}">{e(status.capitalize())}</span>'


def review_form(saved: Saved) -> str:
    options = "".join(
        f'<option value="{e(s)}"{" selected" if s == saved.status else ""}>{e(s.capitalize())}</option>'
        for s in STATUSES
    )
    return (
        f'<form class="review-box" method="post" action="/answers/{quote(saved.id)}/review">'
        "<h2>Review</h2>"
        f'<label for="status-select">Status</label><select id="status-select" name="status">{options}</select>'
        f'<label for="reviewer">Reviewer</label><input id="reviewer" name="reviewer" required maxlength="120" '
        f'value="{e(saved.reviewer)}" autocomplete="name">'
        '<label for="note">Note</label><textarea id="note" name="note" rows="2" maxlength="4000"></textarea>'
        '<p><button type="submit">Save review</button></p></form>'
    )


def status_line(saved: Saved) -> str:
    by = f" by {e(saved.reviewer)}" if saved.reviewer else ""
    return (
        f'<p class="answer-status">Status: {_badge(saved.status)}{by} · Last updated: '
        f'<time datetime="{e(saved.updated)}">{e(saved.updated.replace("T", " ").replace("+00:00", " UTC"))}</time></p>'
    )


def answer_page(saved: Saved, history: Sequence[Review]) -> str:
    """A stored answer as its reviewers see it: status, last update, the answer, the review form and history."""
    answer = from_dict(saved.answer)
    rows = "".join(
        f"<tr><td>{e(r.at)}</td><td>{_badge(r.status)}</td><td>{e(r.reviewer)}</td><td>{e(r.note)}</td></tr>"
        for r in history
    )
    body = (
        status_line(saved)
        + f'<p class="muted">Audience: {e(saved.audience)} · asked {e(saved.created)}</p>'
        + answer_html(answer, saved.asked)
        + review_form(saved)
        + '<h2>Review history</h2><table class="answers"><thead><tr><th scope="col">When</th>'
        + '<th scope="col">Status</th><th scope="col">Reviewer</th><th scope="col">Note</th></tr></thead>'
        + f"<tbody>{rows}</tbody></table>"
    )
    return layout(saved.asked, body)


def review_page(rows: Sequence[Saved], status: str | None) -> str:
    """Answers with their status, reviewer and time, newest first; a filter per status; the approved export."""
    current = ' aria-current="page"'
    filters = [f'<a href="/review"{current if status is None else ""}>All</a>'] + [
        f'<a href="/review?status={quote(s)}"{current if s == status else ""}>{e(s.capitalize())}</a>' for s in STATUSES
    ]
    body_rows = "".join(
        f'<tr><td><a href="/answers/{quote(r.id)}">{e(r.asked)}</a></td><td>{_badge(r.status)}</td>'
        f"<td>{e(r.reviewer)}</td><td>{e(r.note)}</td><td>{e(r.updated)}</td><td>{e(r.audience)}</td></tr>"
        for r in rows
    )
    empty = "" if rows else '<p class="muted">No answers yet.</p>'
    body = (
        "<h1>Review answers</h1>"
        f'<nav aria-label="Filter by status"><p>{" · ".join(filters)}</p></nav>'
        '<p><a href="/export.jsonl?status=approved">Export approved answers (JSONL)</a></p>'
        '<table class="answers"><thead><tr><th scope="col">Question</th><th scope="col">Status</th>'
        '<th scope="col">Reviewer</th><th scope="col">Note</th><th scope="col">Last updated</th>'
        '<th scope="col">Audience</th></tr></thead>'
        f"<tbody>{body_rows}</tbody></table>{empty}"
    )
    return layout("Review answers", body)


def message_page(title: str, message: str) -> str:
    return layout(title, f'<h1>{e(title)}</h1><p class="error">{e(message)}</p><p><a href="/">Back to Ask</a></p>')


def login_page(failed: bool) -> str:
    error = '<p class="error" role="alert">That token is not right.</p>' if failed else ""
    body = (
        "<h1>Sign in</h1><p>This medcite server needs its access token.</p>"
        f'{error}<form class="review-box" method="post" action="/login"><label for="token">Token</label>'
        '<input id="token" name="token" type="password" required autocomplete="current-password">'
        '<p><button type="submit">Sign in</button></p></form>'
    )
    return layout("Sign in", body)
