"""notebooks/quickstart.ipynb runs top to bottom in a real kernel, with the extractive generator."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
SECTIONS = ("From the Guidelines", "From the Research", "References")


def test_quickstart_notebook_runs(real_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The kernel inherits this process's environment: the small real index the other tests share.
    monkeypatch.setenv("MEDCITE_NOTEBOOK_INDEX", str(real_index))
    monkeypatch.setenv("MEDCITE_ANSWER__GENERATOR", "extractive")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    answers = [c for c in nb.cells if "answer" in c.get("metadata", {}).get("tags", [])]
    assert len(answers) == 3
    for cell in answers:
        shown = [o for o in cell.outputs if o.get("output_type") == "display_data"]
        assert len(shown) == 1, f"{cell.source!r}: one display, updated in place, not {len(shown)}"
        page = shown[0]["data"].get("text/html", "")
        for title in SECTIONS:
            assert f"<h2>{title}</h2>" in page, f"{cell.source!r}: its answer lacks {title!r}"
        assert 'class="mc-pop"' in page, "citation numbers reveal their passages"
        assert "# " in shown[0]["data"].get("text/markdown", "")
    follow_up = answers[1].outputs[0]["data"]["text/html"]
    assert "<h1>What about RAS-mutant tumours?</h1>" in follow_up and "Searched as:" in follow_up
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "searched as" in texts and "supported" in texts
