"""The Ray path on a local Ray (2 CPUs, no dashboard, localhost): batch answers and index embeddings."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import build_index, open_index
from pipeline.batch import ANSWERS, ask_many, run_batch
from pipeline.errors import InputError
from pipeline.types import to_dict
from tests.fakes import HashingEmbedder, hashed_index
from tests.test_batch import QUESTIONS, SETTINGS, _docs

pytestmark = pytest.mark.slow  # Ray and its actors take seconds to start

# Ray is not imported here: ray_session sets up its loopback address before the first import. CI installs the
# `ray` extra (make test), so there a missing Ray fails the tests instead of skipping them.
if importlib.util.find_spec("ray") is None and not os.environ.get("CI"):
    pytest.skip("ray is not installed (pip install 'medcite[ray]')", allow_module_level=True)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray for the module (it takes seconds to start); the code under test joins it."""
    from pipeline.batch.ray import ray_session

    with ray_session() as r:
        yield r
    assert not r.is_initialized(), "a Ray started by ray_session is shut down by it"


@pytest.fixture
def index(tmp_path: Path, splitter):  # type: ignore[no-untyped-def]
    return hashed_index(tmp_path / "ix", _docs(), SETTINGS, splitter)


def test_local_ray_is_private(local_ray: Any) -> None:
    assert local_ray.cluster_resources().get("CPU") == 2
    assert {n["NodeManagerAddress"] for n in local_ray.nodes()} == {"127.0.0.1"}


def test_ray_answers_are_the_plain_answers(local_ray: Any, index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qs = [
        *QUESTIONS,
        {"id": "patient", "question": QUESTIONS[0], "audience": "patient"},
        {"id": "empty", "question": ""},
    ]
    plain = {r.id: r for r in ask_many(qs, index, generator="extractive", settings=SETTINGS, retrieval_batch=4)}
    on_ray = list(
        ask_many(qs, index, generator="extractive", settings=SETTINGS, retrieval_batch=4, backend="ray", ray_actors=2)
    )
    assert sorted(r.id for r in on_ray) == sorted(plain)
    for r in on_ray:
        p = plain[r.id]
        if p.ok:
            assert r.answer is not None and to_dict(r.answer) == to_dict(p.answer)  # type: ignore[arg-type]
        else:
            assert (r.error, r.error_type) == (p.error, p.error_type)
    assert not {r.id: r for r in on_ray}["empty"].ok

    with pytest.raises(InputError, match="by name"):
        ask_many(QUESTIONS, index, generator=object(), backend="ray")  # type: ignore[arg-type]


def test_ray_run_folder_matches_the_plain_run(local_ray: Any, index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qs = [{"id": f"q{i}", "question": q} for i, q in enumerate(QUESTIONS)]
    run_batch(qs, tmp_path / "plain", index, generator="extractive", settings=SETTINGS, progress=False)
    s = run_batch(
        qs[:4], tmp_path / "ray", index, generator="extractive", settings=SETTINGS, backend="ray", progress=False
    )
    assert s.new_answers == 4
    s = run_batch(qs, tmp_path / "ray", index, generator="extractive", settings=SETTINGS, backend="ray", progress=False)
    assert (s.new_answers, s.skipped, s.answered) == (len(qs) - 4, 4, len(qs)), "a Ray run resumes like a plain one"

    def rows(folder: str) -> dict[str, Any]:
        return {r["id"]: r for r in map(json.loads, (tmp_path / folder / ANSWERS).read_text().splitlines())}

    assert rows("ray") == rows("plain")
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert [x["backend"] for x in run["sessions"]] == ["ray", "ray"]


def test_ray_embedder_builds_the_plain_index(local_ray: Any, tmp_path: Path, splitter) -> None:  # type: ignore[no-untyped-def]
    from pipeline.batch.ray import RayEmbedder

    inner = HashingEmbedder()
    with RayEmbedder(inner, actors=2, shard_size=3) as emb:
        texts = [f"text number {i} about colorectal cancer" for i in range(10)]
        assert np.array_equal(emb.encode(texts), HashingEmbedder().encode(texts)), "shards come back in order"
        assert emb.encode([]).shape == (0, inner.dim) and emb.dim == inner.dim
        assert emb.fingerprint() == inner.fingerprint() and emb.count_tokens(["a b"]) == [2]
        report = build_index(
            tmp_path / "ray", documents=_docs(), settings=SETTINGS, embedder=emb, splitter=splitter, progress=False
        )
    assert inner.encoded == [], "the driver's embedder never embedded: the actors did"
    plain = build_index(
        tmp_path / "plain",
        documents=_docs(),
        settings=SETTINGS,
        embedder=HashingEmbedder(),
        splitter=splitter,
        progress=False,
    )
    assert report.index_id == plain.index_id
    a = open_index(tmp_path / "ray", settings=SETTINGS, embedder=HashingEmbedder())
    b = open_index(tmp_path / "plain", settings=SETTINGS, embedder=HashingEmbedder())
    assert np.array_equal(np.asarray(a.embeddings), np.asarray(b.embeddings))
