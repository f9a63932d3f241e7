"""Answers for the web page: one model answers one question at a time, with a bounded queue before it.

Each question becomes a :class:`Job`. The job runs on the answerer's single worker thread, through the
conversation it belongs to (:meth:`pipeline.Conversation.events`), and hands its events to the page through a
queue of the event loop. The job runs to its end whether or not the page is still listening: a closed tab does
not lose an answer, and the finished answer is stored (one transaction) before the page hears it is done.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline.conversation import Conversation
from pipeline.errors import InputError, PipelineError
from pipeline.generate import Audience
from pipeline.serve.pages import MAX_QUESTION, answer_html
from pipeline.serve.store import Store
from pipeline.types import AnswerDone, Event, ItemWritten, SectionStarted, from_dict

log = logging.getLogger(__name__)

CONVERSATIONS = 256  # kept in memory; older ones are taken up again from the store when asked


class Busy(Exception):
    """The queue is full; ``retry_after`` is the seconds the page should wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    audience: Audience
    conversation: str | None


def question_from(payload: Any) -> Question:
    """A question from a request's JSON, or an :class:`InputError` that says what is wrong with it."""
    if not isinstance(payload, dict):
        raise InputError('send JSON like {"question": "...", "audience": "clinician"}')
    text = payload.get("question")
    if not isinstance(text, str) or not text.strip():
        raise InputError("the question is empty; ask something")
    text = " ".join(text.split())
    if len(text) > MAX_QUESTION:
        raise InputError(f"the question is {len(text)} characters; ask in at most {MAX_QUESTION}")
    audience = payload.get("audience", "clinician")
    if audience not in ("clinician", "patient"):
        raise InputError(f"audience is {audience!r}; choose clinician or patient")
    conversation = payload.get("conversation") or None
    if conversation is not None and (not isinstance(conversation, str) or not conversation.isalnum()):
        raise InputError("conversation must be the id the server gave")
    return Question(text, audience, conversation)


class Job:
    """One question on its way: the events for the page, in SSE-ready dicts, ending with ``None``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def put(self, item: dict[str, Any] | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while (item := await self.queue.get()) is not None:
            yield item


def event_payload(event: Event) -> dict[str, Any] | None:
    """What the page needs of an answer event while it is written (the finished answer comes rendered)."""
    if isinstance(event, SectionStarted):
        return {"event": "section", "title": event.title}
    if isinstance(event, ItemWritten):
        st = event.statement
        return {
            "event": "item",
            "section": event.section,
            "heading": event.heading,
            "first_in_group": event.first_in_group,
            "text": st.text,
            "citations": list(st.citations),
        }
    return None


class Answerer:
    """Conversations over one index and one prepared model; one answer at a time, ``queue`` more waiting.

    Args:
        make: makes a new conversation (the index, generator and judge are shared by all of them).
        store: where every finished answer is written.
        queue: questions that may wait while one is answered; beyond them the page is told to retry.
    """

    def __init__(self, make: Callable[[], Conversation], store: Store, *, queue: int = 32) -> None:
        if queue < 0:
            raise InputError(f"queue is {queue}; give 0 or more")
        self.make = make
        self.store = store
        self.limit = queue + 1
        self.pending = 0
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medcite-answer")
        self._chats: OrderedDict[str, Conversation] = OrderedDict()
        self._seconds: deque[float] = deque(maxlen=20)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the median answer time so far times the answers ahead."""
        typical = statistics.median(self._seconds) if self._seconds else 10.0
        return max(1, round(typical * self.pending))

    def submit(self, q: Question) -> Job:
        """Queue ``q``; :class:`Busy` when the queue is full, :class:`InputError` for an unknown conversation."""
        with self._lock:
            if self.pending >= self.limit:
                raise Busy(self.retry_after())
            self.pending += 1
        try:
            conversation = q.conversation or secrets.token_hex(8)
            if q.conversation and q.conversation not in self._chats and not self.store.conversation(q.conversation):
                raise InputError(f"no conversation {q.conversation!r}; ask a new question")
            job = Job(asyncio.get_running_loop())
            self._worker.submit(self._run, q, conversation, job)
        except BaseException:
            with self._lock:
                self.pending -= 1
            raise
        return job

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _chat(self, conversation: str) -> Conversation:
        """The conversation's object, kept in memory or taken up again from its stored turns."""
        chat = self._chats.pop(conversation, None)
        if chat is None:
            chat = self.make()
            turns = self.store.conversation(conversation)
            if turns:
                shape = chat.to_dict()
                shape["turns"] = [
                    {"question": t.asked, "query": t.query, "rewriter": t.rewriter, "answer": t.answer} for t in turns
                ]
                chat = Conversation.from_dict(
                    shape,
                    index=chat.index,
                    generator=chat.generator,
                    settings=chat.settings,
                    where=conversation,
                    verifier=chat.verifier,
                    verify_action=chat.verify_action,
                )
        self._chats[conversation] = chat
        while len(self._chats) > CONVERSATIONS:
            self._chats.popitem(last=False)
        return chat

    def _run(self, q: Question, conversation: str, job: Job) -> None:
        t0 = time.monotonic()
        try:
            self._answer(q, conversation, job)
            self._seconds.append(time.monotonic() - t0)
        except PipelineError as e:
            job.put({"event": "error", "message": str(e)})
        except Exception:
            log.exception("answering %r failed", q.text)
            job.put({"event": "error", "message": "the answer failed on the server; see its log"})
        finally:
            with self._lock:
                self.pending -= 1
            job.put(None)

    def _answer(self, q: Question, conversation: str, job: Job) -> None:
        chat = self._chat(conversation)
        chat.audience = q.audience
        query = chat.rewrite(q.text)
        turn = len(chat) + 1
        job.put({"event": "start", "conversation": conversation, "turn": turn, "asked": q.text, "query": query})
        for event in chat.events(q.text, query=query):
            if isinstance(event, AnswerDone):
                answer = event.answer
                last = chat.history[-1]
                saved = self.store.add(
                    answer,
                    conversation=conversation,
                    turn=turn,
                    asked=q.text,
                    rewriter=last.rewriter,
                    audience=q.audience,
                )
                job.put(
                    {
                        "event": "done",
                        "id": saved.id,
                        "url": f"/answers/{saved.id}",
                        "html": answer_html(from_dict(saved.answer), q.text),
                        "follow_ups": list(answer.follow_ups),
                        "status": saved.status,
                        "updated": saved.updated,
                    }
                )
            elif (payload := event_payload(event)) is not None:
                job.put(payload)
