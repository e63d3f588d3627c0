"""Run a command and measure its wall time and peak memory over its whole
process tree (Dask workers included), sampling RSS."""

from __future__ import annotations

import subprocess
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
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    return Measurement(time.perf_counter() - started, peak, out, proc.returncode)
