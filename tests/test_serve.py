"""The web app (``medcite serve``) through Starlette's test client: streaming, storing, review, guards.

The embedder is the hashing fake and the generator the extractive one over a small real index; the browser,
load and kill tests with a real server process are in tests/test_serve_live.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pipeline import Settings
from pipeline.answer import AskOptions
from pipeline.cli import app as cli_app
from pipeline.errors import InputError
from pipeline.generate import ExtractiveGenerator
from pipeline.serve.app import build_app, check_binding
from pipeline.serve.store import Store
from pipeline.types import Block, Document
from tests.fakes import KeywordJudge, hashed_index
from tests.hostile import assert_safe_html

SETTINGS = Settings.preset(
    "test", answer={"min_relevance": 0.1, "min_source_score": 0.0, "k_guideline": 2, "k_research": 2}
)
SEED = "What is the treatment for oligoprogressive colorectal cancer?"
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
TOKEN = "0123456789abcdef0123"


def _docs() -> list[Document]:
    return [
        Document(
            id="g-colon",
            kind="guideline",
            title=f"Colon cancer treatment {EVIL}",
            source="NCI",
            year=2025,
            blocks=(
                Block(f"Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions {EVIL}.", "Local"),
                Block("In RAS-mutant colorectal cancer, anti-EGFR antibodies are not recommended.", "RAS-mutant"),
            ),
        ),
        Document(
            id="pmid:1",
            kind="research",
            title="SBRT for oligoprogressive colorectal cancer",
            pmid="1",
            blocks=(Block("Radiotherapy of oligoprogressive colorectal cancer sites delayed a change of therapy."),),
        ),
        Document(
            id="pmid:2",
            kind="research",
            title="RAS mutation and anti-EGFR response",
            pmid="2",
            blocks=(Block("RAS-mutant colorectal tumours did not respond to anti-EGFR therapy in this cohort."),),
        ),
    ]


class Gate:
    """An extractive generator that waits at a gate before each section: a slow model, held by the test."""

    def __init__(self, inner: ExtractiveGenerator) -> None:
        self.inner = inner
        self.open = threading.Event()
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def draft_section(self, request: Any) -> Any:
        self.entered.set()
        self.open.wait(30)
        return self.inner.draft_section(request)


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)


@pytest.fixture
def extractive(index, splitter):  # type: ignore[no-untyped-def]
    return ExtractiveGenerator(index.query_embedder(), splitter, min_score=0.0)


def _client(index: Any, generator: Any, data: Path, **kwargs: Any) -> TestClient:
    app = build_app(index, AskOptions(generator=generator, settings=SETTINGS), data=data, **kwargs)
    return TestClient(app, base_url="http://127.0.0.1:8000")


@pytest.fixture
def client(index, extractive, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with _client(index, extractive, tmp_path / "data") as c:
        yield c


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events as (name, data) pairs."""
    out = []
    for block in body.strip().split("\n\n"):
        name = re.search(r"^event: (.*)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        assert name and data, block
        out.append((name.group(1), json.loads(data.group(1))))
    return out


def _ask(client: TestClient, question: str, **extra: Any) -> list[tuple[str, dict[str, Any]]]:
    r = client.post("/api/ask", json={"question": question, "audience": "clinician", **extra})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return events(r.text)


def _done(evs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    assert evs[-1][0] == "done", evs[-1]
    return evs[-1][1]


def _page_is_safe(page: str) -> None:
    """No script but the app's own file, no inline style, no event handler, no document text unescaped."""
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"<[^>]+\son\w+=", page)
    assert EVIL not in page and "<img" not in page


# --------------------------------------------------------------------------- asking


def test_ask_streams_both_sections_then_the_rendered_answer_and_stores_it(client: TestClient) -> None:
    evs = _ask(client, SEED)
    names = [n for n, _ in evs]
    assert names[0] == "start" and names.count("section") == 2 and "item" in names
    sections = [d["title"] for n, d in evs if n == "section"]
    assert sections == ["From the Guidelines", "From the Research"]
    item = next(d for n, d in evs if n == "item")
    assert item["citations"] and isinstance(item["text"], str)
    done = _done(evs)
    assert done["status"] == "submitted" and done["url"] == f"/answers/{done['id']}"
    assert_safe_html(done["html"])
    assert "<style" not in done["html"], "the page links the stylesheet; the fragment carries none"
    assert EVIL not in done["html"] and "&lt;script&gt;" in done["html"]
    page = client.get(done["url"])
    assert page.status_code == 200
    assert "Last updated" in page.text and "Submitted" in page.text and "From the Research" in page.text
    _page_is_safe(page.text)
    stored = client.get(f"/api/answers/{done['id']}").json()
    assert stored["question"] == SEED and stored["review"]["status"] == "submitted"
    assert client.get("/healthz").json() == {"ok": True, "pending": 0, "answers": 1}


def test_follow_up_continues_the_conversation_with_stable_numbers(client: TestClient) -> None:
    first = _ask(client, SEED)
    conversation = first[0][1]["conversation"]
    follow = _ask(client, "What about RAS-mutant tumours?", conversation=conversation)
    start = follow[0][1]
    assert start["conversation"] == conversation and start["turn"] == 2
    assert start["query"] != start["asked"] and "colorectal" in start["query"]
    done = _done(follow)
    assert "Searched as:" in done["html"]
    a = client.get(f"/api/answers/{_done(first)['id']}").json()
    b = client.get(f"/api/answers/{done['id']}").json()
    first_numbers = {r["doc_id"]: r["n"] for r in a["references"]}
    for r in b["references"]:
        if r["doc_id"] in first_numbers:
            assert r["n"] == first_numbers[r["doc_id"]]


def test_a_conversation_is_taken_up_again_after_a_restart(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with _client(index, extractive, tmp_path / "data") as c:
        first = _ask(c, SEED)
    conversation = first[0][1]["conversation"]
    with _client(index, extractive, tmp_path / "data") as c:
        follow = _ask(c, "What about RAS-mutant tumours?", conversation=conversation)
    assert follow[0][1]["turn"] == 2 and "colorectal" in follow[0][1]["query"]
    turns = Store(tmp_path / "data").conversation(conversation)
    assert [t.turn for t in turns] == [1, 2]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"question": "  "}, 422, "empty"),
        ({"question": "x" * 2001}, 422, "at most 2000"),
        ({"question": SEED, "audience": "surgeon"}, 422, "choose clinician or patient"),
        ({"question": SEED, "conversation": "nope0"}, 422, "no conversation"),
        ({"question": SEED, "conversation": "../x"}, 422, "the id the server gave"),
        (["not", "an", "object"], 422, "send JSON like"),
    ],
)
def test_bad_questions_get_a_clear_error(client: TestClient, body: Any, status: int, message: str) -> None:
    r = client.post("/api/ask", json=body)
    assert r.status_code == status and message in r.json()["error"]
    assert client.get("/healthz").json()["pending"] == 0


def test_request_size_is_capped_and_non_json_refused(client: TestClient) -> None:
    r = client.post("/api/ask", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["error"]
    chunks = iter([b'{"question": "', b"x" * 70_000, b'"}'])
    r = client.post("/api/ask", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code in (413, 422), r.text
    r = client.post("/api/ask", content=b"question=hi", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "not JSON" in r.json()["error"]


# --------------------------------------------------------------------------- review and export


def test_review_changes_the_status_keeps_the_history_and_exports_approved(client: TestClient) -> None:
    done = _done(_ask(client, SEED))
    other = _done(_ask(client, "What about RAS-mutant tumours?"))
    r = client.post(
        f"/answers/{done['id']}/review",
        data={"status": "under review", "reviewer": "Dr A. Reviewer"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/answers/{done['id']}"
    client.post(f"/answers/{done['id']}/review", data={"status": "approved", "reviewer": "Dr B", "note": EVIL})
    page = client.get(f"/answers/{done['id']}").text
    assert "Approved" in page and "Dr B" in page and "Under review" in page  # the status and the history
    _page_is_safe(page)
    listing = client.get("/review?status=approved").text
    assert done["id"] in listing and other["id"] not in listing and "Dr B" in listing and "&lt;script&gt;" in listing
    _page_is_safe(listing)
    lines = client.get("/export.jsonl").text.splitlines()
    assert len(lines) == 1
    exported = json.loads(lines[0])
    assert exported["id"] == done["id"] and exported["sections"] and exported["references"]
    assert exported["review"] == {
        "status": "approved",
        "reviewer": "Dr B",
        "note": EVIL,
        "updated": exported["review"]["updated"],
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [({"status": "published", "reviewer": "A"}, "unknown review status"), ({"status": "approved"}, "reviewer")],
)
def test_a_bad_review_is_refused_and_changes_nothing(client: TestClient, form: dict[str, str], message: str) -> None:
    done = _done(_ask(client, SEED))
    r = client.post(f"/answers/{done['id']}/review", data=form)
    assert r.status_code == 422 and message in r.text
    assert client.get(f"/api/answers/{done['id']}").json()["review"]["status"] == "submitted"
    assert client.post("/answers/nothing/review", data={"status": "approved", "reviewer": "A"}).status_code == 422
    assert client.get("/answers/nothing").status_code == 404
    assert client.get("/review?status=published").status_code == 422


# --------------------------------------------------------------------------- guards


def test_every_response_carries_a_strict_content_security_policy(client: TestClient) -> None:
    for path in ("/", "/review", "/static/app.js", "/static/medcite.css", "/answers/none"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "default-src 'none'" in csp, path
        assert r.headers["x-content-type-options"] == "nosniff"
    _page_is_safe(client.get("/").text)
    assert ".medcite" in client.get("/static/medcite.css").text
    assert client.get("/static/other.js").status_code == 404


def test_cross_site_posts_are_refused(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": SEED}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/answers/x/review", data={"status": "approved"}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = client.post("/api/ask", json={"question": SEED}, headers={"origin": "null"})
    assert r.status_code == 403
    r = client.post("/api/ask", json={"question": " "}, headers={"origin": "http://127.0.0.1:8000"})
    assert r.status_code == 422  # same origin: through to the app
    r = client.post("/api/ask", json={"question": " "}, headers={"origin": "null", "sec-fetch-site": "same-origin"})
    assert r.status_code == 422


def test_a_token_guards_every_page_but_sign_in(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with _client(index, extractive, tmp_path / "data", token=TOKEN) as c:
        assert c.get("/", headers={"accept": "text/html"}, follow_redirects=False).headers["location"] == "/login"
        assert c.get("/export.jsonl").status_code == 401
        assert c.post("/api/ask", json={"question": SEED}).status_code == 401
        assert c.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/", headers={"authorization": "Bearer wrong"}, follow_redirects=False).status_code == 401
        assert c.post("/login", data={"token": "wrong"}).status_code == 401
        r = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/review").status_code == 200  # the cookie


@pytest.mark.parametrize(
    ("host", "token", "message"),
    [("0.0.0.0", None, "give --token"), ("192.168.1.5", "short", "at least 16"), ("127.0.0.1", "abc", "at least 16")],
)
def test_binding_beyond_loopback_needs_a_token(host: str, token: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_binding(host, token)
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)


def test_a_full_queue_answers_503_with_retry_after(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = Gate(extractive)
    with _client(index, slow, tmp_path / "data", queue=0) as c:
        with c.stream("POST", "/api/ask", json={"question": SEED}) as first:
            assert first.status_code == 200
            assert slow.entered.wait(10)
            r = c.post("/api/ask", json={"question": "What about RAS-mutant tumours?"})
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"]
            slow.open.set()
            body = "".join(first.iter_text())
        assert events(body)[-1][0] == "done"
        assert c.get("/healthz").json()["pending"] == 0


def test_an_answer_is_stored_even_when_the_page_goes_away(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = Gate(extractive)
    with _client(index, slow, tmp_path / "data") as c:
        with c.stream("POST", "/api/ask", json={"question": SEED}):
            assert slow.entered.wait(10)
        slow.open.set()  # the page closed before a word was written; the answer goes on
        store = Store(tmp_path / "data")
        for _ in range(200):
            if store.count():
                break
            threading.Event().wait(0.05)
        assert store.count() == 1 and store.answers()[0].asked == SEED


def test_with_verify_each_answer_says_how_its_statements_were_checked(index, extractive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    options = AskOptions(generator=extractive, settings=SETTINGS, verifier=KeywordJudge(), verify_action="mark")
    app = build_app(index, options, data=tmp_path / "data")
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert "checked against its sources" in c.get("/").text
        done = _done(_ask(c, SEED))
        assert "was checked against its cited passages by keyword: 3 checked" in done["html"]
        assert "was checked against its cited passages" in c.get(done["url"]).text


def test_the_serve_command_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["serve", "--host", "0.0.0.0", "--index", str(tmp_path / "none"), "--data", str(tmp_path / "d")]
    )
    assert result.exit_code == 3 and "give --token" in result.output
    assert not (tmp_path / "d").exists(), "nothing is started or written"
