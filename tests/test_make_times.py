"""``scripts/timed.sh``, which times the steps of ``make demo`` (and ``scripts/requirements.py``, which it installs from)."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_an_overlapped_step_is_tabled_but_not_in_the_total(tmp_path: Path) -> None:
    log = tmp_path / "times.tsv"
    assert _timed(log, "--overlapped", "compile in the background", "sh", "-c", "sleep 1").returncode == 0
    assert _timed(log, "build the index", "sh", "-c", "sleep 1").returncode == 0
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    assert [(r[0], r[3]) for r in rows] == [("compile in the background", "overlapped"), ("build the index", "")]
    table = _timed(log, "--table").stdout.splitlines()
    assert "in the background" in table[0] and "in the background" not in table[1]
    assert int(table[-1].split()[1]) == int(rows[1][1])  # the foreground step only


def test_requirements_leave_out_what_is_asked(tmp_path: Path) -> None:
    script = SCRIPT.parent / "requirements.py"
    run = subprocess.run(
        [sys.executable, str(script), "--without", "llama_cpp_python", "--extras", "ray"],
        capture_output=True,
        text=True,
        check=True,
    )
    reqs = run.stdout.splitlines()
    assert "torch==2.13.0" in reqs and "ray==2.60.0" in reqs
    assert not any(r.lower().startswith("llama") for r in reqs)  # the name is matched as PEP 503 normalises it
    assert not any(r.startswith("pytest") for r in reqs)  # dev not asked for
    bad = subprocess.run([sys.executable, str(script), "--without", "nothing-like-it"], capture_output=True, text=True)
    assert bad.returncode != 0 and "not a requirement of medcite" in bad.stderr
