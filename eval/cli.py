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
        str | None, typer.Option(help="lexical, embedding, llm, nli, openai (default from settings).")
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
    judge: Annotated[str, typer.Option(help="lexical, embedding, llm, nli or openai.")] = "embedding",
    sets: Annotated[
        str, typer.Option(help="Comma-separated: expertqa-medicine, healthver, scifact (also expertqa, covidfact).")
    ] = "expertqa-medicine,healthver,scifact",
    limit: Annotated[int, typer.Option(help="Pairs sampled per set, stratified by label (0 = all).")] = 400,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the two-fold threshold split.")] = 0,
    data: Annotated[Path | None, typer.Option(help="The faithfulness folder (default: the data mirror's).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the verdict cache.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the rows here.")] = None,
) -> None:
    """Score a judge against human support labels: AUROC, and balanced accuracy and F1 at an out-of-fold threshold."""
    from eval.calibrate import calibrate, table

    names = [s.strip() for s in sets.split(",") if s.strip()]
    try:
        rows = calibrate(_judge(judge, None, not no_cache), names, limit or None, seed, root=data)
    except PipelineError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    typer.echo(table(rows))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(
            json.dumps({"judge": judge, "sets": names, "limit": limit, "seed": seed, "rows": rows}, indent=2)
        )
