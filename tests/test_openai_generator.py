"""The openai generator against a real local server process (a stand-in, started by the test)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import Settings
from pipeline.answer import CUT_SHORT, WHY, ask
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
        == "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions."
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


# --------------------------------------------------------------------------- what real servers do


def _answer(url: str, index, model: str, **openai: object):  # type: ignore[no-untyped-def]
    settings = _settings(url, model=model, **openai)
    return ask(Q, index, generator=make_generator("openai", settings, index), settings=settings)


def _texts(section) -> list[str]:  # type: ignore[no-untyped-def]
    return [st.text for g in section.groups for st in g.items]


def test_a_server_that_refuses_json_schema_names_the_setting_that_fits_it(server, index) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    with pytest.raises(GenerationError, match="MEDCITE_OPENAI__STRUCTURED.*json_object for llama.cpp") as e:
        _answer(url, index, "llamacpp")
    assert "Unknown response_format type: json_schema" in str(e.value)
    answer = _answer(url, index, "llamacpp", structured="json_object")
    assert not any(s.abstained for s in answer.sections)
    sent = json.loads(log.read_text().splitlines()[-1])["body"]
    assert sent["response_format"]["type"] == "json_object" and "properties" in sent["response_format"]["schema"]


@pytest.mark.parametrize(("mode", "field"), [("ollama", "format"), ("none", None)])
def test_other_structured_output_modes(server, index, mode: str, field: str | None) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    _answer(url, index, "m1", structured=mode)
    sent = json.loads(log.read_text().splitlines()[0])["body"]
    assert "response_format" not in sent
    assert (field in sent) if field else ("format" not in sent)


def test_an_interrupted_reply_is_asked_for_again_once(server, index) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    answer = _answer(url, index, "cut")  # each kind's first stream stops before its first statement
    assert (
        _texts(answer.sections[0])[0] == "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions."
    )
    assert not any(s.abstained for s in answer.sections) and "sections_failed" not in answer.stats
    assert len(log.read_text().splitlines()) == 6, "guideline, research and follow-ups, each asked twice"


def test_a_reply_cut_after_statements_keeps_them_and_says_the_rest_is_missing(server, index) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    answer = _answer(url, index, "cut-always")
    texts = _texts(answer.sections[0])
    assert texts[0] == "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions."
    assert texts[-1] == CUT_SHORT.format(why=WHY["interrupted"])
    assert answer.stats["replies_interrupted"] >= 1 and answer.stats["sections_failed"] >= 1
    assert answer.follow_ups == (), "an interrupted follow-up reply gives none, and the answer stands"


def test_a_reply_cut_at_max_tokens_is_never_a_silent_abstention(server, index) -> None:  # type: ignore[no-untyped-def]
    url, log = server
    answer = _answer(url, index, "length")
    for section in answer.sections:
        text = _texts(section)[-1]
        assert text.endswith(f"{WHY['length']}.") and "addresses this question" not in text
    assert answer.stats["replies_length"] == 2
    tokens = [json.loads(line)["body"]["max_tokens"] for line in log.read_text().splitlines()]
    # The guideline reply was cut after its lead (kept, no retry); the research one before its first statement:
    # asked once more with half again as many tokens. Follow-ups cut short are parsed as far as they got.
    assert tokens == [600, 600, 900, 160]


def test_fenced_follow_ups_give_questions_never_key_names(server, index) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    answer = _answer(url, index, "fenced")
    assert answer.follow_ups == ("What about RAS-mutant tumours?", "And in elderly patients?")


@pytest.mark.parametrize(
    ("reply", "questions"),
    [
        ('{"questions": ["What about RAS-mutant disease?", "Is surgery an option?"]}', 2),
        ('```json\n["What about RAS-mutant disease?", "Is surgery an option?", "And later lines?"]\n```', 3),
        ('[{"question": "What about RAS-mutant disease?", "source": "[1]"}, {"question": "Is surgery an opt', 1),
        ('```json\n[{"question": "What about RAS-mutant disease?", "source": "[2]"}, {"question"', 1),
        ('{"questions": 5}', 0),
        ("I cannot suggest questions.", 0),
    ],
)
def test_parse_follow_ups(reply: str, questions: int) -> None:
    from pipeline.generate.llm import parse_follow_ups

    out = parse_follow_ups(reply)
    assert len(out) == questions and all(q.endswith("?") and q not in ("question", "source") for q in out)


def test_the_command_exits_6_naming_the_setting_and_works_once_it_is_set(server, real_index, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from pipeline.cli import app

    url, _ = server
    monkeypatch.setenv("MEDCITE_OPENAI__BASE_URL", url)
    monkeypatch.setenv("MEDCITE_OPENAI__MODEL", "llamacpp")
    runner = CliRunner()
    refused = runner.invoke(app, ["ask", Q, "-i", str(real_index), "-g", "openai", "-f", "json"])
    assert refused.exit_code == 6, refused.output
    assert "MEDCITE_OPENAI__STRUCTURED" in refused.output
    monkeypatch.setenv("MEDCITE_OPENAI__STRUCTURED", "json_object")
    ok = runner.invoke(app, ["ask", Q, "-i", str(real_index), "-g", "openai", "-f", "json"])
    assert ok.exit_code == 0, ok.output
    assert [s["title"] for s in json.loads(ok.stdout)["sections"]] == ["From the Guidelines", "From the Research"]
