"""Prompt files in ``prompts/``: one per task, parts and placeholders checked on load, content hashed.

A file holds parts, each under a ``=== name`` line, written with ``${name}`` placeholders
(:class:`string.Template`). A chat task has a ``system`` and a ``user`` part; a task may have more
(the section task's shape instructions per kind, the audience task's wording per audience). Loading fails,
naming the file, when a part or a placeholder is unknown or missing, so a user's edited prompt cannot
silently drop the sources or the question. A prompt's hash covers the whole file: every word a model is
shown is inside some ``prompt_hash``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from pipeline.errors import InputError
from pipeline.resources import prompts_dir

PROMPT_DIR = prompts_dir()


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """The parts a task's prompt file must have, and the placeholders they use together, no more and no fewer."""

    parts: frozenset[str]
    placeholders: frozenset[str]


_CHAT = frozenset({"system", "user"})

TASKS: dict[str, TaskSpec] = {
    "section": TaskSpec(
        _CHAT | {"shape guideline", "shape research"},
        frozenset(
            {
                "audience_label",
                "audience_style",
                "allowed",
                "question",
                "section_title",
                "kind_label",
                "sources",
                "shape_instructions",
            }
        ),
    ),
    "follow_ups": TaskSpec(_CHAT, frozenset({"audience_label", "question", "topics"})),
    "rewrite": TaskSpec(_CHAT, frozenset({"history", "question"})),
    # Query expansion (pipeline.expand): what to write is one of the "want" parts, put into the user part.
    "expand": TaskSpec(_CHAT | {"want passage", "want queries", "want both"}, frozenset({"question", "request"})),
    "judge": TaskSpec(_CHAT, frozenset({"passage", "claim"})),
    # Who an answer is written for: a label ("a clinician") and a style paragraph per audience.
    "audience": TaskSpec(
        frozenset({"clinician label", "clinician style", "patient label", "patient style"}), frozenset()
    ),
}

_PART = re.compile(r"^=== ([a-z_]+(?: [a-z_]+)?)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class Prompt:
    task: str
    path: Path
    parts: dict[str, Template]
    hash: str

    def text(self, part: str, **values: str) -> str:
        """One part with its placeholders filled (values are inserted as text, never re-parsed)."""
        if part not in self.parts:
            raise InputError(f"{self.path}: no part {part!r}; it has {sorted(self.parts)}")
        try:
            return self.parts[part].substitute(values).strip()
        except KeyError as e:
            raise InputError(f"prompt {self.task}: no value for {e.args[0]!r} in part {part!r}") from None

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every placeholder filled (values are inserted as text, never re-parsed)."""
        missing = TASKS[self.task].placeholders - values.keys()
        if missing:
            raise InputError(f"prompt {self.task}: no value for {sorted(missing)}")
        return [
            {"role": "system", "content": self.text("system", **values)},
            {"role": "user", "content": self.text("user", **values)},
        ]


def load_prompt(task: str, folder: Path = PROMPT_DIR) -> Prompt:
    """Load and check ``folder/<task>.txt``."""
    if task not in TASKS:
        raise InputError(f"unknown prompt task {task!r}; known: {sorted(TASKS)}")
    spec = TASKS[task]
    path = folder / f"{task}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read prompt ({e.strerror or e})") from None
    pieces = _PART.split(text)
    # pieces: [preamble, name, body, name, body, ...]
    names = pieces[1::2]
    if len(set(names)) != len(names) or set(names) != spec.parts:
        want = ", ".join(f"'=== {p}'" for p in sorted(spec.parts))
        raise InputError(f"{path}: a {task} prompt needs one each of {want} (found {names})")
    parts = {name: Template(body) for name, body in zip(names, pieces[2::2], strict=True)}
    for t in parts.values():
        if not t.is_valid():
            raise InputError(f"{path}: malformed placeholder (use ${{name}}; write $$ for a dollar sign)")
    used = {x for t in parts.values() for x in t.get_identifiers()}
    unknown, missing = used - spec.placeholders, spec.placeholders - used
    if unknown or missing:
        detail = "; ".join(
            x
            for x in (f"unknown {sorted(unknown)}" if unknown else "", f"missing {sorted(missing)}" if missing else "")
            if x
        )
        raise InputError(f"{path}: placeholders for task {task!r} do not match ({detail})")
    return Prompt(task, path, parts, hashlib.sha256(text.encode()).hexdigest()[:16])
