"""Prompt files in ``prompts/``: one per task, placeholders checked on load, content hashed.

A file holds ``=== system`` and ``=== user`` parts written with ``${name}`` placeholders
(:class:`string.Template`). Loading fails, naming the file, when a placeholder is unknown or missing,
so a user's edited prompt cannot silently drop the sources or the question.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from pipeline.errors import InputError

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"

# The placeholders each task's prompt must use, no more and no fewer.
TASKS: dict[str, frozenset[str]] = {
    "section": frozenset(
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
    "follow_ups": frozenset({"audience_label", "question", "topics"}),
    "rewrite": frozenset({"history", "question"}),
    "judge": frozenset({"passage", "claim"}),
}

_PART = re.compile(r"^=== (system|user)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class Prompt:
    task: str
    path: Path
    system: Template
    user: Template
    hash: str

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every placeholder filled (values are inserted as text, never re-parsed)."""
        missing = TASKS[self.task] - values.keys()
        if missing:
            raise InputError(f"prompt {self.task}: no value for {sorted(missing)}")
        return [
            {"role": "system", "content": self.system.substitute(values).strip()},
            {"role": "user", "content": self.user.substitute(values).strip()},
        ]


def load_prompt(task: str, folder: Path = PROMPT_DIR) -> Prompt:
    """Load and check ``folder/<task>.txt``."""
    if task not in TASKS:
        raise InputError(f"unknown prompt task {task!r}; known: {sorted(TASKS)}")
    path = folder / f"{task}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read prompt ({e.strerror or e})") from None
    parts = _PART.split(text)
    # parts: [preamble, "system", body, "user", body]
    bodies = dict(zip(parts[1::2], parts[2::2], strict=False))
    if set(bodies) != {"system", "user"}:
        raise InputError(f"{path}: a prompt needs one '=== system' and one '=== user' part")
    system, user = Template(bodies["system"]), Template(bodies["user"])
    for t in (system, user):
        if not t.is_valid():
            raise InputError(f"{path}: malformed placeholder (use ${{name}}; write $$ for a dollar sign)")
    used = set(system.get_identifiers()) | set(user.get_identifiers())
    unknown, missing = used - TASKS[task], TASKS[task] - used
    if unknown or missing:
        detail = "; ".join(
            x
            for x in (f"unknown {sorted(unknown)}" if unknown else "", f"missing {sorted(missing)}" if missing else "")
            if x
        )
        raise InputError(f"{path}: placeholders for task {task!r} do not match ({detail})")
    return Prompt(task, path, system, user, hashlib.sha256(text.encode()).hexdigest()[:16])
