"""Batch answers in this process: a chunk of questions retrieved at once, answered one by one or by threads."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from pipeline.answer import AskOptions, Prepared, depths, prepare
from pipeline.batch.options import BatchOptions
from pipeline.batch.questions import Question
from pipeline.batch.work import BatchIndex, BatchResult, answer_one
from pipeline.index import Index

log = logging.getLogger(__name__)


def chunks_of(items: Sequence[Question], size: int) -> Iterator[list[Question]]:
    """``items`` in runs of ``size``."""
    for i in range(0, len(items), max(1, size)):
        yield list(items[i : i + size])


def prepare_local(options: AskOptions, index: Index) -> Prepared:
    """The run's options prepared over a :class:`BatchIndex` of ``index`` bound to the run's settings."""
    bound = index.with_settings(options.settings or index.settings)
    return prepare(options.but(settings=bound.settings), BatchIndex.wrap(bound))


def default_workers(run: Prepared) -> int:
    """Questions in flight at once: the openai server's ``max_concurrency``; one for local models."""
    return run.settings.openai.max_concurrency if run.generator.name == "openai" else 1


def ask_local(items: Sequence[Question], run: Prepared, batch: BatchOptions) -> Iterator[BatchResult]:
    """Answer ``items`` here; ``run`` from :func:`prepare_local`. Yields results as they complete."""
    n = batch.workers or default_workers(run)
    if n > 1 and run.generator.name == "llama":
        log.warning("the llama generator answers one question at a time (one model in memory); ignoring workers=%d", n)
        n = 1
    index = run.index
    if not isinstance(index, BatchIndex):
        raise TypeError("ask_local needs options prepared by prepare_local")
    wanted = depths(run.settings)
    if n <= 1:
        for chunk in chunks_of(items, batch.retrieval_batch):
            index.prefetch([q.question for q in chunk], wanted)
            for q in chunk:
                yield answer_one(q, run)
            index.forget(q.question for q in chunk)
        return
    yield from _threaded(items, run, index, n, batch.retrieval_batch)


def _threaded(
    items: Sequence[Question], run: Prepared, index: BatchIndex, workers: int, retrieval_batch: int
) -> Iterator[BatchResult]:
    wanted = depths(run.settings)
    chunks = deque(chunks_of(items, retrieval_batch))
    ready: deque[Question] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="medcite-batch") as pool:
        running: set[Future[BatchResult]] = set()
        while True:
            while len(running) < 2 * workers:  # bounded: at most 2 x workers questions in flight
                if not ready:
                    if not chunks:
                        break
                    index.prefetch([q.question for q in chunks[0]], wanted)
                    ready.extend(chunks.popleft())
                running.add(pool.submit(answer_one, ready.popleft(), run))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                index.forget([result.question.question])
                yield result
