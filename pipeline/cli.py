"""The ``medcite`` command: a thin face over the public API (one call per command).

Exit codes: 0 success; 2 bad usage (unknown option, missing argument); 3 bad input or corpus
(a file, a question, a checksum); 4 index missing, damaged or built with other settings;
5 a batch finished but some questions failed; 1 anything unexpected.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from pipeline import corpus as corpus_mod
from pipeline.answer import AskOptions, ask_stream
from pipeline.batch import BatchOptions, RayEmbedder, run_batch
from pipeline.embed import SentenceTransformerEmbedder
from pipeline.errors import GenerationError, IndexError_, InputError, PipelineError
from pipeline.index import build_index, open_index
from pipeline.relevance import WEIGHTS as RELEVANCE_WEIGHTS
from pipeline.relevance import RelevanceModel, rerank
from pipeline.render import SECTION_TITLES, MarkdownStream, to_html, to_markdown
from pipeline.serve.app import build_app, check_binding
from pipeline.settings import Settings
from pipeline.types import KINDS, AnswerDone, Hit, to_dict

SEED_QUESTION = "What is the treatment for oligoprogressive colorectal cancer?"

app = typer.Typer(
    help="medcite: answers to clinical questions from guidelines and research, with checked citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Named corpora: list them, pull them from the mirror or the web.", no_args_is_help=True)
index_app = typer.Typer(help="Build and inspect indexes.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
app.add_typer(index_app, name="index")

PresetOpt = Annotated[str, typer.Option("--preset", help="Settings preset: default or test.")]


def _fail(e: PipelineError) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(4 if isinstance(e, IndexError_) else 6 if isinstance(e, GenerationError) else 3)


# Options that several commands share, spelled once.
IndexOption = Annotated[Path, typer.Option("--index", "-i", help="Index folder.")]
GeneratorOption = Annotated[
    str | None, typer.Option("--generator", "-g", help="llama (bundled model), extractive (no model) or openai.")
]
JudgeOption = Annotated[
    str | None, typer.Option(help="Judge for --verify: embedding, trained, blend, lexical, llm, nli, openai.")
]
UnsupportedOption = Annotated[str, typer.Option(help="With --verify: drop or mark unsupported statements.")]
VerifyOption = Annotated[
    bool, typer.Option("--verify", help="Check each statement against its cited passages before showing it.")
]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False) -> None:
    # The command is the application: it, not the library, decides what the terminal shows.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG on import
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # "Loading weights" bars would mix into --json


# --------------------------------------------------------------------------- corpus


@corpus_app.command("list")
def corpus_list() -> None:
    """List the named corpora and whether each is pulled."""
    for name in corpus_mod.list_corpora():
        spec = corpus_mod.load_spec(name)
        pulled = (corpus_mod.corpus_path(name) / "corpus.lock.json").is_file()
        typer.echo(f"{name:8} {'pulled ' if pulled else 'not pulled'}  {spec.description}")


@corpus_app.command("pull")
def corpus_pull(
    name: Annotated[str, typer.Argument(help="Corpus name: demo, full or bioasq.")],
    mirror: Annotated[
        Path | None, typer.Option(help="Folder holding the source files (default ../shared/data or $MEDCITE_MIRROR).")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Ignore any mirror: fetch PubMed records and files from the web.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Materialise a corpus into data/corpora/NAME, checking every file's sha256."""
    try:
        report = corpus_mod.pull(name, mirror=mirror, download=True if download else None, progress=not quiet)
    except PipelineError as e:
        _fail(e)
    typer.echo(report.summary())


# --------------------------------------------------------------------------- index


@index_app.command("build")
def index_build(
    corpus: Annotated[str | None, typer.Option(help="A pulled corpus (e.g. demo); its folders are read.")] = None,
    guidelines: Annotated[
        list[Path] | None,
        typer.Option("--guidelines", help="File or folder of guideline documents (repeatable)."),
    ] = None,
    research: Annotated[
        list[Path] | None, typer.Option("--research", "-r", help="File or folder of research documents (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Index folder (default indexes/CORPUS).")] = None,
    index_type: Annotated[str | None, typer.Option("--index-type", help="flat (exact), hnsw or ivf.")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-embed everything instead of reusing unchanged chunks.")
    ] = False,
    preset: PresetOpt = "default",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Embed on Ray actors (a local Ray unless --ray-address).")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to embed on (implies --ray).")] = None,
) -> None:
    """Build or update an index from a corpus and/or folders of documents."""
    embedder = None
    try:
        overrides: dict[str, Any] = {"index": {"type": index_type}} if index_type else {}
        settings = Settings.preset(preset, **overrides)
        g, r = list(guidelines or []), list(research or [])
        if corpus:
            folders = corpus_mod.corpus_sources(corpus, settings.corpus)
            g += [folders["guideline"]] if "guideline" in folders else []
            r += [folders["research"]] if "research" in folders else []
        if not g and not r:
            typer.echo("error: give --corpus NAME, or --guidelines / --research folders", err=True)
            raise typer.Exit(2)
        target = out or Path("indexes") / (corpus or "custom")
        if ray or ray_address:
            embedder = RayEmbedder(SentenceTransformerEmbedder(settings.embed), address=ray_address)
        report = build_index(
            target,
            guidelines=g,
            research=r,
            settings=settings,
            embedder=embedder,
            progress=not quiet,
            incremental=not full,
        )
    except PipelineError as e:
        _fail(e)
    finally:
        if embedder is not None:
            embedder.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "index_id": report.index_id,
                    "path": str(report.path),
                    "documents": report.n_documents,
                    "chunks": report.n_chunks,
                    "embedded": report.embedded,
                    "reused": report.reused,
                    "added": list(report.added_documents),
                    "changed": list(report.changed_documents),
                    "removed": list(report.removed_documents),
                    "seconds": round(report.seconds, 2),
                    "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
                },
                indent=2,
            )
        )
    else:
        typer.echo(report.summary())


@index_app.command("info")
def index_info(
    path: Annotated[Path, typer.Argument(help="Index folder.")] = Path("indexes/demo"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Show an index's manifest: model, chunking, corpus, counts, library versions."""
    try:
        index = open_index(path)
    except PipelineError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(index.manifest, indent=2))
        return
    m = index.manifest
    typer.echo(repr(index))
    emb = m["embedding"]
    typer.echo(f"built {m['created']} with {emb['model']} ({emb['dim']}-d, sha256 {emb['fingerprint'][:12]})")
    typer.echo(f"chunking {m['chunking']}; faiss {m['index']['type']}; corpus checksum {m['corpus']['checksum'][:12]}")
    if m.get("skipped"):
        typer.echo(f"{len(m['skipped'])} files or records were skipped at build time (see --json)")


# --------------------------------------------------------------------------- search


def _print_hits(hits: list[Hit], width: int = 400) -> None:
    for h in hits:
        d = h.document
        where = ", ".join(
            x
            for x in (
                d.source,
                str(d.year or ""),
                f"p. {h.chunk.page}" if h.chunk.page else "",
                f"PMID {d.pmid}" if d.pmid else "",
            )
            if x
        )
        rel = f"  P(answers) {h.relevance:.3f}" if h.relevance is not None else ""
        typer.echo(f"[{h.rank}] {h.score:.4f}{rel}  {d.title}" + (f" ({where})" if where else ""))
        if h.chunk.heading:
            typer.echo(f"     § {h.chunk.heading}")
        text = h.chunk.text if len(h.chunk.text) <= width else h.chunk.text[:width] + " …"
        typer.echo(f"     {text}\n")


@app.command("search")
def search(
    question: Annotated[str, typer.Argument(help="The clinical question.")] = SEED_QUESTION,
    index: IndexOption = Path("indexes/demo"),
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="Number of passages (per kind with --by-kind).")] = 5,
    kind: Annotated[str | None, typer.Option(help="Only guideline or research passages.")] = None,
    by_kind: Annotated[
        bool, typer.Option("--by-kind", help="Top k guideline passages and top k research passages.")
    ] = False,
    mode: Annotated[str, typer.Option(help="hybrid (dense + BM25), dense or bm25.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print {query, hits: [...]} as JSON.")] = False,
    rerank_hits: Annotated[
        bool,
        typer.Option("--rerank", help="Re-score the fused candidates with the relevance model (P(answers) shown)."),
    ] = False,
    preset: PresetOpt = "default",
) -> None:
    """Find the passages that best answer a question."""
    if kind is not None and kind not in KINDS:
        typer.echo(f"error: --kind must be one of {list(KINDS)}, not {kind!r}", err=True)
        raise typer.Exit(2)
    try:
        settings = Settings.preset(preset)
        idx = open_index(index, settings=settings)
        depth = max(k, settings.rerank.candidates) if rerank_hits else k
        groups: dict[str, list[Hit]]
        if by_kind:
            groups = {str(kd): hs for kd, hs in idx.search_by_kind(question, depth, mode=mode).items()}
        else:
            groups = {"all": idx.search(question, depth, kind=kind, mode=mode)}
        if rerank_hits:
            model = RelevanceModel(settings.rerank.path or RELEVANCE_WEIGHTS)
            fuse = settings.retrieve.rrf_k
            groups = {name: rerank(question, hs, model, k, fuse=fuse) for name, hs in groups.items()}
    except PipelineError as e:
        _fail(e)
    if as_json:
        rows = [h.to_dict() for hs in groups.values() for h in hs]
        payload = {"query": question, "index_id": idx.id, "mode": mode, "hits": rows}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    typer.echo(f"Q: {question}\n")
    for name, hits in groups.items():
        if by_kind:
            typer.echo(f"=== {SECTION_TITLES[name]} ===\n")
        if not hits:
            typer.echo("(no passage found)\n")
        _print_hits(hits)


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The clinical question.")] = SEED_QUESTION,
    index: IndexOption = Path("indexes/demo"),
    generator: GeneratorOption = None,
    audience: Annotated[
        str | None, typer.Option(help="clinician (default) or patient: changes wording, not evidence.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md (streams), json or html.")] = "md",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of the terminal.")] = None,
    verify: VerifyOption = False,
    judge: JudgeOption = None,
    unsupported: UnsupportedOption = "drop",
    preset: PresetOpt = "default",
) -> None:
    """Answer a question from the guidelines and the research, with numbered citations."""
    if fmt not in ("md", "json", "html"):
        typer.echo(f"error: --format must be md, json or html, not {fmt!r}", err=True)
        raise typer.Exit(2)
    try:
        settings = Settings.preset(preset)
        idx = open_index(index, settings=settings)
        options = _ask_options(settings, generator, audience, verify, judge, unsupported)
        stream = MarkdownStream() if fmt == "md" and out is None else None
        answer = None
        if stream:
            typer.echo(f"# {question}")
        for event in ask_stream(question, idx, options):
            if stream:
                typer.echo(stream.feed(event), nl=False)
            if isinstance(event, AnswerDone):
                answer = event.answer
    except PipelineError as e:
        _fail(e)
    if answer is None:  # ask_stream always ends with the answer
        raise typer.Exit(1)
    if stream:
        return
    text = (
        {"md": to_markdown, "html": to_html}[fmt](answer)
        if fmt != "json"
        else json.dumps(to_dict(answer), indent=2, ensure_ascii=False)
    )
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(text)


@app.command("batch")
def batch_cmd(
    questions: Annotated[
        Path, typer.Argument(help='Questions: .jsonl (one {"question", "id"?, "audience"?} a line) or .csv.')
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder, e.g. runs/NAME (resumed if it exists).")],
    index: IndexOption = Path("indexes/demo"),
    generator: GeneratorOption = None,
    audience: Annotated[
        str | None, typer.Option(help="clinician (default) or patient, for rows that name no audience.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check each statement against its cited passages before keeping it.")
    ] = False,
    judge: JudgeOption = None,
    unsupported: UnsupportedOption = "drop",
    preset: PresetOpt = "default",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Questions at once (default: openai.max_concurrency for openai, else 1).")
    ] = None,
    retrieval_batch: Annotated[int, typer.Option(min=1, help="Questions retrieved for together.")] = 16,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Ask again the questions that failed.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="If the folder holds answers made differently, move them aside, start over.")
    ] = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Answer on Ray actors (a local Ray unless --ray-address).")
    ] = False,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to run on (implies --ray).")] = None,
    ray_actors: Annotated[int | None, typer.Option(min=1, help="Ray actors (default: one per Ray CPU).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Answer every question of a file into runs/NAME/answers.jsonl; safe to kill and run again.

    Exit code 0 when every question is answered, 5 when some failed (see failures.jsonl; --retry-failed).
    """
    try:
        settings = Settings.preset(preset)
        idx = open_index(index, settings=settings)
        how = BatchOptions(
            workers=workers,
            retrieval_batch=retrieval_batch,
            backend="ray" if ray or ray_address else "local",
            ray_address=ray_address,
            ray_actors=ray_actors,
        )
        options = _ask_options(settings, generator, audience, verify, judge, unsupported)
        summary = run_batch(
            questions, out, idx, options, how, retry_failed=retry_failed, force=force, progress=not quiet
        )
    except PipelineError as e:
        _fail(e)
    typer.echo(json.dumps(summary.to_dict(), indent=2) if as_json else summary.summary())
    if summary.failed:
        raise typer.Exit(5)


@app.command("serve")
def serve_cmd(
    index: IndexOption = Path("indexes/demo"),
    generator: GeneratorOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on; beyond 127.0.0.1 a --token is required.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data: Annotated[Path, typer.Option(help="Folder of the answers database (medcite.sqlite).")] = Path("data/serve"),
    token: Annotated[
        str | None,
        typer.Option(envvar="MEDCITE_SERVE_TOKEN", help="Access token asked of every request (header or cookie)."),
    ] = None,
    queue: Annotated[int, typer.Option(help="Questions that may wait while one is answered; more get 503.")] = 32,
    verify: VerifyOption = False,
    judge: JudgeOption = None,
    unsupported: UnsupportedOption = "drop",
    preset: PresetOpt = "default",
) -> None:
    """A web page to ask questions, follow up, and review the saved answers (http://127.0.0.1:8000)."""
    try:
        check_binding(host, token)
        settings = Settings.preset(preset)
        options = _ask_options(settings, generator, None, verify, judge, unsupported)
        web = build_app(open_index(index, settings=settings), options, data=data, token=token, queue=queue)
    except PipelineError as e:
        _fail(e)
    typer.echo(f"medcite: serving {index} on http://{host}:{port} (answers saved in {data}); Ctrl-C stops", err=True)
    uvicorn.run(web, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)


def _ask_options(
    settings: Settings, generator: str | None, audience: str | None, verify: bool, judge: str | None, unsupported: str
) -> AskOptions:
    """The options ``ask`` and ``batch`` share, from their command-line values (judges and generators by name)."""
    if unsupported not in ("drop", "mark"):
        raise InputError(f"--unsupported must be drop or mark, not {unsupported!r}")
    return AskOptions(
        generator=generator or settings.answer.generator,
        settings=settings,
        audience=audience,  # type: ignore[arg-type] # checked when answering
        verifier=(judge or settings.judge.name) if verify else None,
        verify_action=unsupported,  # type: ignore[arg-type] # checked above
    )


def _load_plugins() -> None:
    """Add sub-commands registered under the ``medcite.cli`` entry point group (e.g. ``medcite eval``)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="medcite.cli"):
        try:
            app.add_typer(ep.load(), name=ep.name)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the core commands down
            logging.getLogger(__name__).warning("medcite plugin %s failed to load: %s", ep.name, e)


_load_plugins()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
