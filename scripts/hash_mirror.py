"""Maintainers' tool: record the sha256 and size of every file in the data mirror into corpus/sources.json.

Run it when the mirror gains or changes a file: ``python scripts/hash_mirror.py ../shared/data``.
Download URLs already recorded in corpus/sources.json are kept.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "corpus" / "sources.json"


def main(mirror: str) -> None:
    root = Path(mirror)
    old = {e["path"]: e for e in json.loads(OUT.read_text())["files"]} if OUT.exists() else {}
    files = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name in {"LICENSES.md"}:
            continue
        rel = p.relative_to(root).as_posix()
        entry = {"path": rel, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
        if old.get(rel, {}).get("url"):
            entry["url"] = old[rel]["url"]
        files.append(entry)
    OUT.write_text(json.dumps({"files": files}, indent=1) + "\n")
    print(f"{len(files)} files -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
