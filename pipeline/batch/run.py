"""Batch answers into a run folder, crash-safe and resumable: :func:`run_batch`.

Re-running the same command reads what is there, cuts away a torn last line, and answers only the
questions not yet answered; a question is written to ``answers.jsonl`` at most once, so no line ever has
to be rewritten. Failures go to their own file, so ``medcite eval runs/NAME/answers.jsonl`` reads the
answers as they are; ``retry_failed`` asks the failed questions again and, at the end, ``failures.jsonl``
is rewritten (atomically) to the questions still failing. See :mod:`pipeline.batch.folder` for the files.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from pipeline.answer import AskOptions, Prepared, prepare
from pipeline.batch.folder import (
    ANSWERS,
    FAILURES,
    RUN,
    RUN_FORMAT,
    Appender,
    BatchSummary,
    answer_record,
    differences,
    failure_record,
    from_answers,
    fsync_dir,
    move_aside,
    now,
    read_log,
    read_run,
    run_fingerprint,
    write_atomic,
)
from pipeline.batch.local import prepare_local
from pipeline.batch.many import answer_items
from pipeline.batch.options import BatchOptions, split_options
from pipeline.batch.questions import Question, as_questions, read_questions
from pipeline.batch.work import BatchResult
from pipeline.errors import InputError, RunMismatchError
from pipeline.index import Index

log = logging.getLogger(__name__)


def run_batch(
    questions: str | Path | Sequence[str | Question | Mapping[str, Any]],
    out: str | Path,
    index: Index,
    options: AskOptions | None = None,
    batch: BatchOptions | None = None,
    *,
    retry_failed: bool = False,
    force: bool = False,
    progress: bool = True,
    **changes: Any,
) -> BatchSummary:
    """Answer a questions file into the run folder ``out``, resuming what is there (see the module docs).

    Args:
        questions: a ``.jsonl`` or ``.csv`` file (see :func:`~pipeline.batch.questions.read_questions`), or the
            questions themselves.
        out: the run folder, e.g. ``runs/NAME``; made if missing.
        index: an opened index.
        options, batch, changes: as for :func:`~pipeline.batch.many.ask_many`.
        retry_failed: ask again the questions that failed in an earlier session (questions never asked
            are asked in any case; answered ones never again).
        force: if the folder holds answers made differently, move them aside and start over.
        progress: a progress bar (rate and time left) on stderr.

    Returns:
        A :class:`~pipeline.batch.folder.BatchSummary` of the whole folder and of this session.

    Raises:
        InputError: bad questions file (nothing is written), or another batch is writing into ``out``.
        RunMismatchError: ``out`` holds answers made with other settings, index, generator or judge.
    """
    t0 = time.perf_counter()
    items = read_questions(questions) if isinstance(questions, str | Path) else as_questions(questions)
    ask_options, how = split_options(options, batch, changes)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"{root}: another medcite batch is writing into this folder ({root / '.lock'})") from None
    try:
        # The generator and judge are made here for their names and hashes (cheap: models load on first use).
        run = prepare_local(ask_options, index) if how.backend == "local" else prepare(ask_options, index)
        state = _open_run(root, items, run, how, retry_failed, force, questions)
        new_answers, new_failures = _record(state, answer_items(state.todo, index, run, how), progress)
        return _finish(state, new_answers, new_failures, time.perf_counter() - t0)
    finally:
        lock.release()


@dataclass
class _RunState:
    """A run folder as this session found it, and what it has to do."""

    root: Path
    items: list[Question]
    answered: set[str]
    failures: dict[str, dict[str, Any]]
    todo: list[Question]
    meta: dict[str, Any]
    session: dict[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return len(self.items) - len(self.todo)


def _open_run(
    root: Path,
    items: list[Question],
    run: Prepared,
    how: BatchOptions,
    retry_failed: bool,
    force: bool,
    questions: object,
) -> _RunState:
    """Read the folder, check that it holds answers made the same way (or move them aside), and plan the session."""
    started = now()
    fp = run_fingerprint(run)
    answers = read_log(root / ANSWERS)
    try:
        previous = read_run(root / RUN)
    except InputError:
        if not force:
            raise
        previous = {"fingerprint": {}}  # matches nothing: with --force the folder's files are moved aside
    diff = differences(previous.get("fingerprint", {}), fp) if previous else from_answers(answers, fp)
    if diff:
        if not force:
            raise RunMismatchError(str(root), diff)
        moved = move_aside(root)
        log.warning("%s: answers made differently were moved to %s", root, moved)
        answers, previous = [], None
    answered = {str(r["id"]) for r in answers}
    by_id = {q.id: q for q in items}
    changed = [r["id"] for r in answers if r["id"] in by_id and r.get("question") != by_id[r["id"]].question]
    if changed:
        log.warning("%d answered ids now have another question text (kept as answered): %s", len(changed), changed[:5])
    failures = {str(r["id"]): r for r in read_log(root / FAILURES) if str(r["id"]) not in answered}
    todo = [q for q in items if q.id not in answered and (retry_failed or q.id not in failures)]
    session: dict[str, Any] = {
        "started": started,
        "backend": how.backend,
        "workers": how.workers,
        "retry_failed": retry_failed,
        "questions_file": str(questions) if isinstance(questions, str | Path) else None,
    }
    meta: dict[str, Any] = {
        "format": RUN_FORMAT,
        "status": "running",
        "fingerprint": fp,
        "started": previous.get("started", started) if previous else started,
        "ended": None,
        "index_path": str(run.index.path),
        "settings": run.settings.model_dump(mode="json"),
        "medcite": _version(),
        "python": sys.version.split()[0],
        "sessions": [*(previous.get("sessions", []) if previous else []), session],
    }
    write_atomic(root / RUN, json.dumps(meta, indent=2) + "\n")
    return _RunState(root, items, answered, failures, todo, meta, session)


def _record(state: _RunState, results: Iterator[BatchResult], progress: bool) -> tuple[int, int]:
    """Append each result to its log as it comes; returns (answers, failures) written this session."""
    new_answers = new_failures = 0
    answers_log, failures_log = Appender(state.root / ANSWERS), Appender(state.root / FAILURES)
    bar = tqdm(total=len(state.todo), unit="q", desc="answering", disable=not progress or not state.todo, smoothing=0.1)
    try:
        for result in results:
            if result.ok:
                answers_log.append(answer_record(result))
                state.answered.add(result.id)
                state.failures.pop(result.id, None)
                new_answers += 1
            else:
                rec = failure_record(result)
                failures_log.append(rec)
                state.failures[result.id] = rec
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
    return new_answers, new_failures


def _finish(state: _RunState, new_answers: int, new_failures: int, seconds: float) -> BatchSummary:
    """Rewrite the failures still open, sum the folder up, and close the session in ``run.json``."""
    root, answered, failures = state.root, state.answered, state.failures
    # Keep only the failures still unanswered: the last record of each (atomically; the log had them all).
    still = [r for k, r in failures.items() if k not in answered]
    if still:
        write_atomic(root / FAILURES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in still))
    elif (root / FAILURES).exists():
        (root / FAILURES).unlink()
        fsync_dir(root)
    rows = read_log(root / ANSWERS)
    wanted = {q.id for q in state.items}
    summary = BatchSummary(
        out=root,
        questions=len(state.items),
        answered=sum(1 for r in rows if r["id"] in wanted),
        failed=sum(1 for k in failures if k in wanted and k not in answered),
        pending=sum(1 for q in state.items if q.id not in answered and q.id not in failures),
        new_answers=new_answers,
        new_failures=new_failures,
        skipped=state.skipped,
        sections_abstained=sum(int(s.get("abstained", False)) for r in rows for s in r.get("sections", [])),
        answers_abstained=sum(1 for r in rows if r.get("sections") and all(s.get("abstained") for s in r["sections"])),
        seconds=seconds,
        failed_ids=[k for k in failures if k in wanted and k not in answered],
    )
    state.session.update(
        {"ended": now(), "answered": new_answers, "failed": new_failures, "seconds": round(summary.seconds, 3)}
    )
    counted = ("questions", "answered", "failed", "pending", "sections_abstained", "answers_abstained")
    state.meta.update(
        {
            "status": "done" if summary.pending == 0 and summary.failed == 0 else "incomplete",
            "ended": state.session["ended"],
            "counts": {k: getattr(summary, k) for k in counted},
            "seconds_per_answer": summary.to_dict()["seconds_per_answer"],
        }
    )
    write_atomic(root / RUN, json.dumps(state.meta, indent=2) + "\n")
    return summary


def _version() -> str:
    try:
        return version("medcite")
    except PackageNotFoundError:
        return "unknown"
