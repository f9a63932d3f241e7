"""``medcite serve`` as a real process over a real index (the bundled MiniLM; the bundled model where named):
20 concurrent questions, the queue limit with llama, and kill -9 mid-answer then restart.

Latencies are printed, not asserted (a benchmark's business: ``python -m eval.bench_serve``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, wait_until_up

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is the treatment for stage III colon cancer?",
    "Is adjuvant chemotherapy recommended for stage II colon cancer?",
    "What is the role of oxaliplatin in colon cancer?",
    "How is metastatic colorectal cancer treated?",
    "What are the risk factors for colorectal cancer?",
    "Is laparoscopic colectomy as safe as open colectomy?",
    "What follow-up is recommended after colon cancer surgery?",
    "What is the prognosis of colon cancer with lymph node metastases?",
    "Does aspirin reduce colorectal cancer recurrence?",
    "When is radiotherapy used in colon cancer?",
    "What is the role of CEA after colon cancer resection?",
    "How are liver metastases from colorectal cancer managed?",
    "Is capecitabine an alternative to fluorouracil?",
    "What is microsatellite instability in colon cancer?",
    "Are elderly patients given adjuvant chemotherapy for colon cancer?",
    "What is the role of bevacizumab in metastatic colorectal cancer?",
    "Does obesity affect colon cancer outcomes?",
    "What staging system is used for colon cancer?",
    "How common is colorectal cancer in young adults?",
    "What is the treatment of colon cancer with bowel obstruction?",
]


@contextmanager
def serving(index: Path, data: Path, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``medcite serve`` in its own process until the block ends (or the test kills it)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDCITE_LLAMA__N_THREADS": "2"}
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", "--index", str(index), "--data", str(data),
             "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/healthz", log, seconds=120, what="medcite serve")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def _ask(url: str, question: str, timeout: float = 600) -> tuple[float, int, list[tuple[str, dict[str, Any]]]]:
    t0 = time.monotonic()
    r = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=timeout)
    seconds = time.monotonic() - t0
    return seconds, r.status_code, _events(r.text) if r.status_code == 200 else [("error", r.json())]


def test_twenty_concurrent_questions_are_all_answered_and_stored_once(real_index: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(real_index, data, tmp_path / "serve.log", "--generator", "extractive") as (url, _):
        _ask(url, "What is colon cancer?")  # the models load on the first question, outside the figures
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            results = list(pool.map(lambda q: _ask(url, q), QUESTIONS))
        health = httpx.get(f"{url}/healthz").json()
    codes = [code for _, code, _ in results]
    assert codes == [200] * len(QUESTIONS), [evs for _, code, evs in results if code != 200]
    ids = [evs[-1][1]["id"] for _, _, evs in results]
    assert all(evs[-1][0] == "done" for _, _, evs in results)
    assert len(set(ids)) == len(QUESTIONS)
    assert health == {"ok": True, "pending": 0, "answers": len(QUESTIONS) + 1}
    with sqlite3.connect(data / "medcite.sqlite") as db:
        rows = db.execute("SELECT asked, count(*) FROM answers GROUP BY asked").fetchall()
    assert sorted(rows) == sorted([(q, 1) for q in QUESTIONS] + [("What is colon cancer?", 1)])
    seconds = sorted(s for s, _, _ in results)
    p50, p95 = statistics.median(seconds), seconds[int(0.95 * (len(seconds) - 1))]
    print(f"\n20 concurrent extractive questions: p50 {p50:.1f} s, p95 {p95:.1f} s, max {seconds[-1]:.1f} s")


def test_llama_queue_full_is_503_and_kill_9_mid_answer_loses_nothing_finished(real_index: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with serving(real_index, data, log, "--generator", "extractive") as (url, _):
        _, code, first = _ask(url, "What is the treatment for stage III colon cancer?")
    assert code == 200 and first[-1][0] == "done", first[-1]
    finished = first[-1][1]["id"]
    with serving(real_index, data, log, "--generator", "llama", "--queue", "1") as (url, proc):
        # One answer running, one waiting: the next question is refused at once, not left hanging.
        question = "Is adjuvant chemotherapy recommended for stage II colon cancer?"
        with (
            httpx.Client(timeout=600) as client,
            client.stream("POST", f"{url}/api/ask", json={"question": question}) as running,
        ):
            assert running.status_code == 200
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(_ask, url, "How is metastatic colorectal cancer treated?", 600)
                deadline = time.monotonic() + 30
                while httpx.get(f"{url}/healthz").json()["pending"] < 2:
                    assert time.monotonic() < deadline, "the second question never queued"
                    time.sleep(0.2)
                t0 = time.monotonic()
                refused = httpx.post(f"{url}/api/ask", json={"question": "What are the risk factors?"}, timeout=30)
                assert refused.status_code == 503 and time.monotonic() - t0 < 10
                assert int(refused.headers["retry-after"]) >= 1
                # Mid-answer: the running question has started; kill the server without warning.
                seen = ""
                for text in running.iter_text():
                    seen += text
                    if "event: start" in seen:
                        break
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                with pytest.raises(httpx.HTTPError):  # the server is gone
                    waiting.result(timeout=60)
    with sqlite3.connect(data / "medcite.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with serving(real_index, data, log, "--generator", "extractive") as (url, _):
        assert httpx.get(f"{url}/healthz").json()["answers"] == 1, "the finished answer, and no half of another"
        kept = httpx.get(f"{url}/api/answers/{finished}").json()
        assert kept["id"] == finished and kept["sections"] and kept["review"]["status"] == "submitted"
