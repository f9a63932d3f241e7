"""One question's work in a batch: its result, answering it, and retrieval shared by a chunk of questions.

Retrieval runs for a chunk of questions at once (:class:`BatchIndex`: one embedding batch, one FAISS search
per kind) and the prefetched hits are handed to :func:`pipeline.answer.ask` as ``retrieved``; the question
vectors are kept by :class:`CachingEmbedder`, so the generator's similarity checks embed nothing again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.answer import Prepared, ask
from pipeline.batch.questions import Question
from pipeline.embed import Embedder
from pipeline.errors import PipelineError
from pipeline.index import Index
from pipeline.types import KINDS, Answer, Hit, Kind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One question's outcome: an answer, or the error that stopped it."""

    question: Question
    answer: Answer | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.answer is not None

    @property
    def id(self) -> str:
        return self.question.id


def answer_one(item: Question, run: Prepared) -> BatchResult:
    """Answer one question; any error is caught and returned in the result, never raised.

    The question's own audience, when it names one, wins over the run's; hits that ``run.index`` prefetched
    for it (a :class:`BatchIndex`) are used instead of a new search.
    """
    t0 = time.perf_counter()
    try:
        own = dataclasses.replace(run, audience=item.audience or run.audience)  # type: ignore[arg-type] # ask checks it
        retrieved = run.index.prefetched(item.question) if isinstance(run.index, BatchIndex) else None
        answer = ask(item.question, run.index, own, retrieved=retrieved)
    except Exception as e:  # noqa: BLE001 - one bad question is recorded and skipped, never fatal
        if not isinstance(e, PipelineError):
            log.warning("question %s failed with an unexpected %s", item.id, type(e).__name__, exc_info=True)
        return BatchResult(
            item,
            error=str(e) or type(e).__name__,
            error_type=type(e).__name__,
            retryable=bool(getattr(e, "retryable", False)),
            seconds=time.perf_counter() - t0,
        )
    return BatchResult(item, answer=dataclasses.replace(answer, id=item.id), seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- batched retrieval


class CachingEmbedder:
    """An :class:`~pipeline.embed.Embedder` that serves primed texts from memory and serialises model calls.

    :meth:`prime` embeds a chunk of questions in one batch; ``encode`` of texts that are all primed
    returns their vectors without the model (any other call goes to the model whole, so its vectors are
    exactly what the plain path gets). The lock makes one model safe to share between worker threads.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    @property
    def settings(self) -> Any:  # the manifest comparison reads embedder.settings.backend
        return getattr(self.inner, "settings", None)

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def prime(self, texts: Sequence[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            with self._lock:
                vecs = self.inner.encode(todo)
            self._cache.update(zip(todo, vecs, strict=True))

    def forget(self, texts: Iterable[str]) -> None:
        for t in texts:
            self._cache.pop(t, None)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        # .get, not `in` then [...]: another thread may forget a text between the two.
        vecs = [self._cache.get(t) for t in texts]
        if vecs and all(v is not None for v in vecs):
            return np.stack(vecs).astype(np.float32, copy=False)  # type: ignore[arg-type]
        with self._lock:
            return self.inner.encode(texts, progress=progress)


class BatchIndex(Index):
    """An :class:`~pipeline.index.Index` that retrieves for a chunk of questions at once.

    :meth:`prefetch` runs ``search_many`` per kind with the given quotas and keeps the hits until
    :meth:`forget`; :meth:`prefetched` hands them out per question, and :func:`~pipeline.batch.work.answer_one`
    gives them to :func:`pipeline.answer.ask` as ``retrieved``. ``search`` is the plain search: nothing depends on
    the shape of a call to it.
    """

    _hits: dict[tuple[str, Kind], list[Hit]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._hits = {}

    @classmethod
    def wrap(cls, index: Index) -> BatchIndex:
        if isinstance(index, BatchIndex):
            return index
        values = {f.name: getattr(index, f.name) for f in dataclasses.fields(index) if f.init}
        values["embedder"] = CachingEmbedder(index.query_embedder())  # checks the model against the manifest
        values["_checked_embedder"] = True
        return cls(**values)

    @property
    def cache(self) -> CachingEmbedder:
        emb = self.query_embedder()
        if not isinstance(emb, CachingEmbedder):  # only wrap() makes a BatchIndex, with a caching embedder
            raise TypeError(f"a BatchIndex needs a CachingEmbedder, not {type(emb).__name__}")
        return emb

    def prefetch(self, questions: Sequence[str], quotas: Mapping[Kind, int]) -> None:
        qs = list(dict.fromkeys(q for q in questions if isinstance(q, str) and q.strip()))
        if not qs:
            return
        try:
            self.cache.prime(qs)
            for kind in KINDS:
                k = quotas.get(kind, 0)
                if k <= 0 or self.ranges[kind][0] == self.ranges[kind][1]:
                    continue
                for q, hits in zip(qs, self.search_many(qs, k, kind=kind), strict=True):
                    self._hits[(q, kind)] = hits
        except PipelineError as e:  # each question then retrieves (and fails, if it must) on its own
            log.warning("batched retrieval failed (%s); retrieving one question at a time", e)

    def prefetched(self, question: str) -> dict[Kind, list[Hit]] | None:
        """The hits prefetched for ``question``, per kind, or None when none were (it then searches itself)."""
        found = {kind: list(hits) for (q, kind), hits in self._hits.items() if q == question}
        return found or None

    def forget(self, questions: Iterable[str]) -> None:
        qs = set(questions)
        for key in [key for key in self._hits if key[0] in qs]:
            self._hits.pop(key, None)
        self.cache.forget(qs)
