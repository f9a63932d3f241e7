"""Many questions answered in one go, here or on Ray: :func:`ask_many`, the batch's one entry point below the folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pipeline.answer import AskOptions, Prepared
from pipeline.batch.local import ask_local, prepare_local
from pipeline.batch.options import BatchOptions, split_options
from pipeline.batch.questions import Question, as_questions
from pipeline.batch.ray import ray_results
from pipeline.batch.work import BatchResult
from pipeline.errors import InputError
from pipeline.index import Index


def ask_many(
    questions: Iterable[str | Question | Mapping[str, Any]],
    index: Index,
    options: AskOptions | None = None,
    batch: BatchOptions | None = None,
    **changes: Any,
) -> Iterator[BatchResult]:
    """Answer many questions; yields one :class:`BatchResult` per question as each completes.

    A question that fails yields a result with ``error`` set; the others go on. Ids are the ones
    given, or :func:`~pipeline.batch.questions.question_id`. ``list(ask_many(...))`` gives them all at once.
    The generator is made once and reused for every question, so a local model loads once.

    Args:
        questions: strings, :class:`Question` values, or dicts with ``question`` and optional ``id``, ``audience``.
        index: an opened index.
        options: how each question is answered (:class:`~pipeline.answer.AskOptions`); a question's own
            audience wins over ``options.audience``.
        batch: how the batch runs (:class:`~pipeline.batch.options.BatchOptions`: workers, retrieval batch, Ray).
        changes: single fields of either, by name (``generator=``, ``workers=``, ``backend="ray"``, ...).

    Raises:
        InputError: bad arguments, or two questions share an id (before anything runs).
    """
    items = as_questions(questions)
    ask_options, how = split_options(options, batch, changes)
    return answer_items(items, index, ask_options, how)


def answer_items(
    items: Sequence[Question], index: Index, options: AskOptions | Prepared, batch: BatchOptions
) -> Iterator[BatchResult]:
    """Answer ``items`` with ``batch.backend``; ``options`` may be prepared already (by :func:`prepare_local`)."""
    if batch.backend == "ray":
        return ray_results(
            items,
            index,
            by_name(options),
            batch_size=batch.retrieval_batch,
            address=batch.ray_address,
            actors=batch.ray_actors,
        )
    run = options if isinstance(options, Prepared) else prepare_local(options, index)
    return ask_local(items, run, batch)


def by_name(options: AskOptions | Prepared) -> AskOptions:
    """Options that name their generator and judge, as Ray actors need them (each actor makes its own)."""
    if isinstance(options, AskOptions):
        if options.generator is not None and not isinstance(options.generator, str):
            raise InputError("with backend='ray' give the generator by name (llama, extractive, openai)")
        if options.verifier is not None and not isinstance(options.verifier, str):
            raise InputError("with backend='ray' give the verifier by judge name (lexical, embedding, ...)")
        return options
    return AskOptions(
        generator=options.generator.name,
        settings=options.settings,
        audience=options.audience,
        verifier=options.verifier.name if options.verifier is not None else None,
        verify_action=options.verify_action,
    )
