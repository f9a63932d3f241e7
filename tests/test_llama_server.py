"""medcite against a real OpenAI-compatible server: llama-cpp-python's ``llama_cpp.server`` serving the bundled GGUF.

What users run as "their own server", started as a process on 127.0.0.1: ``medcite ask --generator openai`` and
``medcite eval --judge openai`` through the command line, and two concurrent requests, which this server answers by
cutting the first stream short (its default ``interrupt_requests``). About two minutes on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ReplyError
from pipeline.generate.backends import OpenAIBackend
from pipeline.models import bundled_gguf
from pipeline.settings import LlamaSettings
from tests.processes import free_port, wait_until_up
from tests.test_integration import SEED, _check_answer_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gguf = bundled_gguf(LlamaSettings().cache_dir)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
             str(port), "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "bundled"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(proc, f"{url}/models", log, seconds=180, what="llama_cpp.server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _env(monkeypatch: pytest.MonkeyPatch, url: str, **more: str) -> None:
    values = {
        "MEDCITE_OPENAI__BASE_URL": url,
        "MEDCITE_OPENAI__MODEL": "bundled",
        "MEDCITE_OPENAI__STRUCTURED": "json_object",  # what llama.cpp's server takes
        "MEDCITE_OPENAI__MAX_TOKENS": "240",
        "MEDCITE_ANSWER__K_GUIDELINE": "2",
        "MEDCITE_ANSWER__K_RESEARCH": "2",
    } | more
    for k, v in values.items():
        monkeypatch.setenv(k, v)


def test_ask_and_eval_against_a_real_llama_cpp_server(
    llama_server: str, real_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    _env(monkeypatch, llama_server, MEDCITE_OPENAI__STRUCTURED="json_schema")
    refused = runner.invoke(app, ["ask", SEED, "-i", str(real_index), "-g", "openai", "-f", "json"])
    assert refused.exit_code == 6 and "MEDCITE_OPENAI__STRUCTURED" in refused.output, refused.output

    _env(monkeypatch, llama_server)
    result = runner.invoke(app, ["ask", SEED, "-i", str(real_index), "-g", "openai", "-f", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    _check_answer_json(answer, SEED)
    stats = answer["stats"]
    checked = stats.get("quotes_found", 0) + stats.get("quotes_moved", 0) + stats.get("quotes_not_found", 0)
    assert checked >= 1, f"the server's statements carry quotes that were checked: {stats}"
    for section in answer["sections"]:  # written, abstained or failed: never a failure passed off as abstention
        text = " ".join(i["text"] for b in section["blocks"] for i in b["items"])
        if section["abstained"] and "could not be written" not in text:
            assert "addresses this question" in text
    for block in (b for s in answer["sections"] for b in s["blocks"]):
        for item in block["items"]:
            assert "quote" not in item or item["citations"], "a shown quote belongs to a cited statement"

    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps(answer) + "\n", encoding="utf-8")
    ev = runner.invoke(
        app, ["eval", str(answers), "--out", str(tmp_path / "ev"), "--judge", "openai", "--no-cache", "--json"]
    )
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["answers"] == 1


def test_two_concurrent_streams_never_lose_text_silently(llama_server: str) -> None:
    backend = OpenAIBackend(llama_server, "bundled", structured="json_object")
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    messages = [{"role": "user", "content": "Name three colours of the rainbow. Answer with JSON only."}]
    outcomes: list[str] = []

    def one() -> None:
        try:
            text = "".join(backend.stream(messages, schema, 60))
            json.loads(text)  # whole: the reply ended with finish_reason "stop"
            outcomes.append("complete")
        except ReplyError as e:  # cut short: medcite says so (and retries a section once)
            outcomes.append(e.reason)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.3)
    for t in threads:
        t.join(timeout=240)
    assert sorted(outcomes) in (["complete", "complete"], ["complete", "interrupted"]), outcomes
