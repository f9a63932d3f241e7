"""Batch answers: many questions into one run folder, crash-safe and resumable.

``medcite batch questions.jsonl --out runs/NAME`` and :func:`run_batch` write::

    runs/NAME/answers.jsonl    one answer per line, in the shape of pipeline.render.to_dict, "id" = the question's id
    runs/NAME/failures.jsonl   one line per question that failed: id, question, error (absent when none failed)
    runs/NAME/run.json         settings, generator, model, prompt hash, index id, start/end, counts

Each answer is appended with one ``write`` and ``fsync``-ed before the next is recorded, so a crash
(SIGKILL included) loses at most the answers in flight. Re-running the same command reads what is
there, cuts away a torn last line, and answers only the questions not yet answered; a question is
written to ``answers.jsonl`` at most once, so no line ever has to be rewritten. Failures go to their own
file, so ``medcite eval runs/NAME/answers.jsonl`` reads the answers as they are; ``--retry-failed``
asks the failed questions again and, at the end, ``failures.jsonl`` is rewritten (atomically) to
the questions still failing.

:func:`ask_many` is the same work without a folder: it yields one :class:`BatchResult` per question.
Retrieval runs for a chunk of questions at once (one embedding batch, one FAISS search per kind);
the generator is made once and reused, so a local llama.cpp model is loaded once; an ``openai``
generator may run several questions at a time (``workers``). With ``backend="ray"`` the questions go
to Ray actors (see :mod:`pipeline.ray_backend`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.answer import ask, make_generator
from pipeline.embed import Embedder
from pipeline.errors import InputError, PipelineError, RunMismatchError
from pipeline.generate import Audience, Generator
from pipeline.judge import Judge
from pipeline.retrieve import Index
from pipeline.settings import Settings
from pipeline.types import KINDS, Answer, Hit, Kind

log = logging.getLogger(__name__)

ANSWERS = "answers.jsonl"
FAILURES = "failures.jsonl"
RUN = "run.json"
RUN_FORMAT = 1


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a batch. ``row`` is its line in the questions file (0 when it came from code)."""

    id: str
    question: str
    audience: str | None = None
    row: int = 0


def question_id(question: str, audience: str | None = None) -> str:
    """The default id of a question: stable across runs and row order (a hash of its text and audience)."""
    return "q-" + hashlib.sha256(f"{audience or ''}\x00{question.strip()}".encode()).hexdigest()[:12]


def _item(row: Mapping[str, Any], where: str, n: int) -> Question:
    text = row.get("question")
    text = "" if text is None else str(text) if not isinstance(text, str) else text
    audience = row.get("audience")
    audience = str(audience).strip() or None if audience is not None else None
    raw_id = row.get("id")
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise InputError(f"{where}: id must be a string or a number, not {type(raw_id).__name__}")
    qid = str(raw_id).strip() if raw_id is not None and str(raw_id).strip() else question_id(text, audience)
    return Question(qid, text, audience, n)


def _check_unique(items: Sequence[Question], where: str) -> None:
    rows: dict[str, list[int]] = {}
    for i, q in enumerate(items, start=1):
        rows.setdefault(q.id, []).append(q.row or i)
    dups = {k: v for k, v in rows.items() if len(v) > 1}
    if dups:
        shown = "; ".join(f"{k!r} on rows {', '.join(map(str, v))}" for k, v in list(dups.items())[:5])
        more = f" (and {len(dups) - 5} more)" if len(dups) > 5 else ""
        raise InputError(
            f"{where}: duplicate question ids: {shown}{more}; give each row its own id "
            "(without an id column, the same question twice for the same audience gets the same id)"
        )


def read_questions(path: str | Path) -> list[Question]:
    """Questions from a ``.jsonl`` file (one object a line) or a ``.csv`` file with a header row.

    Each row needs ``question``; ``id`` and ``audience`` are optional. A row without an id gets
    :func:`question_id`. A row with an empty question or an unknown audience is kept: it fails on its
    own when answered, and the rest go on.

    Raises:
        InputError: the file is unreadable, not JSON Lines / CSV, has no ``question`` column, or two
            rows share an id (the message names the rows).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise InputError(f"{p}: questions must be a .jsonl file (one JSON object a line) or a .csv file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read the questions ({e})") from None
    items: list[Question] = []
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f'{p}:{n}: each line must be a JSON object like {{"question": "..."}}')
            items.append(_item(row, f"{p}:{n}", n))
    else:
        reader = csv.DictReader(text.splitlines())
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if "question" not in header:
            raise InputError(f"{p}: the first row must name the columns, one of them 'question' (found {header})")
        reader.fieldnames = header
        for row in reader:
            n = reader.line_num
            items.append(_item({k: v for k, v in row.items() if k}, f"{p}:{n}", n))
    _check_unique(items, str(p))
    return items


def as_questions(questions: Iterable[str | Question | Mapping[str, Any]]) -> list[Question]:
    """Strings, :class:`Question` values or ``{"question", "id"?, "audience"?}`` dicts, as questions."""
    items: list[Question] = []
    for n, q in enumerate(questions, start=1):
        if isinstance(q, Question):
            items.append(q)
        elif isinstance(q, str):
            items.append(Question(question_id(q), q, None, n))
        elif isinstance(q, Mapping):
            items.append(_item(q, f"question {n}", n))
        else:
            raise InputError(f"question {n} is a {type(q).__name__}; give a string or a dict with 'question'")
    _check_unique(items, "questions")
    return items


# --------------------------------------------------------------------------- results


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


def answer_one(
    item: Question,
    index: Index,
    *,
    generator: Generator,
    settings: Settings,
    audience: str | None,
    verifier: Judge | None,
    verify_action: Literal["drop", "mark"],
) -> BatchResult:
    """Answer one question; any error is caught and returned in the result, never raised."""
    t0 = time.perf_counter()
    try:
        answer = ask(
            item.question,
            index,
            generator=generator,
            settings=settings,
            audience=(item.audience or audience),  # type: ignore[arg-type] # checked by ask
            verifier=verifier,
            verify_action=verify_action,
        )
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
    """An :class:`~pipeline.retrieve.Index` that retrieves for a chunk of questions at once.

    :meth:`prefetch` runs ``search_many`` per kind with the quotas :func:`pipeline.answer.ask` will ask
    for, and keeps the hits until :meth:`forget`; ``search`` answers from them and falls back to the
    plain search for anything else.
    """

    _hits: dict[tuple[str, int, Kind | None], list[Hit]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._hits = {}

    @classmethod
    def wrap(cls, index: Index) -> BatchIndex:
        if isinstance(index, BatchIndex):
            return index
        values = {f.name: getattr(index, f.name) for f in dataclasses.fields(index) if f.init}
        values["embedder"] = CachingEmbedder(index._embedder())  # checks the model against the manifest
        values["_checked_embedder"] = True
        return cls(**values)

    @property
    def cache(self) -> CachingEmbedder:
        emb = self._embedder()
        assert isinstance(emb, CachingEmbedder)
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
                    self._hits[(q, k, kind)] = hits
        except PipelineError as e:  # each question then retrieves (and fails, if it must) on its own
            log.warning("batched retrieval failed (%s); retrieving one question at a time", e)

    def forget(self, questions: Iterable[str]) -> None:
        qs = set(questions)
        for key in [key for key in self._hits if key[0] in qs]:
            self._hits.pop(key, None)
        self.cache.forget(qs)

    def search(
        self, query: str, k: int | None = None, *, kind: Kind | None = None, mode: str | None = None
    ) -> list[Hit]:
        if mode is None and k is not None:
            hits = self._hits.get((query, k, kind))
            if hits is not None:
                return list(hits)
        return super().search(query, k, kind=kind, mode=mode)


def _chunks(items: Sequence[Question], size: int) -> Iterator[list[Question]]:
    for i in range(0, len(items), max(1, size)):
        yield list(items[i : i + size])


def _quotas(settings: Settings) -> dict[Kind, int]:
    return {"guideline": settings.answer.k_guideline, "research": settings.answer.k_research}


def _local_results(
    items: Sequence[Question],
    index: BatchIndex,
    one: Callable[[Question], BatchResult],
    settings: Settings,
    workers: int,
    retrieval_batch: int,
) -> Iterator[BatchResult]:
    quotas = _quotas(settings)
    if workers <= 1:
        for chunk in _chunks(items, retrieval_batch):
            index.prefetch([q.question for q in chunk], quotas)
            for q in chunk:
                yield one(q)
            index.forget(q.question for q in chunk)
        return
    chunks = deque(_chunks(items, retrieval_batch))
    ready: deque[Question] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="medcite-batch") as pool:
        running: set[Future[BatchResult]] = set()
        while True:
            while len(running) < 2 * workers:  # bounded: at most 2 x workers questions in flight
                if not ready:
                    if not chunks:
                        break
                    index.prefetch([q.question for q in chunks[0]], quotas)
                    ready.extend(chunks.popleft())
                running.add(pool.submit(one, ready.popleft()))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                index.forget([result.question.question])
                yield result


def default_workers(generator: Generator | str, settings: Settings) -> int:
    """Questions in flight at once: the openai server's ``max_concurrency``; one for local models."""
    name = generator if isinstance(generator, str) else generator.name
    return settings.openai.max_concurrency if name == "openai" else 1


def ask_many(
    questions: Iterable[str | Question | Mapping[str, Any]],
    index: Index,
    *,
    generator: Generator | str | None = None,
    settings: Settings | None = None,
    audience: Audience | None = None,
    verifier: Judge | str | None = None,
    verify_action: Literal["drop", "mark"] = "drop",
    workers: int | None = None,
    retrieval_batch: int = 16,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
) -> Iterator[BatchResult]:
    """Answer many questions; yields one :class:`BatchResult` per question as each completes.

    A question that fails yields a result with ``error`` set; the others go on. Ids are the ones
    given, or :func:`question_id`. ``list(ask_many(...))`` gives them all at once.

    Args:
        questions: strings, :class:`Question` values, or dicts with ``question`` and optional ``id``, ``audience``.
        index: an opened index.
        generator: a generator, or its name (llama, extractive, openai); made once and reused for every question.
        settings: answer settings (default: the index's).
        audience: the default audience; a question's own audience wins.
        verifier: a judge, or its name, to check each statement against its cited passages (``ask --verify``).
        verify_action: ``drop`` or ``mark`` unsupported statements.
        workers: questions answered at once (default: ``openai.max_concurrency`` for openai, else 1).
            The llama generator runs one question at a time: one model, loaded once.
        retrieval_batch: questions retrieved for together (one embedding batch, one search per kind).
        backend: ``local`` (this process) or ``ray`` (Ray actors, each loading the index and models once;
            the generator and judge must then be given by name).
        ray_address: a Ray cluster to join; None starts a local Ray (2 CPUs, no dashboard, localhost only).
        ray_actors: Ray actors (default: one per CPU Ray offers).

    Raises:
        InputError: bad arguments, or two questions share an id (before anything runs).
    """
    items = as_questions(questions)
    settings = settings or index.settings
    if retrieval_batch < 1:
        raise InputError(f"retrieval_batch must be at least 1, not {retrieval_batch}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")
    if backend == "ray":
        from pipeline.ray_backend import ray_results

        if generator is not None and not isinstance(generator, str):
            raise InputError("with backend='ray' give the generator by name (llama, extractive, openai)")
        if verifier is not None and not isinstance(verifier, str):
            raise InputError("with backend='ray' give the verifier by judge name (lexical, embedding, ...)")
        return ray_results(
            items,
            index,
            generator=generator or settings.answer.generator,
            settings=settings,
            audience=audience,
            judge=verifier,
            verify_action=verify_action,
            batch_size=retrieval_batch,
            address=ray_address,
            actors=ray_actors,
        )
    if backend != "local":
        raise InputError(f"backend is {backend!r}; choose local or ray")
    return _ask_local(items, index, generator, settings, audience, verifier, verify_action, workers, retrieval_batch)


def _ask_local(
    items: list[Question],
    index: Index,
    generator: Generator | str | None,
    settings: Settings,
    audience: Audience | None,
    verifier: Judge | str | None,
    verify_action: Literal["drop", "mark"],
    workers: int | None,
    retrieval_batch: int,
) -> Iterator[BatchResult]:
    bindex = BatchIndex.wrap(index)
    gen = prepare_generator(generator, settings, bindex)
    judge = prepare_judge(verifier, settings, bindex)
    n = workers or default_workers(gen, settings)
    if n > 1 and gen.name == "llama":
        log.warning("the llama generator answers one question at a time (one model in memory); ignoring workers=%d", n)
        n = 1

    def one(q: Question) -> BatchResult:
        return answer_one(
            q, bindex, generator=gen, settings=settings, audience=audience, verifier=judge, verify_action=verify_action
        )

    yield from _local_results(items, bindex, one, settings, n, retrieval_batch)


def prepare_generator(generator: Generator | str | None, settings: Settings, index: Index) -> Generator:
    if generator is None or isinstance(generator, str):
        return make_generator(generator or settings.answer.generator, settings, index)
    return generator


def prepare_judge(verifier: Judge | str | None, settings: Settings, index: Index) -> Judge | None:
    if isinstance(verifier, str):
        from pipeline.judge import judge_from_settings

        return judge_from_settings(settings, verifier, embedder=index._embedder())
    return verifier


# --------------------------------------------------------------------------- the run folder


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_log(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file we append to; a torn last line (a crash mid-write) is cut away."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        log.warning("%s: cutting away a torn last line (%d bytes) left by an interrupted run", path, len(data) - end)
        with path.open("r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
        data = data[:end]
    rows = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not valid JSON ({e.msg}); the file was edited or damaged") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise InputError(f"{path}:{n}: a record without an 'id'; the file was edited or damaged")
        rows.append(row)
    return rows


class _Appender:
    """Appends whole lines with one ``write`` each and ``fsync``-s them before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: Mapping[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def answer_record(result: BatchResult) -> dict[str, Any]:
    """The ``answers.jsonl`` line of a result: :func:`pipeline.render.to_dict` with the question's id."""
    from pipeline.render import to_dict

    assert result.answer is not None
    return to_dict(result.answer)


def failure_record(result: BatchResult) -> dict[str, Any]:
    q = result.question
    return {
        "id": q.id,
        "question": q.question,
        "audience": q.audience,
        "row": q.row,
        "error": result.error,
        "error_type": result.error_type,
        "retryable": result.retryable,
        "failed_at": _now(),
    }


@dataclass
class BatchSummary:
    """What a batch run left in its folder, and what this session added."""

    out: Path
    questions: int
    answered: int
    failed: int
    pending: int
    new_answers: int
    new_failures: int
    skipped: int
    sections_abstained: int
    answers_abstained: int
    seconds: float
    failed_ids: list[str] = field(default_factory=list)

    @property
    def seconds_per_answer(self) -> float | None:
        done = self.new_answers + self.new_failures
        return self.seconds / done if done else None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["seconds"] = round(self.seconds, 3)
        spa = self.seconds_per_answer
        d["seconds_per_answer"] = round(spa, 3) if spa is not None else None
        return d

    def summary(self) -> str:
        spa = self.seconds_per_answer
        rate = f", {spa:.2f} s per question ({3600 / spa:.0f} per hour)" if spa else ""
        lines = [
            f"{self.out}: {self.answered} of {self.questions} questions answered, {self.failed} failed, "
            f"{self.pending} not yet asked",
            f"this run: {self.new_answers} answered, {self.new_failures} failed, {self.skipped} already done, "
            f"in {self.seconds:.1f} s{rate}",
            f"abstained: {self.sections_abstained} sections; "
            f"{self.answers_abstained} answers abstained in every section",
        ]
        if self.failed:
            shown = ", ".join(self.failed_ids[:5]) + (" ..." if len(self.failed_ids) > 5 else "")
            lines.append(f"failed: {shown}; see {self.out / FAILURES}, retry them with --retry-failed")
        return "\n".join(lines)


def run_fingerprint(
    generator: Generator, settings: Settings, index: Index, audience: str | None, judge: Judge | None, action: str
) -> dict[str, Any]:
    """What must not change between the sessions of one run: anything that would change its answers."""
    return {
        "settings_hash": settings.hash(),
        "index_id": index.id,
        "generator": generator.name,
        "model": generator.model,
        "prompt_hash": generator.prompt_hash,
        "audience": audience or settings.answer.audience,
        "verify": (
            {"judge": judge.name, "fingerprint": judge.fingerprint(), "threshold": judge.threshold, "action": action}
            if judge is not None
            else None
        ),
    }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[object, object]]:
    return {k: (old.get(k), new[k]) for k in new if old.get(k) != new[k]}


def _from_answers(answers: Sequence[Mapping[str, Any]], fp: Mapping[str, Any]) -> dict[str, tuple[object, object]]:
    """Differences between the answers already there and this run, when run.json is missing."""
    diff: dict[str, tuple[object, object]] = {}
    for row in answers:
        run = row.get("run") or {}
        for k in ("settings_hash", "index_id", "generator", "model", "prompt_hash"):
            if run.get(k) != fp[k]:
                diff[k] = (run.get(k), fp[k])
        if diff:
            break
    return diff


def _read_run(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e}); restore it, or pass --force to start the run over") from None
    if not isinstance(run, dict):
        raise InputError(f"{path}: not a medcite run record; restore it, or pass --force to start the run over")
    return run


def _move_aside(out: Path) -> Path:
    dest = out / f"previous-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    dest.mkdir()
    for name in (ANSWERS, FAILURES, RUN):
        if (out / name).exists():
            shutil.move(str(out / name), str(dest / name))
    _fsync_dir(out)
    return dest


def run_batch(
    questions: str | Path | Sequence[str | Question | Mapping[str, Any]],
    out: str | Path,
    index: Index,
    *,
    generator: Generator | str | None = None,
    settings: Settings | None = None,
    audience: Audience | None = None,
    verifier: Judge | str | None = None,
    verify_action: Literal["drop", "mark"] = "drop",
    workers: int | None = None,
    retrieval_batch: int = 16,
    retry_failed: bool = False,
    force: bool = False,
    progress: bool = True,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
) -> BatchSummary:
    """Answer a questions file into the run folder ``out``, resuming what is there (see the module docs).

    Args:
        questions: a ``.jsonl`` or ``.csv`` file (see :func:`read_questions`), or the questions themselves.
        out: the run folder, e.g. ``runs/NAME``; made if missing.
        retry_failed: ask again the questions that failed in an earlier session (questions never asked
            are asked in any case; answered ones never again).
        force: if the folder holds answers made differently, move them aside and start over.
        progress: a progress bar (rate and time left) on stderr.
        The other arguments are those of :func:`ask_many`.

    Returns:
        A :class:`BatchSummary` of the whole folder and of this session.

    Raises:
        InputError: bad questions file (nothing is written), or another batch is writing into ``out``.
        RunMismatchError: ``out`` holds answers made with other settings, index, generator or judge.
    """
    from filelock import FileLock, Timeout

    t0 = time.perf_counter()
    started = _now()
    items = read_questions(questions) if isinstance(questions, str | Path) else as_questions(questions)
    settings = settings or index.settings
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"{root}: another medcite batch is writing into this folder ({root / '.lock'})") from None
    try:
        if backend == "local":
            index = BatchIndex.wrap(index)  # one locked, caching embedder shared by retrieval and generator
        # The generator and judge are made here for their names and hashes (cheap: models load on first use).
        gen = prepare_generator(generator, settings, index)
        judge = prepare_judge(verifier, settings, index)
        fp = run_fingerprint(gen, settings, index, audience, judge, verify_action)
        answers = _read_log(root / ANSWERS)
        try:
            previous = _read_run(root / RUN)
        except InputError:
            if not force:
                raise
            previous = {"fingerprint": {}}  # matches nothing: with --force the folder's files are moved aside
        diff = _differences(previous.get("fingerprint", {}), fp) if previous else _from_answers(answers, fp)
        if diff:
            if not force:
                raise RunMismatchError(str(root), diff)
            moved = _move_aside(root)
            log.warning("%s: answers made differently were moved to %s", root, moved)
            answers, previous = [], None
        answered = {str(r["id"]) for r in answers}
        by_id = {q.id: q for q in items}
        changed = [r["id"] for r in answers if r["id"] in by_id and r.get("question") != by_id[r["id"]].question]
        if changed:
            log.warning(
                "%d answered ids now have another question text (kept as answered): %s", len(changed), changed[:5]
            )
        failures = {str(r["id"]): r for r in _read_log(root / FAILURES) if str(r["id"]) not in answered}
        todo = [q for q in items if q.id not in answered and (retry_failed or q.id not in failures)]
        skipped = len(items) - len(todo)
        sessions = list(previous.get("sessions", [])) if previous else []
        session: dict[str, Any] = {
            "started": started,
            "backend": backend,
            "workers": workers,
            "retry_failed": retry_failed,
            "questions_file": str(questions) if isinstance(questions, str | Path) else None,
        }
        meta: dict[str, Any] = {
            "format": RUN_FORMAT,
            "status": "running",
            "fingerprint": fp,
            "started": previous.get("started", started) if previous else started,
            "ended": None,
            "index_path": str(index.path),
            "settings": settings.model_dump(mode="json"),
            "medcite": _version(),
            "python": sys.version.split()[0],
            "sessions": [*sessions, session],
        }
        _write_atomic(root / RUN, json.dumps(meta, indent=2) + "\n")

        new_answers = new_failures = 0
        results = ask_many(
            todo,
            index,
            generator=gen if backend == "local" else fp["generator"],
            settings=settings,
            audience=audience,
            verifier=judge if backend == "local" else (judge.name if judge is not None else None),
            verify_action=verify_action,
            workers=workers,
            retrieval_batch=retrieval_batch,
            backend=backend,
            ray_address=ray_address,
            ray_actors=ray_actors,
        )
        answers_log, failures_log = _Appender(root / ANSWERS), _Appender(root / FAILURES)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="q", desc="answering", disable=not progress or not todo, smoothing=0.1)
        try:
            for result in results:
                if result.ok:
                    answers_log.append(answer_record(result))
                    answered.add(result.id)
                    failures.pop(result.id, None)
                    new_answers += 1
                else:
                    rec = failure_record(result)
                    failures_log.append(rec)
                    failures[result.id] = rec
                    new_failures += 1
                    log.warning("question %s failed: %s", result.id, result.error)
                bar.update(1)
                bar.set_postfix(failed=new_failures, refresh=False)
        finally:
            bar.close()
            answers_log.close()
            failures_log.close()
            close = getattr(results, "close", None)
            if close is not None:  # stops worker threads or Ray actors if the loop ended early
                close()

        # Keep only the failures still unanswered: the last record of each (atomically; the log had them all).
        still = [r for k, r in failures.items() if k not in answered]
        if still:
            _write_atomic(root / FAILURES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in still))
        elif (root / FAILURES).exists():
            (root / FAILURES).unlink()
            _fsync_dir(root)
        rows = _read_log(root / ANSWERS)
        wanted = set(by_id)
        summary = BatchSummary(
            out=root,
            questions=len(items),
            answered=sum(1 for r in rows if r["id"] in wanted),
            failed=sum(1 for k in failures if k in wanted and k not in answered),
            pending=sum(1 for q in items if q.id not in answered and q.id not in failures),
            new_answers=new_answers,
            new_failures=new_failures,
            skipped=skipped,
            sections_abstained=sum(int(s.get("abstained", False)) for r in rows for s in r.get("sections", [])),
            answers_abstained=sum(
                1 for r in rows if r.get("sections") and all(s.get("abstained") for s in r["sections"])
            ),
            seconds=time.perf_counter() - t0,
            failed_ids=[k for k in failures if k in wanted and k not in answered],
        )
        session.update(
            {
                "ended": _now(),
                "answered": new_answers,
                "failed": new_failures,
                "seconds": round(summary.seconds, 3),
            }
        )
        meta.update(
            {
                "status": "done" if summary.pending == 0 and summary.failed == 0 else "incomplete",
                "ended": session["ended"],
                "counts": {
                    k: getattr(summary, k)
                    for k in ("questions", "answered", "failed", "pending", "sections_abstained", "answers_abstained")
                },
                "seconds_per_answer": summary.to_dict()["seconds_per_answer"],
            }
        )
        _write_atomic(root / RUN, json.dumps(meta, indent=2) + "\n")
        return summary
    finally:
        lock.release()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medcite")
    except PackageNotFoundError:
        return "unknown"
