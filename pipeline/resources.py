"""Where medcite finds its own files: the prompts and the corpus manifests.

In a checkout (and an editable install of one) they are the repository's top-level ``prompts/`` and
``corpus/`` folders, the files a developer edits. A wheel carries copies of them inside the package, as
``pipeline/_data/prompts`` and ``pipeline/_data/corpus`` (``setup.py`` puts them there at build time),
because an installed package has no repository beside it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The folder inside the package that a wheel's copies live in; never present in a checkout.
_PACKAGED = "_data"


def checkout_root() -> Path | None:
    """The repository folder this package runs from, or None when it is installed.

    A checkout is recognised by its layout: ``pyproject.toml``, ``prompts/`` and ``corpus/`` beside the package.
    """
    root = Path(__file__).resolve().parent.parent
    layout = (root / "pyproject.toml").is_file() and (root / "prompts").is_dir() and (root / "corpus").is_dir()
    return root if layout else None


def _data_dir(name: str) -> Path:
    root = checkout_root()
    if root is not None:
        return root / name
    # A wheel installs into a file system, so the package's Traversable is a Path there.
    return Path(str(resources.files("pipeline") / _PACKAGED / name))


def prompts_dir() -> Path:
    """The folder of the prompt files (``<task>.txt``): the checkout's ``prompts/``, else the installed copy.

    Never raises: where neither exists, loading a prompt from the returned path fails naming it.
    """
    return _data_dir("prompts")


def corpus_dir() -> Path:
    """The folder of the corpus manifests: the checkout's ``corpus/``, else the installed copy.

    It holds ``NAME.toml``, ``sources.json`` and ``pmids/``. Never raises: where neither exists, loading a
    manifest from the returned path fails naming it.
    """
    return _data_dir("corpus")
