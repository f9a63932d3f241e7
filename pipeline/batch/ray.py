"""Scale-out on Ray: batch answers on Ray actors, and an :class:`~pipeline.embed.Embedder` for ``index build``.

Both start a local Ray when none is running (2 CPUs, no dashboard, bound to 127.0.0.1, usage
statistics off: nothing leaves the machine) or join the cluster at ``address``, and shut down only a
Ray they started. Each actor loads the index and its models once, then serves many calls:

- :func:`ray_results` sends chunks of questions to answer actors; every actor opens the same index
  version and makes the generator (and judge) by name, so the answers are the ones a plain run makes.
  The driver writes the results; a crash loses only the chunks in flight.
- :class:`RayEmbedder` wraps an embedder: ``encode`` splits the texts into shards, embeds them on
  actors (each holding its own copy of the model) and puts the vectors back in order. Names, token
  counts and the fingerprint come from the wrapped embedder, so an index built through it is the one
  a plain build makes, and opens with the plain embedder.

Ray is an optional dependency (``pip install 'medcite[ray]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.answer import AskOptions, depths
from pipeline.batch.local import prepare_local
from pipeline.batch.questions import Question
from pipeline.batch.work import BatchIndex, BatchResult, CachingEmbedder, answer_one
from pipeline.embed import Embedder, SentenceTransformerEmbedder
from pipeline.errors import InputError, PipelineError
from pipeline.index import Index, open_index
from pipeline.settings import Settings

log = logging.getLogger(__name__)

LOCAL_CPUS = 2


class RayBackendError(PipelineError):
    """Ray could not be started or reached, or one of its workers died. Answers already written are kept."""

    retryable = True


@contextlib.contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Environment variables set for the duration of a block (unless already set), then put back as they were.

    Ray reads some of its switches from the environment at import and start-up; medcite sets them only
    while it starts Ray, so the process's environment is the user's again afterwards.
    """
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _ray(*, local: bool = False) -> Any:
    # Ray swaps 127.0.0.1 for the machine's network address unless this is off (it is read on import):
    # a local Ray then listens on the loopback address only.
    switches = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"} if local and "ray" not in sys.modules else {}
    try:
        with scoped_env(**switches):
            import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'medcite[ray]' (ray==2.60.0)") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int = LOCAL_CPUS) -> Iterator[Any]:
    """A connected Ray: the running one, the cluster at ``address``, or a local one started here."""
    ray = _ray(local=not address)
    if ray.is_initialized():
        yield ray
        return
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
        "runtime_env": {"env_vars": env},
    }
    try:
        with scoped_env(RAY_USAGE_STATS_ENABLED="0"):  # no usage report leaves the machine
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
    except Exception as e:  # noqa: BLE001 - Ray raises many types (ConnectionError, RuntimeError, ...)
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayBackendError(f"cannot start or reach {where} ({type(e).__name__}: {e})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _shippable(embedder: Embedder | None) -> Embedder | None:
    """The embedder as sent to actors: a fresh, unloaded copy of a sentence-transformers model."""
    if isinstance(embedder, CachingEmbedder | RayEmbedder):
        embedder = embedder.inner
    if isinstance(embedder, SentenceTransformerEmbedder):
        return SentenceTransformerEmbedder(embedder.settings)
    return embedder


def _unwrap(e: Exception) -> PipelineError:
    cause = getattr(e, "cause", None)
    if isinstance(cause, PipelineError):
        return cause
    first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return RayBackendError(f"a Ray worker failed ({type(e).__name__}: {first[:300]}); run again to resume")


# --------------------------------------------------------------------------- answers


class AnswerWorker:
    """A Ray actor's state: the index, generator and judge, loaded once; answers chunks of questions."""

    def __init__(
        self, index_path: str, index_settings: Settings, embedder: Embedder | None, options: AskOptions
    ) -> None:
        index = open_index(index_path, settings=index_settings, embedder=embedder)
        self.run = prepare_local(options, index)

    def answer(self, items: list[Question]) -> list[BatchResult]:
        index = self.run.index
        assert isinstance(index, BatchIndex)  # prepare_local made it
        index.prefetch([q.question for q in items], depths(self.run.settings))
        try:
            return [answer_one(q, self.run) for q in items]
        finally:
            index.forget(q.question for q in items)


def ray_results(
    items: Sequence[Question],
    index: Index,
    options: AskOptions,
    *,
    batch_size: int = 16,
    address: str | None = None,
    actors: int | None = None,
) -> Iterator[BatchResult]:
    """Answer ``items`` on Ray actors; yields results chunk by chunk, as chunks complete (see the module docs).

    ``options`` name the generator and judge (strings, see :func:`pipeline.batch.many.by_name`): each actor
    makes its own.
    """
    if not items:
        return
    chunks = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    with ray_session(address) as ray:
        from ray.util import ActorPool

        n = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(n, len(chunks)))
        remote = ray.remote(num_cpus=1, max_restarts=0)(AnswerWorker)
        # Actors need not share the driver's working directory: the index goes by its absolute path.
        args = (str(Path(index.path).resolve()), index.settings, _shippable(index.embedder), options)
        workers = [remote.remote(*args) for _ in range(n)]
        log.info("answering %d questions in %d chunks on %d Ray actors", len(items), len(chunks), n)
        try:
            pool = ActorPool(workers)
            for chunk in chunks:
                pool.submit(lambda a, c: a.answer.remote(c), chunk)
            while pool.has_next():  # type: ignore[no-untyped-call]
                try:
                    results = pool.get_next_unordered()
                except ray.exceptions.RayError as e:
                    raise _unwrap(e) from None
                yield from results
        finally:
            for w in workers:
                ray.kill(w)


# --------------------------------------------------------------------------- embeddings


class EmbedWorker:
    """A Ray actor's state: one embedder, its model loaded once."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def dim(self) -> int:
        return self.embedder.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts)


class RayEmbedder:
    """An :class:`~pipeline.embed.Embedder` whose ``encode`` runs on Ray actors (for ``index build --ray``).

    Ray starts (or is joined) on the first call that needs a model; use it as a context manager, or
    call :meth:`close`, to stop the actors and a Ray started here.

    Args:
        inner: the embedder to run; it must be picklable (a sentence-transformers embedder is sent unloaded).
        address: a Ray cluster to join; None starts a local Ray.
        actors: embedding actors (default: one per CPU Ray offers).
        shard_size: texts per remote call.
    """

    def __init__(
        self, inner: Embedder, *, address: str | None = None, actors: int | None = None, shard_size: int = 256
    ) -> None:
        if shard_size < 1:
            raise InputError(f"shard_size must be at least 1, not {shard_size}")
        self.inner = inner
        self.address = address
        self.actors = actors
        self.shard_size = shard_size
        self._stack = contextlib.ExitStack()
        self._ray: Any = None
        self._workers: list[Any] = []
        self._dim: int | None = None

    # the Embedder protocol, from the wrapped embedder where no model is needed
    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    @property
    def settings(self) -> Any:  # the index manifest records embedder.settings.backend
        return getattr(self.inner, "settings", None)

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    @property
    def dim(self) -> int:
        if self._dim is None:
            ray = self._start()
            self._dim = int(ray.get(self._workers[0].dim.remote()))
        return self._dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ray = self._start()
        shards = [list(texts[i : i + self.shard_size]) for i in range(0, len(texts), self.shard_size)]
        refs = [self._workers[i % len(self._workers)].encode.remote(s) for i, s in enumerate(shards)]
        out: list[np.ndarray] = [np.zeros(0)] * len(refs)
        where = {r: i for i, r in enumerate(refs)}
        with tqdm(total=len(texts), unit="chunk", desc="embedding (ray)", disable=not progress) as bar:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    vecs = ray.get(done[0])
                except ray.exceptions.RayError as e:
                    raise _unwrap(e) from None
                i = where[done[0]]
                out[i] = vecs
                bar.update(len(shards[i]))
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def _start(self) -> Any:
        if self._ray is None:
            ray = self._stack.enter_context(ray_session(self.address))
            n = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            remote = ray.remote(num_cpus=1, max_restarts=0)(EmbedWorker)
            ship = _shippable(self.inner)
            self._workers = [remote.remote(ship) for _ in range(n)]
            self._ray = ray
        return self._ray

    def close(self) -> None:
        """Stop the actors, and Ray if it was started here."""
        if self._ray is not None:
            for w in self._workers:
                self._ray.kill(w)
            self._workers = []
            self._ray = None
        self._stack.close()

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
