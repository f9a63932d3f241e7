"""How a batch runs (where, how many at once), apart from how each question is answered (:class:`AskOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from pipeline.answer import AskOptions
from pipeline.errors import InputError


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How a batch runs.

    Attributes:
        workers: questions answered at once (default: ``openai.max_concurrency`` for openai, else 1).
            The llama generator runs one question at a time: one model, loaded once.
        retrieval_batch: questions retrieved for together (one embedding batch, one search per kind).
        backend: ``local`` (this process) or ``ray`` (Ray actors, each loading the index and models once;
            the generator and judge must then be given by name).
        ray_address: a Ray cluster to join; None starts a local Ray (2 CPUs, no dashboard, localhost only).
        ray_actors: Ray actors (default: one per CPU Ray offers).
    """

    workers: int | None = None
    retrieval_batch: int = 16
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_actors: int | None = None

    def __post_init__(self) -> None:
        if self.retrieval_batch < 1:
            raise InputError(f"retrieval_batch must be at least 1, not {self.retrieval_batch}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1, not {self.workers}")
        if self.backend not in ("local", "ray"):
            raise InputError(f"backend is {self.backend!r}; choose local or ray")


def split_options(
    options: AskOptions | None, batch: BatchOptions | None, changes: dict[str, Any]
) -> tuple[AskOptions, BatchOptions]:
    """``options`` and ``batch`` with keyword ``changes`` applied to whichever of the two has each field."""
    batch_fields = {f.name for f in fields(BatchOptions)}
    to_batch = {k: v for k, v in changes.items() if k in batch_fields}
    to_ask = {k: v for k, v in changes.items() if k not in batch_fields}
    return (options or AskOptions()).but(**to_ask), replace(batch or BatchOptions(), **to_batch)
