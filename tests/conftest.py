"""Shared fixtures: real Dask clusters (in-process LocalCluster with worker
processes, and a scheduler + workers started as separate processes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dask_local_client():
    """A LocalCluster with two single-threaded worker processes."""
    from nerbatch.cluster import dask_client

    # Not current for the whole session: tests opt in with ``dask_client_fixture``.
    with dask_client(n_workers=2, as_current=False) as client:
        yield client


@pytest.fixture()
def dask_client_fixture(dask_local_client):
    """Make the session LocalCluster the current scheduler for one test."""
    with dask_local_client.as_current():
        yield dask_local_client


def wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(address, timeout=timeout) as c:
        c.wait_for_workers(n, timeout=timeout)


class ProcessCluster:
    """``dask scheduler`` and ``dask worker`` as separate OS processes on 127.0.0.1."""

    def __init__(self, tmp: Path, workers: list[list[str]]):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        bin_dir = Path(sys.executable).parent
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = tmp
        self._start("scheduler", [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--no-dashboard"])
        for i, extra in enumerate(workers):
            self._start(f"worker-{i}", [str(bin_dir / "dask"), "worker", self.address, "--nthreads", "1",
                                        "--no-dashboard", "--name", f"worker-{i}", *extra])
        wait_for_workers(self.address, len(workers))

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(0.2)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="session")
def process_cluster(tmp_path_factory):
    """A real distributed cluster: one scheduler and two workers, each its own process."""
    cluster = ProcessCluster(tmp_path_factory.mktemp("dask-cluster"), [[], []])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def prepared_synthetic(tmp_path_factory) -> Path:
    """A prepared synthetic corpus (sentences/ + vocab.json)."""
    import dask

    from nerbatch.prepare import PrepareOptions, prepare_corpus
    from tests.synthetic import synthetic_sentences, write_gmb

    root = tmp_path_factory.mktemp("corpus")
    write_gmb(root / "ner_dataset.csv", synthetic_sentences(600, seed=1))
    with dask.config.set(scheduler="threads"):
        prepare_corpus([str(root / "ner_dataset.csv")], root / "prepared", PrepareOptions())
    return root / "prepared"


@pytest.fixture(scope="session")
def trained_synthetic(prepared_synthetic, tmp_path_factory):
    """A small model trained on the synthetic corpus (a ``TrainResult``)."""
    from nerbatch.train import TrainConfig, train_tagger

    bundle = tmp_path_factory.mktemp("model") / "bundle"
    config = TrainConfig(preset="tiny", epochs=8, batch_size=16, learning_rate=5e-3, patience=3, seed=7)
    return train_tagger(prepared_synthetic, bundle, config)
