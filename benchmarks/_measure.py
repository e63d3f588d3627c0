"""Run a command and measure its wall time and peak memory over its whole
process tree (Dask workers included), sampling RSS."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float
    peak_rss_bytes: int
    stdout: str
    returncode: int

    @property
    def peak_mib(self) -> float:
        return self.peak_rss_bytes / 2**20


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(cmd: list[str], *, interval: float = 0.05, env: dict | None = None, timeout: float = 1800) -> Measurement:
    # Output goes to a file, not a pipe: a chatty child must never block on a full pipe while we sample.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.NoSuchProcess:
                break
            time.sleep(interval)
            if time.perf_counter() - started > timeout:
                proc.kill()
        proc.wait()
        seconds = time.perf_counter() - started
        log.seek(0)
        return Measurement(seconds, peak, log.read(), proc.returncode)
