"""The web page's ASGI app (Starlette): ask, follow up, review, export.

Routes: ``GET /`` the question page; ``POST /api/ask`` a question as JSON, answered as server-sent events
(``start``, ``section``, ``item``, then ``done`` with the rendered answer, or ``error``); ``GET /answers/{id}``
a stored answer with its review; ``POST /answers/{id}/review`` a review (form); ``GET /review`` the list;
``GET /export.jsonl?status=approved`` the approved answers in the answer JSON shape; ``GET /healthz``.

Guards (:class:`Guard`): a token on every request when one is set (header ``Authorization: Bearer`` or the
cookie set by ``/login``), cross-site form posts refused, request bodies capped, and security headers with a
strict Content-Security-Policy on every response.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.answer import AskOptions, prepare
from pipeline.conversation import Conversation
from pipeline.errors import InputError
from pipeline.index import Index
from pipeline.render import stylesheet
from pipeline.serve import pages
from pipeline.serve.answerer import Answerer, Busy, question_from
from pipeline.serve.store import STATUSES, Store, exported

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes of any request body: a question, a review
COOKIE = "medcite_token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its own form posts.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
OPEN_PATHS = ("/login", "/static/", "/healthz")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware: token, same-origin posts, body size, security headers (see the module docs)."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + HEADERS
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, secured)
            return
        await self.app(scope, self.capped(receive), secured)

    def refusal(self, scope: Scope) -> Response | None:
        """The response that refuses this request before it reaches the app, or None."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        if self.token and not path.startswith(OPEN_PATHS) and not self.authorised(headers):
            if "text/html" in headers.get("accept", "") and scope["method"] == "GET":
                return RedirectResponse("/login", status_code=303)
            return JSONResponse({"error": "this server needs its token (Authorization: Bearer ...)"}, 401)
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and not same_origin(headers):
            return JSONResponse({"error": "cross-site requests are refused"}, 403)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return JSONResponse({"error": f"the request is over {self.max_body} bytes"}, 413)
        return None

    def authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None  # only asked when a token is set
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                given = given or value
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def capped(self, receive: Receive) -> Receive:
        """``receive`` that stops a body sent in chunks once it passes the cap."""
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise InputError(f"the request is over {self.max_body} bytes")
            return message

        return wrapped


def same_origin(headers: dict[str, str]) -> bool:
    """False for a request a browser sent from another site (its Origin or Sec-Fetch-Site says so)."""
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request (curl, a script)
    if origin == "null":  # a privacy-sensitive context; only the browser's own word can vouch for it
        return site == "same-origin"
    return urlsplit(origin).netloc == headers.get("host", "")


async def _body(request: Request) -> bytes:
    try:
        return await request.body()
    except InputError:
        raise
    except Exception as e:  # a client that hangs up mid-body
        raise InputError(f"the request body could not be read ({e})") from None


def _sse(item: dict[str, Any]) -> bytes:
    name = item.pop("event")
    return f"event: {name}\ndata: {json.dumps(item, ensure_ascii=False)}\n\n".encode()


class Site:
    """The app's endpoints over an answerer and its store."""

    def __init__(self, answerer: Answerer, store: Store, *, generator: str, verify: bool, token: str | None) -> None:
        self.answerer = answerer
        self.store = store
        self.generator = generator
        self.verify = verify
        self.token = token
        self.script = files("pipeline.serve").joinpath("static/app.js").read_text(encoding="utf-8")
        self.css = stylesheet() + pages.APP_CSS

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home),
            Route("/api/ask", self.ask, methods=["POST"]),
            Route("/answers/{id:str}", self.answer),
            Route("/api/answers/{id:str}", self.answer_json),
            Route("/answers/{id:str}/review", self.review, methods=["POST"]),
            Route("/review", self.review_list),
            Route("/export.jsonl", self.export),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/healthz", self.health),
            Route("/static/{name:str}", self.static),
        ]

    async def home(self, request: Request) -> Response:
        return HTMLResponse(pages.ask_page(self.generator, self.verify))

    async def ask(self, request: Request) -> Response:
        try:
            raw = await _body(request)
            try:
                payload = json.loads(raw or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError("the request is not JSON") from None
            job = self.answerer.submit(question_from(payload))
        except InputError as e:
            return JSONResponse({"error": str(e)}, 422)
        except Busy as e:
            return JSONResponse(
                {"error": f"busy answering; try again in {e.retry_after} s"},
                503,
                headers={"Retry-After": str(e.retry_after)},
            )

        async def stream() -> AsyncIterator[bytes]:
            async for item in job.events():
                yield _sse(item)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def answer(self, request: Request) -> Response:
        saved = self.store.get(request.path_params["id"])
        if saved is None:
            return HTMLResponse(pages.message_page("Not found", "There is no such answer."), 404)
        return HTMLResponse(pages.answer_page(saved, self.store.history(saved.id)))

    async def answer_json(self, request: Request) -> Response:
        saved = self.store.get(request.path_params["id"])
        if saved is None:
            return JSONResponse({"error": "no such answer"}, 404)
        return JSONResponse(exported(saved))

    async def review(self, request: Request) -> Response:
        try:
            form = parse_qs((await _body(request)).decode("utf-8", "replace"))
            saved = self.store.review(
                request.path_params["id"],
                status=form.get("status", [""])[0],
                reviewer=form.get("reviewer", [""])[0],
                note=form.get("note", [""])[0],
            )
        except InputError as e:
            return HTMLResponse(pages.message_page("Review not saved", str(e)), 422)
        return RedirectResponse(f"/answers/{saved.id}", status_code=303)

    async def review_list(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            return HTMLResponse(pages.message_page("Unknown status", f"choose from {', '.join(STATUSES)}"), 422)
        return HTMLResponse(pages.review_page(self.store.answers(status=status), status))

    async def export(self, request: Request) -> Response:
        status = request.query_params.get("status", "approved")
        if status not in STATUSES:
            return JSONResponse({"error": f"unknown status {status!r}; choose from {', '.join(STATUSES)}"}, 422)
        lines = [json.dumps(a, ensure_ascii=False) + "\n" for a in self.store.export(status=status)]
        disposition = f'attachment; filename="medcite-{status.replace(" ", "-")}.jsonl"'
        return Response("".join(lines), media_type="application/jsonl", headers={"Content-Disposition": disposition})

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse(pages.login_page(False))
        given = parse_qs((await _body(request)).decode("utf-8", "replace")).get("token", [""])[0]
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            return HTMLResponse(pages.login_page(True), 401)
        response = RedirectResponse("/", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", secure=secure)
        return response

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "pending": self.answerer.pending, "answers": self.store.count()})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "app.js":
            return Response(self.script, media_type="text/javascript")
        if name == "medcite.css":
            return Response(self.css, media_type="text/css")
        return Response("not found", 404, media_type="text/plain")


def create_app(answerer: Answerer, store: Store, *, generator: str, verify: bool, token: str | None) -> ASGIApp:
    """The app over an answerer and its store, wrapped in :class:`Guard`; the answerer stops with the app."""
    site = Site(answerer, store, generator=generator, verify=verify, token=token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        answerer.close()

    return Guard(Starlette(routes=site.routes(), lifespan=lifespan), token=token)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: answers and reviews would be open to the network."""
    if host not in LOOPBACK and not token:
        raise InputError(
            f"--host {host} opens the server to other machines; give --token (or MEDCITE_SERVE_TOKEN) so that "
            "only people with it can ask and review, or bind to 127.0.0.1"
        )
    if token is not None and len(token) < 16:
        raise InputError("the token is too short to be safe; use at least 16 characters (openssl rand -hex 16)")


def build_app(
    index: Index, options: AskOptions, *, data: str | Path, token: str | None = None, queue: int = 32
) -> ASGIApp:
    """The web app over ``index``: one prepared generator (and judge) shared by every conversation, answers
    stored under ``data``, ``queue`` questions waiting at most."""
    run = prepare(options, index)
    store = Store(data)

    def conversation() -> Conversation:
        return Conversation(
            run.index,
            generator=run.generator,
            settings=run.settings,
            verifier=run.verifier,
            verify_action=run.verify_action,
        )

    answerer = Answerer(conversation, store, queue=queue)
    return create_app(answerer, store, generator=run.generator.name, verify=run.verifier is not None, token=token)
