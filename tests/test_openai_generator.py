"""The openai generator against a real local server process (a stand-in, started by the test)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import Settings
from pipeline.answer import ask
from pipeline.errors import GenerationError
from pipeline.generate import make_generator
from tests.fakes import hashed_index
from tests.test_answer import SETTINGS, Q, _docs


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("standin_openai.py")), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().split()[1]
        yield f"http://127.0.0.1:{port}/v1", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)


def _settings(url: str, **openai: object) -> Settings:
    answer = SETTINGS.answer.model_dump() | {"quotes": "check"}  # the stand-in server's points quote the corpus
    return Settings.preset("test", answer=answer, openai={"base_url": url, "model": "m1", **openai})


def test_openai_generator_streams_from_a_server(server: tuple[str, Path], index) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    settings = _settings(url, api_key="k-123")
    answer = ask(Q, index, generator=make_generator("openai", settings, index), settings=settings)
    assert [s.title for s in answer.sections] == ["From the Guidelines", "From the Research"]
    assert (
        answer.sections[0].groups[0].items[0].text
        == "The guideline recommends local therapy for oligoprogressive sites."
    )
    assert answer.sections[1].groups[0].items[0].citations, "valid citation kept"
    assert answer.stats["out_of_range_citations"] == 1, "the server's [7] was dropped and counted"
    assert answer.follow_ups == ("What about RAS-mutant tumours?", "And in elderly patients?")
    assert (answer.run.generator, answer.run.model) == ("openai", "m1")
    reqs = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(reqs) == 3 and all(r["path"] == "/v1/chat/completions" for r in reqs)
    assert reqs[0]["auth"] == "Bearer k-123"
    first = reqs[0]["body"]
    assert first["model"] == "m1" and first["stream"] is True and first["temperature"] == 0.0
    assert first["response_format"]["type"] == "json_schema"
    assert first["messages"][0]["role"] == "system" and "Colon cancer treatment" in first["messages"][1]["content"]
    assert "SBRT for oligoprogressive" not in first["messages"][1]["content"], "guideline call sees guidelines only"


def test_missing_server_is_a_clear_error_not_a_fallback(index) -> None:  # type: ignore[no-untyped-def]
    settings = _settings("http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(GenerationError, match=r"127.0.0.1:9/v1/chat/completions: cannot reach"):
        ask(Q, index, generator=make_generator("openai", settings, index), settings=settings)


def test_server_error_is_reported(server: tuple[str, Path], index) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    settings = _settings(url, api_key="wrong")
    with pytest.raises(GenerationError, match="HTTP 401.*invalid api key"):
        ask(Q, index, generator=make_generator("openai", settings, index), settings=settings)
