"""The LocalCluster a job starts: worker processes get their environment
before they start, and two runs on one machine do not collide."""

from __future__ import annotations

import logging
import os
import warnings

from nerbatch.cluster import dask_client


def _worker_settings() -> tuple:
    return (os.environ.get("OMP_NUM_THREADS"), os.environ.get("TF_NUM_INTRAOP_THREADS"),
            logging.getLogger("distributed.worker").getEffectiveLevel(), os.environ.get("MALLOC_TRIM_THRESHOLD_"))


def test_worker_processes_start_capped_and_quiet_and_this_process_is_not(monkeypatch):
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    here = (None, None)
    with dask_client(n_workers=1) as client:
        (settings,) = client.run(_worker_settings).values()
        # Dask's Nanny writes the workers' variables into this process's environment to spawn them.
        assert _worker_settings()[:2] == here
        client.restart()  # a worker spawned again mid-job
        (settings_after_restart,) = client.run(_worker_settings).values()
    assert _worker_settings()[:2] == here
    # Dask's logging level is read when a worker imports it, so it must be set before the spawn.
    # Dask's MALLOC_TRIM_THRESHOLD_ is not set: it made TensorFlow on a worker 1.7x slower.
    assert settings == settings_after_restart == ("1", "1", logging.WARNING, None)


def test_two_local_clusters_at_once_do_not_fight_over_a_port():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dask_client(n_workers=1, threads=True) as a, dask_client(n_workers=1, threads=True) as b:
            assert a.submit(sum, [1, 2]).result() + b.submit(sum, [3]).result() == 6
    assert not [w for w in caught if "already in use" in str(w.message)]


def test_workers_started_with_the_deploy_settings_go_without_the_malloc_trim_threshold(tmp_path):
    """``dask worker`` processes started as ``deploy/dask/README.md`` says (``DASK_CONFIG``
    pointing at ``deploy/dask``) do not get Dask's default ``MALLOC_TRIM_THRESHOLD_``."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    env["DASK_CONFIG"] = str(Path(__file__).resolve().parents[1] / "deploy" / "dask")
    bin_dir = Path(sys.executable).parent
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", "127.0.0.1:0"], env=env, cwd=tmp_path)
    worker = subprocess.Popen([bin_dir / "dask", "worker", address, "--nthreads", "1",
                               "--dashboard-address", "127.0.0.1:0"], env=env, cwd=tmp_path)
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            # A lambda travels by value: the worker, started elsewhere, cannot import this module.
            values = set(client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_")).values())
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)
    assert values == {None}
