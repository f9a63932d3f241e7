"""A non-editable install answers from any working directory: the wheel carries ``prompts/`` and ``corpus/``.

The wheel is built from a copy of this tree and installed, without its dependencies, into a scratch venv that
sees this interpreter's site-packages through a ``.pth`` line (nothing is downloaded or built twice). A plain
path line adds the folder to ``sys.path`` without running the ``.pth`` files inside it, so the editable
install's finder there never answers for ``pipeline``; the test checks that it is the scratch copy that runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from pipeline.types import GUIDELINES_TITLE, RESEARCH_TITLE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# What the build reads; the wheel is built from a copy so no build/ or egg-info lands in the checkout.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "pipeline", "eval", "prompts", "corpus")
QUESTION = "What is the treatment for oligoprogressive colorectal cancer?"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd[:4]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    dist = tmp_path_factory.mktemp("dist")
    # An absolute path: pip reads a bare "src" as a project name to look up on the index.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--no-deps", "--no-build-isolation",
          "-w", str(dist), str(src)])  # fmt: skip
    [whl] = dist.glob("medcite-*.whl")
    return whl


def _tracked(*folders: str) -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *folders], capture_output=True, text=True)
    except OSError:
        pytest.skip("git is not installed")
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


def test_wheel_carries_every_tracked_module_and_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {f"pipeline/_data/{f}" for f in _tracked("prompts", "corpus")}
    expected |= {f for f in _tracked("pipeline", "eval") if f.endswith(".py") or f.startswith("pipeline/weights/")}
    assert {
        f"pipeline/_data/{f}" for f in ("prompts/section.txt", "corpus/demo.toml", "corpus/sources.json")
    } <= expected
    assert sorted(expected - names) == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.split("/")[0] in ("prompts", "corpus", "tests")]  # no top-level strays


def _small_index(folder: Path, embedder: object) -> Path:
    """Two guideline and two research documents, embedded with the bundled MiniLM (the CLI opens it with that)."""
    from pipeline.index import build_index
    from pipeline.settings import Settings

    (folder / "guidelines").mkdir(parents=True)
    (folder / "guidelines" / "colon.md").write_text(
        "# Colon cancer treatment\n\n## Oligoprogressive disease\n\n"
        "For oligoprogressive colorectal cancer, local treatment of the progressing sites with stereotactic body "
        "radiotherapy or surgical resection is recommended while the current systemic therapy is continued.\n\n"
        "## Stage IV colon cancer\n\n"
        "Patients with metastatic colorectal cancer receive systemic chemotherapy such as FOLFOX or FOLFIRI, "
        "with bevacizumab or an EGFR antibody chosen by tumour RAS status.\n",
        encoding="utf-8",
    )
    (folder / "guidelines" / "migraine.md").write_text(
        "# Migraine in adults\n\n## Acute treatment\n\nTriptans are recommended for the acute treatment of migraine.\n",
        encoding="utf-8",
    )
    records = [
        {"pmid": "90000001", "title": "Stereotactic radiotherapy for oligoprogressive metastatic colorectal cancer",
         "abstract": "In patients with oligoprogressive colorectal cancer, stereotactic radiotherapy to the progressing "
         "lesions allowed systemic treatment to continue and prolonged progression-free survival."},
        {"pmid": "90000002", "title": "Local ablation of progressing colorectal liver metastases",
         "abstract": "Local ablation or resection of a few progressing colorectal cancer metastases extended the "
         "benefit of the ongoing chemotherapy line."},
    ]  # fmt: skip
    (folder / "research").mkdir()
    (folder / "research" / "abstracts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    ix = folder / "ix"
    build_index(ix, guidelines=[folder / "guidelines"], research=[folder / "research"], settings=Settings(),
                embedder=embedder, progress=False)  # type: ignore[arg-type]  # fmt: skip
    return ix


# Run by the scratch interpreter: where the package and its data were found.
PROBE = """
import importlib.metadata, json, sys
import pipeline
from pipeline import corpus, prompts, resources
for task in prompts.TASKS:
    prompts.load_prompt(task)
specs = {n: corpus.load_spec(n) for n in corpus.list_corpora()}
pmids = [str(corpus.CORPUS_DIR / i.pmids) for s in specs.values() for i in s.includes if i.pmids]
print(json.dumps({
    "pipeline": pipeline.__file__,
    "dist": str(importlib.metadata.distribution("medcite").locate_file("")),
    "prompts": str(prompts.PROMPT_DIR), "corpus": str(corpus.CORPUS_DIR),
    "checkout": str(resources.checkout_root()), "corpora": sorted(specs), "pmids": pmids,
    "sources": len(corpus.load_sources()), "mirror": str(corpus.default_mirror()),
    "data": str(corpus.corpus_path("demo")),
}))
"""


def test_installed_package_answers_from_another_folder(wheel: Path, tmp_path: Path, real_embedder: object) -> None:
    index = _small_index(tmp_path / "docs", real_embedder)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # Installed before the .pth exists, so pip sees an empty environment (nothing to uninstall or resolve).
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-index", "--no-deps", str(wheel)])
    scratch = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (scratch / "_medcite_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"  # not the repository, and no ../shared/data beside it
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDCITE_", "PYTHON"))}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

    found = json.loads(_run([str(py), "-c", PROBE], cwd=elsewhere, env=env).stdout)
    assert Path(found["pipeline"]).is_relative_to(scratch), found["pipeline"]  # not the checkout's, not editable
    assert Path(found["dist"]).resolve() == scratch.resolve()
    assert found["prompts"] == str(scratch / "pipeline" / "_data" / "prompts")
    assert found["corpus"] == str(scratch / "pipeline" / "_data" / "corpus")
    assert found["checkout"] == "None"
    assert found["corpora"] == sorted(p.stem for p in (ROOT / "corpus").glob("*.toml"))
    assert found["pmids"] and all(Path(p).is_file() for p in found["pmids"])
    assert found["sources"] > 0
    assert found["mirror"] == "None"  # no checkout to look beside; MEDCITE_MIRROR or --mirror says where
    assert found["data"] == str(elsewhere / "data" / "corpora" / "demo")  # not inside the venv

    medcite = env_dir / "bin" / "medcite"
    out = _run([str(medcite), "ask", "--generator", "extractive", "--index", str(index), QUESTION, "--format", "json"],
               cwd=elsewhere, env=env).stdout  # fmt: skip
    answer = json.loads(out)
    assert answer["question"] == QUESTION
    assert [s["title"] for s in answer["sections"]] == [GUIDELINES_TITLE, RESEARCH_TITLE]
    refs = answer["references"]
    assert {r["kind"] for r in refs} == {"guideline", "research"}
    for section, kind in zip(answer["sections"], ("guideline", "research"), strict=True):
        assert not section["abstained"], section
        items = [it for b in section["blocks"] for it in b["items"]]
        assert items and all(it["text"] and it["citations"] for it in items)
        assert all(1 <= n <= len(refs) and refs[n - 1]["kind"] == kind for it in items for n in it["citations"])
    assert not list(elsewhere.iterdir())  # answering wrote nothing into the working directory
