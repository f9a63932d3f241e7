"""Servers the tests start as real processes (llama.cpp's, medcite's own): wait until one answers, or say why not."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path, *, seconds: float, what: str) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if ``proc`` exits or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"{what} exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what} did not start in {seconds:.0f} s: {log.read_text()[-3000:]}"
        time.sleep(0.5)
