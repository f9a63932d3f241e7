"""``medcite eval``: citation-faithfulness evaluation and judge calibration.

Registered as a ``medcite.cli`` entry point so that ``pipeline`` never imports ``eval``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from pipeline.errors import PipelineError
from pipeline.settings import Settings


class _AnswersByDefault(TyperGroup):
    """``medcite eval FILE ...`` runs the ``answers`` command; ``medcite eval calibrate ...`` calibrates."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["answers", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_AnswersByDefault,
    help="Is each statement supported by the passages it cites? (medcite eval ANSWERS.jsonl --out DIR)",
    no_args_is_help=True,
)


def _judge(name: str | None, threshold: float | None, cache: bool) -> Any:
    from pipeline.judge import judge_from_settings

    overrides: dict[str, Any] = {}
    if threshold is not None:
        overrides["threshold"] = threshold
    if not cache:
        overrides["cache"] = None
    settings = Settings.preset("default", judge=overrides) if overrides else Settings()
    return judge_from_settings(settings, name)


@app.command("answers")
def answers_cmd(
    answers: Annotated[Path, typer.Argument(help="Answers in medcite's JSON shape, one per line.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for verdicts.jsonl, summary.json, report.html.")],
    judge: Annotated[
        str | None, typer.Option(help="embedding, trained, blend, lexical, llm, nli, openai (default from settings).")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Score at or above which a statement is supported.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the verdict cache.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the overall and per-section figures as JSON.")] = False,
) -> None:
    """Judge every statement of every answer against the passages it cites."""
    from eval.faithfulness import evaluate

    if not answers.is_file():
        typer.echo(f"error: {answers}: no such file", err=True)
        raise typer.Exit(3)
    try:
        summary = evaluate(answers, out, _judge(judge, threshold, not no_cache))
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    if as_json:
        typer.echo(
            json.dumps({k: summary[k] for k in ("judge", "threshold", "answers", "overall", "sections")}, indent=2)
        )
        return
    typer.echo(
        f"{summary['answers']} answers, judge {summary['judge']} (threshold {summary['threshold']:.3f}) -> {out}"
    )
    typer.echo(f"{'':22} {'statements':>10} {'recall':>8} {'precision':>9} {'supported':>9}")
    rows = {"overall": summary["overall"], **summary["sections"]}
    for name, f in rows.items():

        def pct(x: float | None) -> str:
            return "–" if x is None else f"{100 * x:.1f}%"

        typer.echo(
            f"{name:22} {f['statements']:>10} {pct(f['citation_recall']):>8} {pct(f['citation_precision']):>9} "
            f"{pct(f['supported_share']):>9}"
        )


@app.command("calibrate")
def calibrate_cmd(
    judge: Annotated[
        str, typer.Option(help="Comma-separated judges: trained, embedding, lexical, llm, nli, openai.")
    ] = "trained,embedding,lexical",
    sets: Annotated[
        str,
        typer.Option(
            help="Comma-separated sets or aliases: all, medical, general, default (expertqa-medicine, healthver, "
            "scifact); sets: covidfact, check-covid, healthfc, nli4ct, climate-fever, snli, sick, rte, fever."
        ),
    ] = "default",
    limit: Annotated[int, typer.Option(help="Pairs sampled per set, stratified by label (0 = all).")] = 400,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the two-fold threshold split.")] = 0,
    split: Annotated[
        str, typer.Option(help="heldout (pairs the trained checker never saw), train or all.")
    ] = "heldout",
    data: Annotated[Path | None, typer.Option(help="The faithfulness folder (default: the data mirror's).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the verdict cache.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the rows here.")] = None,
) -> None:
    """Score judges against human support labels: AUROC, and balanced accuracy and F1 at an out-of-fold threshold.

    Every judge sees the same seeded sample of each set, so the rows compare like with like.
    """
    from eval.calibrate import calibrate, set_names, table

    judges = [j.strip() for j in judge.split(",") if j.strip()]
    rows: list[dict[str, Any]] = []
    try:
        names = set_names(sets)
        for name in judges:
            rows.extend(calibrate(_judge(name, None, not no_cache), names, limit or None, seed, root=data, split=split))
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    rows.sort(key=lambda r: (names.index(r["set"]), judges.index(r["judge"]) if r["judge"] in judges else 0))
    typer.echo(table(rows))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"judges": judges, "sets": names, "limit": limit, "seed": seed, "split": split, "rows": rows}
        json_out.write_text(json.dumps(payload, indent=2) + "\n")


judge_app = typer.Typer(help="The trained claim checker: medcite judge train.", no_args_is_help=True)


@judge_app.callback()
def _judge_group() -> None:
    """The trained claim checker (``trained`` judge)."""


@judge_app.command("train")
def judge_train_cmd(
    out: Annotated[
        Path,
        typer.Option(
            help="Weights folder to write. To use it: MEDCITE_JUDGE__TRAINED_PATH=DIR (the bundled weights are "
            "pipeline/weights/checker; write there only to replace them in a checkout)."
        ),
    ] = Path("runs/checker"),
    index: Annotated[Path, typer.Option(help="Index whose chunks give the synthetic pairs.")] = Path("indexes/demo"),
    data: Annotated[Path | None, typer.Option(help="The faithfulness folder (default: the data mirror's).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds data order, synthetic edits and initialisation.")] = 0,
    stages: Annotated[
        str,
        typer.Option(
            help="Comma-separated stages, each continuing the last: general (SNLI, SICK, RTE, FEVER), claims "
            "(Climate-FEVER, Check-COVID, COVID-Fact, HealthFC, HealthVer, SciFact, NLI4CT), ours (synthetic "
            "edits, ExpertQA). 'none': the one-stage, one-output recipe on --sets."
        ),
    ] = "general,claims,ours",
    epochs: Annotated[str, typer.Option(help="Epochs per stage, comma-separated (one number: every stage).")] = "2,2,2",
    lr: Annotated[str, typer.Option(help="Learning rate per stage, comma-separated.")] = "6e-5,4e-5,2e-5",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    synthetic: Annotated[int, typer.Option(min=0, help="Synthetic pairs from the index's chunks (0 = none).")] = 3000,
    sets: Annotated[
        str, typer.Option(help="With --stages none: comma-separated labelled sets to train on (their train side).")
    ] = "expertqa,healthver,scifact,covidfact",
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse stages already saved under OUT/stages with the same settings.")
    ] = False,
    augment: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of supported human pairs also given an edited, unsupported copy."),
    ] = 0.0,
    frozen_layers: Annotated[
        int, typer.Option(min=0, max=6, help="Lowest encoder layers kept as the bundled model has them.")
    ] = 0,
    select_epoch: Annotated[
        bool,
        typer.Option(
            "--select-epoch/--last-epoch", help="Keep the epoch with the best human development AUROC, or the last."
        ),
    ] = False,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps (smoke runs).")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Torch threads (1 is steadier on a busy machine); default: all cores.")
    ] = None,
) -> None:
    """Train the claim checker from the shared labelled sets and our corpus; prints the time it took."""
    import logging

    from eval.train_judge import TrainConfig, checker_recipe, train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        epoch_list = tuple(int(x) for x in epochs.split(",") if x.strip())
        lr_list = tuple(float(x) for x in lr.split(",") if x.strip())
    except ValueError:
        typer.echo(f"error: --epochs and --lr take comma-separated numbers, not {epochs!r} / {lr!r}", err=True)
        raise typer.Exit(2) from None
    if not epoch_list or not lr_list or min(epoch_list) < 1 or min(lr_list) <= 0:
        typer.echo("error: --epochs must be 1 or more and --lr above 0", err=True)
        raise typer.Exit(2)
    common = {
        "seed": seed,
        "batch_size": batch_size,
        "synthetic": synthetic,
        "sets": tuple(x.strip() for x in sets.split(",") if x.strip()),
        "augment": augment,
        "select_epoch": select_epoch,
        "frozen_layers": frozen_layers,
        "max_steps": max_steps,
        "threads": threads,
    }
    if stages.strip() == "none":
        config = TrainConfig(epochs=epoch_list[0], lr=lr_list[0], **common)
    else:
        names = tuple(x.strip() for x in stages.split(",") if x.strip())
        n = len(names)
        config = checker_recipe(
            stages=names,
            stage_epochs=epoch_list * n if len(epoch_list) == 1 else epoch_list,
            stage_lr=lr_list * n if len(lr_list) == 1 else lr_list,
            epochs=epoch_list[-1],
            lr=lr_list[-1],
            **common,
        )
    try:
        record = train(out, config, index=index if synthetic else None, root=data, resume=resume)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    dev = record["dev"]
    typer.echo(
        f"trained {record['steps']} steps on {sum(record['pairs'].values())} pairs in {record['seconds']:.0f} s "
        f"(kept epoch {record['kept_epoch']}) "
        f"({record['train_seconds']:.0f} s training); dev AUROC {dev.get('auroc', float('nan')):.3f}, "
        f"balanced accuracy {dev.get('balanced_accuracy', float('nan')):.3f}; weights in {out}"
    )
    for k, st in enumerate(record.get("stages") or [], 1):
        typer.echo(
            f"  stage {k} {st['stage']}: {sum(st['pairs'].values())} pairs, {st['epochs']} epochs, "
            f"{st['steps']} steps, {st['seconds']:.0f} s"
        )


@judge_app.command("blend")
def judge_blend_cmd(
    weights: Annotated[Path, typer.Option(help="Weights folder of a trained checker.")] = Path(
        "pipeline/weights/checker"
    ),
    index: Annotated[Path, typer.Option(help="The index the checker's synthetic pairs came from.")] = Path(
        "indexes/demo"
    ),
    data: Annotated[Path | None, typer.Option(help="The faithfulness folder (default: the data mirror's).")] = None,
) -> None:
    """Refit the blend judge (checker + embedding + lexical) on the checker's development pairs."""
    import logging

    from eval.train_judge import TrainConfig, dev_split, fit_blend, training_examples
    from pipeline.judge.checker import CheckerConfig

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        stored = CheckerConfig.read(weights).training.get("config", {})
        known = {
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in stored.items()
            if k in TrainConfig.__dataclass_fields__
        }
        config = TrainConfig(**known)
        _, dev = dev_split(training_examples(config, index if config.synthetic else None, data))
        blend = fit_blend(weights, dev)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    typer.echo(
        f"blend on {blend['n']} human-labelled dev pairs: coefficients {blend['coef']}, "
        f"intercept {blend['intercept']:.3f}; "
        f"dev AUROC {blend['dev_auroc']:.3f} (checker alone {blend['dev_auroc_checker_alone']:.3f})"
    )


rerank_app = typer.Typer(
    help="The relevance model (reranking, abstention): medcite rerank train.", no_args_is_help=True
)


@rerank_app.callback()
def _rerank_group() -> None:
    """The relevance model: does a passage answer the question?"""


@rerank_app.command("train")
def rerank_train_cmd(
    out: Annotated[Path, typer.Option(help="Weights folder to write (use it with MEDCITE_RERANK__PATH=DIR).")] = Path(
        "runs/relevance"
    ),
    index: Annotated[Path, typer.Option(help="BioASQ index whose hybrid hits give hard negatives.")] = Path(
        "indexes/bioasq"
    ),
    seed: Annotated[int, typer.Option(help="Seeds data order, negatives and initialisation.")] = 0,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    frozen_layers: Annotated[int, typer.Option(min=0, max=6, help="Lowest encoder layers left as bundled.")] = 2,
    max_length: Annotated[int, typer.Option(min=64, max=256, help="Word pieces of question + passage.")] = 224,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps (smoke runs).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Torch threads; default: all cores.")] = None,
    guidelines: Annotated[
        Path | None,
        typer.Option(help="Index with the PDQ summaries (indexes/demo): add guideline and off-topic pairs."),
    ] = None,
) -> None:
    """Train the relevance model from BioASQ (tune half), MEDIQA 2019 and PubMedQA; prints the time it took."""
    import logging
    import time

    from eval.train_relevance import relevance_config, train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    try:
        record = train(
            out,
            index,
            config=relevance_config(
                seed=seed,
                epochs=epochs,
                max_steps=max_steps,
                threads=threads,
                frozen_layers=frozen_layers,
                max_length=max_length,
            ),
            guidelines=guidelines,
        )
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    dev = record["dev"]
    typer.echo(
        f"trained {record['steps']} steps on {sum(record['pairs'].values())} pairs in {time.perf_counter() - t0:.0f} s "
        f"(kept epoch {record['kept_epoch']}); dev AUROC {dev['auroc']:.3f}, balanced accuracy "
        f"{dev['balanced_accuracy']:.3f}; weights in {out}"
    )
