"""A batch's run folder: the append-only answer and failure logs, ``run.json``, and the checks that keep them apart.

``medcite batch questions.jsonl --out runs/NAME`` and :func:`pipeline.run_batch` write::

    runs/NAME/answers.jsonl    one answer per line, in the shape of pipeline.types.to_dict, "id" = the question's id
    runs/NAME/failures.jsonl   one line per question that failed: id, question, error (absent when none failed)
    runs/NAME/run.json         settings, generator, model, prompt hash, index id, start/end, counts

Each answer is appended with one ``write`` and ``fsync``-ed before the next is recorded, so a crash
(SIGKILL included) loses at most the answers in flight.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.answer import Prepared
from pipeline.batch.work import BatchResult
from pipeline.errors import InputError
from pipeline.types import to_dict

log = logging.getLogger(__name__)

ANSWERS = "answers.jsonl"
FAILURES = "failures.jsonl"
RUN = "run.json"
RUN_FORMAT = 1


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fsync_dir(path: Path) -> None:
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_log(path: Path) -> list[dict[str, Any]]:
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


class Appender:
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
    """The ``answers.jsonl`` line of a result: :func:`pipeline.types.to_dict` of its answer (id = the question's)."""
    if result.answer is None:
        raise ValueError(f"question {result.id} has no answer to record")
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
        "failed_at": now(),
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


def run_fingerprint(run: Prepared) -> dict[str, Any]:
    """What must not change between the sessions of one run: anything that would change its answers."""
    judge = run.verifier
    return {
        "settings_hash": run.settings.hash(),
        "index_id": run.index.id,
        "generator": run.generator.name,
        "model": run.generator.model,
        "prompt_hash": run.generator.prompt_hash,
        "audience": run.audience or run.settings.answer.audience,
        "verify": (
            {
                "judge": judge.name,
                "fingerprint": judge.fingerprint(),
                "threshold": judge.threshold,
                "action": run.verify_action,
            }
            if judge is not None
            else None
        ),
    }


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[object, object]]:
    return {k: (old.get(k), new[k]) for k in new if old.get(k) != new[k]}


def from_answers(answers: Sequence[Mapping[str, Any]], fp: Mapping[str, Any]) -> dict[str, tuple[object, object]]:
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


def read_run(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e}); restore it, or pass --force to start the run over") from None
    if not isinstance(run, dict):
        raise InputError(f"{path}: not a medcite run record; restore it, or pass --force to start the run over")
    return run


def move_aside(out: Path) -> Path:
    dest = out / f"previous-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    dest.mkdir()
    for name in (ANSWERS, FAILURES, RUN):
        if (out / name).exists():
            shutil.move(str(out / name), str(dest / name))
    fsync_dir(out)
    return dest
