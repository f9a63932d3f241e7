"""Build step that pyproject.toml cannot declare: the top-level ``prompts/`` and ``corpus/`` go into the wheel.

They stay where the repository layout puts them; a wheel gets copies as ``pipeline/_data/prompts`` and
``pipeline/_data/corpus``, where :mod:`pipeline.resources` finds them in an installed package. Everything else
is configured in pyproject.toml.
"""

from __future__ import annotations

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

# What of the repository's own files the package reads at run time (every file git tracks in these folders;
# tests/test_install.py checks the two lists agree).
DATA = {
    "prompts": ["*.txt"],
    "corpus": ["*.toml", "sources.json", "pmids/*.txt"],
}
TARGET = os.path.join("pipeline", "_data")


class BuildPyWithData(build_py):
    """``build_py`` that also copies :data:`DATA` under ``pipeline/_data`` in the build folder."""

    def _data_mapping(self) -> dict[str, str]:
        """Build-folder path -> source path for every file in :data:`DATA`."""
        mapping = {}
        for folder, patterns in DATA.items():
            found = sorted({f for p in patterns for f in glob.glob(os.path.join(folder, p)) if os.path.isfile(f)})
            if not found:
                raise FileNotFoundError(f"{folder}/: none of {patterns} found; a wheel without them cannot answer")
            for src in found:
                mapping[os.path.join(self.build_lib, TARGET, src)] = src
        return mapping

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's folders themselves
            return
        for target, src in self._data_mapping().items():
            self.mkpath(os.path.dirname(target))
            self.copy_file(src, target)

    def get_source_files(self) -> list[str]:  # so that an sdist carries them too
        return [*super().get_source_files(), *self._data_mapping().values()]

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else [*outputs, *self._data_mapping()]


setup(cmdclass={"build_py": BuildPyWithData})
