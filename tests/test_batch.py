"""Batch answers: questions files, the run folder, resume after a crash, failure isolation, batched retrieval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import Settings, open_index
from pipeline.answer import ask
from pipeline.batch import (
    ANSWERS,
    FAILURES,
    RUN,
    BatchIndex,
    Question,
    ask_many,
    question_id,
    read_questions,
    run_batch,
)
from pipeline.errors import GenerationError, InputError, RunMismatchError
from pipeline.generate import SectionRequest, make_generator
from pipeline.types import Block, Document, from_dict, to_dict
from tests.fakes import HashingEmbedder, KeywordJudge, hashed_index

SETTINGS = Settings.preset(
    "test", answer={"min_relevance": 0.2, "min_source_score": 0.0, "k_guideline": 3, "k_research": 3}
)
TOPICS = [
    ("radiotherapy", "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions."),
    ("chemotherapy", "FOLFOX chemotherapy treats metastatic colorectal cancer after surgery."),
    ("surgery", "Surgical resection of liver metastases improves survival in colorectal cancer."),
    ("screening", "Colonoscopy screening every ten years reduces colorectal cancer mortality."),
    ("aspirin", "Aspirin reduced colorectal adenoma recurrence in randomised trials."),
]
QUESTIONS = [f"What is the role of {t} in colorectal cancer?" for t, _ in TOPICS] + [
    f"Does {t} help patients with colorectal cancer?" for t, _ in TOPICS
]


def _docs() -> list[Document]:
    docs = [
        Document(
            id=f"g-{t}",
            kind="guideline",
            title=f"Colorectal cancer: {t}",
            source="NCI",
            year=2025,
            blocks=(Block(f"{text} {text.replace('treats', 'is used for')}", heading=t.title()),),
        )
        for t, text in TOPICS
    ]
    docs += [
        Document(
            id=f"pmid:{i}",
            kind="research",
            title=f"A trial of {t} in colorectal cancer",
            source="J Onc",
            year=2020,
            pmid=str(i),
            blocks=(
                Block(f"In this trial, {text[0].lower()}{text[1:]} Patients with colorectal cancer were followed."),
            ),
        )
        for i, (t, text) in enumerate(TOPICS, start=1)
    ]
    return docs


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)


class FlakyGenerator:
    """The extractive generator, except that questions containing ``fail_on`` raise (a broken model call)."""

    def __init__(self, inner, fail_on: str = "BOOM") -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self.fail_on = fail_on
        self.asked: list[str] = []

    @property
    def model(self) -> str:
        return str(self.inner.model)

    @property
    def prompt_hash(self) -> str:
        return str(self.inner.prompt_hash)

    def draft_section(self, request: SectionRequest) -> Iterator:  # type: ignore[type-arg]
        self.asked.append(request.question)
        if self.fail_on and self.fail_on in request.question:
            raise GenerationError(f"the model server dropped the connection on {request.question!r}")
        return self.inner.draft_section(request)

    def follow_ups(self, question, sources, audience):  # type: ignore[no-untyped-def]
        return self.inner.follow_ups(question, sources, audience)


def _lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


def _content(record: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in record.items() if k != "stats"} | {"stats": record["stats"]}


# --------------------------------------------------------------------------- questions files


def test_reads_jsonl_and_csv_with_ids_and_audiences(tmp_path: Path) -> None:
    jl = tmp_path / "q.jsonl"
    jl.write_text(
        json.dumps({"id": "a1", "question": "What is FOLFOX?"})
        + "\n\n"
        + json.dumps({"question": "What is aspirin for?", "audience": "patient"})
        + "\n"
        + json.dumps({"id": 7, "question": "Why screen?"})
        + "\n"
    )
    items = read_questions(jl)
    assert [(q.id, q.question, q.audience, q.row) for q in items] == [
        ("a1", "What is FOLFOX?", None, 1),
        (question_id("What is aspirin for?", "patient"), "What is aspirin for?", "patient", 3),
        ("7", "Why screen?", None, 4),
    ]
    assert question_id("What is aspirin for?", "patient") != question_id("What is aspirin for?")
    assert question_id(" Why screen? ") == question_id("Why screen?"), "ids do not depend on stray spaces"

    csv_path = tmp_path / "q.csv"
    csv_path.write_text('\ufeffID,Question,audience\nx,"What is FOLFOX, and when?",\n,Why screen?,patient\n')
    items = read_questions(csv_path)
    assert [(q.id, q.question, q.audience, q.row) for q in items] == [
        ("x", "What is FOLFOX, and when?", None, 2),
        (question_id("Why screen?", "patient"), "Why screen?", "patient", 3),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "q.jsonl",
            '{"id": "a", "question": "x?"}\n{"question": "y?"}\n{"id": "a", "question": "z?"}\n',
            "'a' on rows 1, 3",
        ),
        ("q.jsonl", '{"question": "x?"}\n{"question": "x?"}\n', "on rows 1, 2"),
        ("q.jsonl", '{"question": "x?"}\n{"question": \n', "q.jsonl:2: not valid JSON"),
        ("q.jsonl", '["x?"]\n', "q.jsonl:1: each line must be a JSON object"),
        ("q.csv", "id,text\n1,x?\n", "'question'"),
        ("q.txt", "x?\n", ".jsonl file"),
    ],
)
def test_bad_questions_files_are_refused_before_anything_runs(tmp_path: Path, name, content, message) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(InputError) as e:
        read_questions(p)
    assert message in str(e.value)


# --------------------------------------------------------------------------- ask_many


def test_ask_many_matches_ask_and_batches_retrieval(index) -> None:  # type: ignore[no-untyped-def]
    gen = make_generator("extractive", SETTINGS, index)
    results = list(ask_many(QUESTIONS, index, generator=gen, settings=SETTINGS, retrieval_batch=4))
    assert [r.question.question for r in results] == QUESTIONS
    assert all(r.ok for r in results)
    for r in results:
        plain = ask(r.question.question, index, generator=gen, settings=SETTINGS)
        assert r.answer is not None and r.answer.id == question_id(r.question.question)
        assert to_dict(r.answer) | {"id": None} == to_dict(plain) | {"id": None}
    assert any(not s.abstained for r in results for s in r.answer.sections)  # type: ignore[union-attr]

    # The batched index gives the plain index's hits, and embeds a chunk of questions in one call.
    emb = HashingEmbedder()
    plain_ix = open_index(index.path, settings=SETTINGS, embedder=emb)
    bix = BatchIndex.wrap(plain_ix)
    emb.encoded.clear()
    bix.prefetch(QUESTIONS[:4], {"guideline": 3, "research": 3})
    assert emb.encoded == QUESTIONS[:4], "one embedding batch for the chunk, shared by both kinds"
    ids = [c.id for c in plain_ix.chunks]
    batched = {q: [bix.search(q, 3, kind=k) for k in ("guideline", "research")] for q in QUESTIONS[:4]}
    sims = {q: list(bix.similarity(q, ids)) for q in QUESTIONS[:4]}
    assert emb.encoded == QUESTIONS[:4], "searches and similarities of prefetched questions embed nothing more"
    for q in QUESTIONS[:4]:
        assert batched[q] == [plain_ix.search(q, 3, kind=k) for k in ("guideline", "research")]
        assert sims[q] == list(plain_ix.similarity(q, ids))
    bix.forget(QUESTIONS[:4])
    assert bix.search(QUESTIONS[0], 3, kind="guideline") == plain_ix.search(QUESTIONS[0], 3, kind="guideline")


def test_ask_many_threads_give_the_same_answers(index) -> None:  # type: ignore[no-untyped-def]
    gen = make_generator("extractive", SETTINGS, index)
    one = {r.id: to_dict(r.answer) for r in ask_many(QUESTIONS, index, generator=gen, settings=SETTINGS)}  # type: ignore[arg-type]
    many = {
        r.id: to_dict(r.answer)  # type: ignore[arg-type]
        for r in ask_many(QUESTIONS, index, generator=gen, settings=SETTINGS, workers=3, retrieval_batch=3)
    }
    assert one == many


def test_ask_many_keeps_going_past_a_failing_question(index) -> None:  # type: ignore[no-untyped-def]
    gen = FlakyGenerator(make_generator("extractive", SETTINGS, index))
    qs = [
        {"id": "ok1", "question": QUESTIONS[0]},
        {"id": "bad", "question": "BOOM colorectal cancer?"},
        "",
        QUESTIONS[1],
    ]
    results = {r.id: r for r in ask_many(qs, index, generator=gen, settings=SETTINGS)}
    assert results["ok1"].ok and results[question_id(QUESTIONS[1])].ok
    bad = results["bad"]
    assert (
        not bad.ok and bad.error_type == "GenerationError" and bad.retryable and "dropped the connection" in bad.error
    )  # type: ignore[operator]
    empty = results[question_id("")]
    assert empty.error_type == "InputError" and "question is empty" in empty.error  # type: ignore[operator]
    with pytest.raises(InputError, match="duplicate question ids"):
        ask_many([QUESTIONS[0], QUESTIONS[0]], index, generator=gen)


class CountingBackend:
    """A chat backend that takes a while per call and records how many calls ran at once (an openai server)."""

    model = "counting"

    def __init__(self, delay: float = 0.05) -> None:
        import threading

        self.delay = delay
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def stream(self, messages, schema, max_tokens):  # type: ignore[no-untyped-def]
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.delay)
            props = schema.get("properties", {})
            point = {"text": "Colorectal cancer treatment is described.", "cite": [1]}
            if "questions" in props:
                reply = {"questions": ["What next?", "And then?"]}
            elif "lead" in props:
                reply = {"lead": [point], "groups": [{"heading": "Therapy", "points": [point]}]}
            else:
                reply = {"groups": [{"heading": "", "points": [point]}]}
            yield json.dumps(reply)
        finally:
            with self.lock:
                self.now -= 1


def test_openai_requests_run_in_parallel_but_bounded(index) -> None:  # type: ignore[no-untyped-def]
    from pipeline.generate import LLMGenerator

    backend = CountingBackend()
    gen = LLMGenerator(backend, name="openai")  # type: ignore[arg-type]
    settings = Settings.preset(
        "test",
        answer={"min_relevance": 0.2, "min_source_score": 0.0, "k_guideline": 3, "k_research": 3},
        openai={"max_concurrency": 3},
    )
    results = list(ask_many(QUESTIONS, index, generator=gen, settings=settings, retrieval_batch=4))
    assert all(r.ok for r in results) and len(results) == len(QUESTIONS)
    assert backend.most == 3, "openai.max_concurrency questions at once by default"
    backend.most = 0
    list(ask_many(QUESTIONS[:4], index, generator=gen, settings=settings, workers=2))
    assert backend.most == 2
    backend.most = 0
    list(ask_many(QUESTIONS[:4], index, generator=LLMGenerator(backend, name="llama"), settings=settings, workers=4))  # type: ignore[arg-type]
    assert backend.most == 1, "one local llama model answers one question at a time"


# --------------------------------------------------------------------------- run folder


def test_run_folder_shape_and_eval_reads_it(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eval.faithfulness import evaluate

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    out = tmp_path / "runs" / "one"
    summary = run_batch(qfile, out, index, generator="extractive", settings=SETTINGS, progress=False)
    assert (summary.answered, summary.failed, summary.pending, summary.new_answers) == (len(QUESTIONS), 0, 0, 10)
    rows = _lines(out / ANSWERS)
    assert sorted(r["id"] for r in rows) == sorted(f"q{i}" for i in range(len(QUESTIONS)))
    for r in rows:
        a = from_dict(r)
        assert a.id == r["id"] and a.run.generator == "extractive" and a.run.index_id == index.id
    assert not (out / FAILURES).exists()
    run = json.loads((out / RUN).read_text())
    assert run["status"] == "done" and run["counts"]["answered"] == len(QUESTIONS)
    assert run["fingerprint"]["settings_hash"] == SETTINGS.hash() and run["fingerprint"]["index_id"] == index.id
    assert run["fingerprint"]["generator"] == "extractive" and run["fingerprint"]["prompt_hash"] == "none"
    assert run["started"] <= run["ended"] and run["sessions"][0]["answered"] == len(QUESTIONS)
    assert summary.sections_abstained == sum(s["abstained"] for r in rows for s in r["sections"])
    assert "10 of 10 questions answered" in summary.summary()

    evaluated = evaluate(out / ANSWERS, tmp_path / "eval", KeywordJudge())
    assert evaluated["answers"] == len(QUESTIONS) and evaluated["overall"]["statements"] > 0

    again = run_batch(qfile, out, index, generator="extractive", settings=SETTINGS, progress=False)
    assert (again.new_answers, again.skipped, again.answered) == (0, len(QUESTIONS), len(QUESTIONS))
    assert len(_lines(out / ANSWERS)) == len(QUESTIONS)


def test_failures_are_recorded_and_retried_only_when_asked(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qs = [{"id": f"q{i}", "question": q} for i, q in enumerate(QUESTIONS[:4])] + [
        {"id": "boom", "question": "BOOM: radiotherapy for colorectal cancer?"},
        {"id": "who", "question": QUESTIONS[5], "audience": "martian"},
    ]
    out = tmp_path / "run"
    flaky = FlakyGenerator(make_generator("extractive", SETTINGS, index))
    s = run_batch(qs, out, index, generator=flaky, settings=SETTINGS, progress=False)
    assert (s.answered, s.failed, s.new_failures) == (4, 2, 2) and sorted(s.failed_ids) == ["boom", "who"]
    fails = {r["id"]: r for r in _lines(out / FAILURES)}
    assert set(fails) == {"boom", "who"}
    assert fails["boom"]["error_type"] == "GenerationError" and fails["boom"]["retryable"] is True
    assert "martian" in fails["who"]["error"] and fails["who"]["retryable"] is False
    assert json.loads((out / RUN).read_text())["status"] == "incomplete"
    assert {r["id"] for r in _lines(out / ANSWERS)} == {"q0", "q1", "q2", "q3"}

    flaky.asked.clear()
    s = run_batch(qs, out, index, generator=flaky, settings=SETTINGS, progress=False)
    assert flaky.asked == [] and (s.new_answers, s.new_failures, s.failed) == (0, 0, 2), "failed ones wait for --retry"

    fixed = FlakyGenerator(make_generator("extractive", SETTINGS, index), fail_on="")
    s = run_batch(qs, out, index, generator=fixed, settings=SETTINGS, progress=False, retry_failed=True)
    assert set(fixed.asked) == {"BOOM: radiotherapy for colorectal cancer?"}, "only the failed questions are asked"
    assert (s.new_answers, s.failed) == (1, 1), "the bad audience still fails; the model error is answered"
    ids = [r["id"] for r in _lines(out / ANSWERS)]
    assert sorted(ids) == ["boom", "q0", "q1", "q2", "q3"] and len(ids) == len(set(ids))
    assert [r["id"] for r in _lines(out / FAILURES)] == ["who"], "compacted to the questions still failing"


def test_resume_cuts_a_torn_line_and_answers_each_question_once(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qs = [{"id": f"q{i}", "question": q} for i, q in enumerate(QUESTIONS)]
    out = tmp_path / "run"
    run_batch(qs[:3], out, index, generator="extractive", settings=SETTINGS, progress=False)
    whole = (out / ANSWERS).read_bytes()
    # What a crash in the middle of writing the fourth answer leaves behind.
    (out / ANSWERS).write_bytes(whole + b'{"id": "q3", "question": "What is the ro')
    s = run_batch(qs, out, index, generator="extractive", settings=SETTINGS, progress=False)
    assert (s.new_answers, s.skipped, s.answered) == (len(QUESTIONS) - 3, 3, len(QUESTIONS))
    data = (out / ANSWERS).read_bytes()
    assert data.startswith(whole) and data.endswith(b"\n")
    ids = [r["id"] for r in _lines(out / ANSWERS)]
    assert sorted(ids) == sorted(q["id"] for q in qs) and len(ids) == len(set(ids))


def test_resume_refuses_other_settings_unless_forced(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    run_batch(QUESTIONS[:2], out, index, generator="extractive", settings=SETTINGS, progress=False)
    other = Settings.preset("test", answer={"min_relevance": 0.2, "min_source_score": 0.0, "k_guideline": 2})
    with pytest.raises(RunMismatchError) as e:
        run_batch(QUESTIONS[:3], out, index, generator="extractive", settings=other, progress=False)
    assert "settings_hash" in str(e.value) and "--force" in str(e.value)
    with pytest.raises(RunMismatchError, match="audience"):
        run_batch(
            QUESTIONS[:3], out, index, generator="extractive", settings=SETTINGS, audience="patient", progress=False
        )
    assert len(_lines(out / ANSWERS)) == 2, "a refused run writes nothing"
    s = run_batch(QUESTIONS[:3], out, index, generator="extractive", settings=other, progress=False, force=True)
    assert s.new_answers == 3
    moved = list(out.glob("previous-*/answers.jsonl"))
    assert len(moved) == 1 and len(_lines(moved[0])) == 2
    assert {r["run"]["settings_hash"] for r in _lines(out / ANSWERS)} == {other.hash()}


def test_verification_runs_per_answer_and_is_part_of_the_run(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.preset(
        "test",
        answer={"min_relevance": 0.2, "min_source_score": 0.0, "k_guideline": 3, "k_research": 3},
        judge={"cache": None},
    )
    out = tmp_path / "run"
    s = run_batch(
        QUESTIONS[:3], out, index, generator="extractive", settings=settings, verifier="lexical", progress=False
    )
    assert s.new_answers == 3
    rows = _lines(out / ANSWERS)
    assert all(r["verification"]["judge"] == "lexical" and r["verification"]["checked"] > 0 for r in rows)
    assert json.loads((out / RUN).read_text())["fingerprint"]["verify"]["judge"] == "lexical"
    with pytest.raises(RunMismatchError, match="verify"):
        run_batch(QUESTIONS[:4], out, index, generator="extractive", settings=settings, progress=False)


def test_damaged_run_files_are_named_not_guessed(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    run_batch(QUESTIONS[:2], out, index, generator="extractive", settings=SETTINGS, progress=False)
    good = (out / ANSWERS).read_text()
    (out / ANSWERS).write_text("not json\n" + good)
    with pytest.raises(InputError, match="answers.jsonl:1: not valid JSON"):
        run_batch(QUESTIONS[:2], out, index, generator="extractive", settings=SETTINGS, progress=False)
    (out / ANSWERS).write_text(good)
    (out / RUN).write_text("{")
    with pytest.raises(InputError, match="run.json: unreadable"):
        run_batch(QUESTIONS[:2], out, index, generator="extractive", settings=SETTINGS, progress=False)
    s = run_batch(QUESTIONS[:2], out, index, generator="extractive", settings=SETTINGS, progress=False, force=True)
    assert s.new_answers == 2 and len(list(out.glob("previous-*/run.json"))) == 1


def test_a_second_writer_is_refused(index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from filelock import FileLock

    out = tmp_path / "run"
    out.mkdir()
    with FileLock(str(out / ".lock")):
        with pytest.raises(InputError, match="another medcite batch"):
            run_batch(QUESTIONS[:1], out, index, generator="extractive", settings=SETTINGS, progress=False)


def test_questions_as_objects(index) -> None:  # type: ignore[no-untyped-def]
    gen = make_generator("extractive", SETTINGS, index)
    r = list(ask_many([Question("x", QUESTIONS[0], "patient")], index, generator=gen, settings=SETTINGS))
    assert r[0].id == "x" and r[0].answer is not None and r[0].answer.audience == "patient"
    with pytest.raises(InputError, match="workers"):
        ask_many(QUESTIONS, index, generator=gen, workers=0)


# --------------------------------------------------------------------------- the CLI, with the real model


def _bank(n: int) -> list[dict[str, str]]:
    stages = ["stage 0", "stage I", "stage II", "stage III", "stage IV", "recurrent", "metastatic", "oligometastatic"]
    topics = ["treatment", "chemotherapy", "surgery", "follow-up", "radiotherapy"]
    qs = [f"What is the {t} for {s} colon cancer?" for s in stages for t in topics]
    return [{"id": f"q{i:03d}", "question": q} for i, q in enumerate(qs[:n])]


def _medcite(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


@pytest.mark.slow
def test_kill_and_resume_with_a_real_subprocess(real_index: Path, tmp_path: Path) -> None:
    bank = _bank(24)
    qfile = tmp_path / "bank.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in bank))
    out = tmp_path / "runs" / "bank"
    cmd = _medcite("batch", str(qfile), "--out", str(out), "-i", str(real_index), "-g", "extractive", "-q")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    err = tmp_path / "stderr.txt"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    answers = out / ANSWERS
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if answers.exists() and answers.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = answers.read_bytes().count(b"\n") if answers.exists() else 0
    assert 4 <= killed_at < len(bank), f"killed after {killed_at} answers; stderr: {err.read_text()[-2000:]}"
    assert json.loads((out / RUN).read_text())["status"] == "running"

    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["skipped"] == killed_at and summary["new_answers"] == len(bank) - killed_at
    lines = answers.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses: no torn line survived
    assert sorted(r["id"] for r in records) == [q["id"] for q in bank], "every question answered exactly once"
    by_id = {q["id"]: q["question"] for q in bank}
    assert all(r["question"] == by_id[r["id"]] and r["run"]["generator"] == "extractive" for r in records)
    assert json.loads((out / RUN).read_text())["status"] == "done"


@pytest.mark.slow
def test_cli_batch_from_csv_then_eval(real_index: Path, tmp_path: Path) -> None:
    from pipeline.cli import app

    qfile = tmp_path / "bank.csv"
    qfile.write_text(
        "id,question,audience\n"
        + "".join(f'{q["id"]},"{q["question"]}",\n' for q in _bank(4))
        + "p1,What is the treatment for stage III colon cancer?,patient\n"
        + "off,How do I tune a guitar string?,\n"
        + "bad,What is FOLFOX?,martian\n"
    )
    out = tmp_path / "runs" / "csv"
    runner = CliRunner()
    result = runner.invoke(
        app, ["batch", str(qfile), "--out", str(out), "-i", str(real_index), "-g", "extractive", "-q"]
    )
    assert result.exit_code == 5, result.output  # finished, but a question failed
    assert "6 of 7 questions answered, 1 failed" in result.output and "abstained: " in result.output
    assert "--retry-failed" in result.output and _lines(out / FAILURES)[0]["id"] == "bad"
    rows = {r["id"]: r for r in _lines(out / ANSWERS)}
    assert set(rows) == {"q000", "q001", "q002", "q003", "p1", "off"}
    assert rows["p1"]["audience"] == "patient" and rows["q000"]["audience"] == "clinician"
    assert [s["abstained"] for s in rows["off"]["sections"]] == [True, True]
    ev = runner.invoke(
        app, ["eval", str(out / ANSWERS), "--out", str(tmp_path / "ev"), "--judge", "lexical", "--no-cache", "--json"]
    )
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["answers"] == 6
    missing = runner.invoke(app, ["batch", str(tmp_path / "none.jsonl"), "--out", str(out), "-i", str(real_index)])
    assert missing.exit_code == 3 and "cannot read the questions" in missing.output
