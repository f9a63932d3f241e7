"""Print medcite's requirements from pyproject.toml, one per line, for ``pip install -r``.

    python scripts/requirements.py [--extras dev,bench] [--without llama-cpp-python]

``make demo`` installs everything but llama-cpp-python this way while that package's wheel is compiled in the
background (scripts/demo.sh), then installs medcite itself with the wheel.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _name(requirement: str) -> str:
    """The distribution name of a requirement, normalised as PEP 503 does."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(extras: list[str], without: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    reqs = [*project["dependencies"], *(r for e in extras for r in optional[e])]
    names = {_name(r) for r in reqs}
    missing = [w for w in without if _name(w) not in names]
    if missing:
        raise SystemExit(f"--without {missing}: not a requirement of medcite")
    drop = {_name(w) for w in without}
    return [r for r in reqs if _name(r) not in drop]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extras", default="", help="comma-separated extras to add")
    ap.add_argument("--without", action="append", default=[], help="a requirement to leave out (repeatable)")
    args = ap.parse_args(argv)
    extras = [e for e in args.extras.split(",") if e]
    sys.stdout.write("".join(f"{r}\n" for r in requirements(extras, args.without)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
