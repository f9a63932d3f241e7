"""Batch answers: many questions at once, into a crash-safe, resumable run folder, here or on Ray.

Rooms, from the ground up:

- :mod:`~pipeline.batch.questions`: questions from a ``.jsonl`` / ``.csv`` file or from code, with stable ids.
- :mod:`~pipeline.batch.options`: :class:`BatchOptions`, how a batch runs (workers, retrieval batch, Ray).
- :mod:`~pipeline.batch.work`: one question's :class:`BatchResult`, and retrieval shared by a chunk of questions.
- :mod:`~pipeline.batch.local` and :mod:`~pipeline.batch.ray`: answering here (threads) or on Ray actors.
- :mod:`~pipeline.batch.many`: :func:`ask_many`, either of the two.
- :mod:`~pipeline.batch.folder` and :mod:`~pipeline.batch.run`: the run folder, and :func:`run_batch` into it.
"""

from pipeline.batch.folder import ANSWERS, FAILURES, RUN, BatchSummary, answer_record, run_fingerprint
from pipeline.batch.local import default_workers, prepare_local
from pipeline.batch.many import ask_many
from pipeline.batch.options import BatchOptions
from pipeline.batch.questions import Question, as_questions, question_id, read_questions
from pipeline.batch.ray import RayBackendError, RayEmbedder, ray_session
from pipeline.batch.run import run_batch
from pipeline.batch.work import BatchIndex, BatchResult, CachingEmbedder, answer_one

__all__ = [
    "ANSWERS",
    "FAILURES",
    "RUN",
    "BatchIndex",
    "BatchOptions",
    "BatchResult",
    "BatchSummary",
    "CachingEmbedder",
    "Question",
    "RayBackendError",
    "RayEmbedder",
    "answer_one",
    "answer_record",
    "as_questions",
    "ask_many",
    "default_workers",
    "prepare_local",
    "question_id",
    "ray_session",
    "read_questions",
    "run_batch",
    "run_fingerprint",
]
