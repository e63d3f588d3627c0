"""The LocalCluster a job starts: worker processes get their environment
before they start, and two runs on one machine do not collide."""

from __future__ import annotations

import logging
import os
import warnings

from nerbatch.cluster import dask_client


def _worker_settings() -> tuple:
    return (os.environ.get("OMP_NUM_THREADS"), os.environ.get("TF_NUM_INTRAOP_THREADS"),
            logging.getLogger("distributed.worker").getEffectiveLevel())


def test_worker_processes_start_capped_and_quiet_and_this_process_is_not(monkeypatch):
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
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
    assert settings == settings_after_restart == ("1", "1", logging.WARNING)


def test_two_local_clusters_at_once_do_not_fight_over_a_port():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dask_client(n_workers=1, threads=True) as a, dask_client(n_workers=1, threads=True) as b:
            assert a.submit(sum, [1, 2]).result() + b.submit(sum, [3]).result() == 6
    assert not [w for w in caught if "already in use" in str(w.message)]
