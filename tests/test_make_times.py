"""``scripts/timed.sh``, which times the steps of ``make demo``: it keeps each command's exit status and output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "timed.sh"


def _timed(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDCITE_TIMES": str(log)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30)


def test_steps_are_recorded_with_status_and_tabled(tmp_path: Path) -> None:
    log = tmp_path / "times.tsv"
    ok = _timed(log, "say hello", "echo", "hello")
    assert ok.returncode == 0 and ok.stdout == "hello\n"  # the command's own output passes through
    assert "say hello: " in ok.stderr
    failed = _timed(log, "a failing step", "sh", "-c", "exit 3")
    assert failed.returncode == 3  # make must still stop on a failed step
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    # whole seconds by the clock, so a fast step reads 0 or 1
    assert [(r[0], r[2]) for r in rows] == [("say hello", "0"), ("a failing step", "3")]
    assert all(int(r[1]) <= 1 for r in rows)
    table = _timed(log, "--table").stdout.splitlines()
    assert table[0].split()[:2] == ["say", "hello"] and table[0].split()[-1] == "s"
    assert table[1].split()[-2:] == ["failed", "(3)"]
    assert table[-1].split()[0] == "total" and int(table[-1].split()[1]) == sum(int(r[1]) for r in rows)


def test_empty_record_and_bad_usage(tmp_path: Path) -> None:
    log = tmp_path / "none.tsv"
    assert _timed(log, "--table").stdout.startswith("no steps recorded")
    assert _timed(log, "label only").returncode == 2
    assert not log.exists()
