"""Real Prefect components for the deployment tests: one `prefect server start`
per session (temporary PREFECT_HOME, analytics off, a 5 s scheduler loop), the
work pools and deployments of deploy/prefect.yaml, process workers and Dask
clusters, each started in its own process group and stopped (then killed) by
group when done.

Signals: a process started in the background by a non-interactive shell
inherits SIGINT as *ignored*, and Prefect's worker then never stops on SIGINT
or SIGTERM (see the field notes). Every service here is started through a tiny
exec wrapper that restores SIGINT's default action first, whatever the state of
the pytest process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProcessCluster, free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
PREFECT_FILE = REPO / "deploy" / "prefect.yaml"

#: ``python -c _EXEC ARGV...``: SIGINT back to its default action, then exec ARGV.
_EXEC = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"

#: Variables of the developer's shell that would point the tests elsewhere.
_FOREIGN = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_HOME", "DASK_SCHEDULER_ADDRESS",
            "NERBATCH_PROJECT_DIR", "NERBATCH_INPUT_TEMPLATE", "NERBATCH_MODEL_DIR", "NERBATCH_OUT_ROOT")

#: What README step 2 has an operator export before `prefect deploy`: the nightly's paths.
OPERATOR_PATH_VARIABLES = ("NERBATCH_INPUT_TEMPLATE", "NERBATCH_MODEL_DIR", "NERBATCH_OUT_ROOT")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Service:
    """A long-running command in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO):
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _EXEC, *cmd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=cwd, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> bool:
        """Signal the group, wait; SIGKILL the group (leftover children too). True if it exited on ``sig``."""
        graceful = False
        if self.alive():
            _killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
                graceful = True
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.proc.pid, signal.SIGKILL)  # children that outlived the leader (flow runs, Dask workers)
        self.proc.wait()
        return graceful


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def prefect_cli(*args: str, env: dict[str, str], timeout: float = 180, check: bool = True) -> str:
    """Run ``prefect ARGS`` from the repository root; return its output (stdout + stderr)."""
    result = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} exited {result.returncode}:\n{output[-6000:]}")
    return output


@dataclass
class PrefectServer:
    url: str  # .../api
    home: Path  # scratch folder: server home, client home, logs
    service: Service
    env: dict[str, str]  # for CLI calls and workers: PREFECT_API_URL, a client PREFECT_HOME

    def api(self, method: str, path: str, body: dict | None = None):
        response = httpx.request(method, self.url + path, json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def flow_run(self, flow_run_id: str) -> dict:
        return self.api("GET", f"/flow_runs/{flow_run_id}")

    def deployment(self, name: str) -> dict:
        return self.api("GET", f"/deployments/name/{name}")

    def wait_for_flow_run(self, flow_run_id: str, timeout: float, watch: list[Service] = ()) -> dict:
        """Poll until the run is in a final state; fail early if a watched service died."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(flow_run_id)
            if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return run
            for service in watch:
                assert service.alive(), f"{service.name} died:\n{service.tail()}"
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {s.name}\n{s.tail()}" for s in watch)
                raise AssertionError(f"flow run {flow_run_id} still {run['state_name']} after {timeout:.0f}s\n{logs}")
            time.sleep(1)

    def latest_artifact(self, key: str) -> dict:
        found = self.api("POST", "/artifacts/filter",
                         {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1})
        assert found, f"no artifact {key!r}"
        artifact = found[0]
        if isinstance(artifact["data"], str):
            try:
                artifact["data"] = json.loads(artifact["data"])
            except ValueError:
                pass
        return artifact


def wait_healthy(url: str, service: Service, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert service.alive(), f"prefect server exited:\n{service.tail()}"
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"prefect server not healthy after {timeout:.0f}s:\n{service.tail()}")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> PrefectServer:
    """One real ``prefect server start`` for the session (fresh SQLite in a temporary PREFECT_HOME)."""
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    server_env = clean_env(
        PREFECT_HOME=str(home / "server-home"),
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",  # default 60: runs appear within seconds of a deploy
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_SERVER_LEVEL="WARNING",
    )
    service = Service("prefect-server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                      server_env, home)
    try:
        seconds = wait_healthy(url, service, timeout=180)
        print(f"\nprefect server healthy after {seconds:.1f}s at {url}")
        client_env = clean_env(PREFECT_API_URL=url, PREFECT_HOME=str(home / "client-home"),
                               NERBATCH_PROJECT_DIR=str(REPO))
        yield PrefectServer(url=url, home=home, service=service, env=client_env)
        _drain_client_workers()
    finally:
        service.stop(signal.SIGTERM, timeout=20)


def _drain_client_workers() -> None:
    """Flush the in-process log and event workers while the server is still up."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
    except Exception:  # noqa: BLE001 - best effort at teardown
        pass


@pytest.fixture()
def prefect_api(prefect_server):
    """Run flows in this process against the session server (not an ephemeral one)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server.url, PREFECT_HOME: str(prefect_server.home / "client-home")}):
        yield prefect_server


@pytest.fixture(scope="session")
def operator_paths(tmp_path_factory) -> dict[str, str]:
    """The paths an operator exports before deploying (README step 2), in a scratch folder."""
    root = tmp_path_factory.mktemp("operator")
    return {"NERBATCH_INPUT_TEMPLATE": f"{root}/dumps/{{date}}/*.parquet", "NERBATCH_MODEL_DIR": f"{root}/models/current",
            "NERBATCH_OUT_ROOT": f"{root}/tagged"}


@pytest.fixture(scope="session")
def deployed(prefect_server, operator_paths) -> dict[str, dict]:
    """The work pools ``cpu`` and ``gpu`` and every deployment of deploy/prefect.yaml,
    created the way an operator does (CLI, from the repository root, the paths exported)."""
    env = {**prefect_server.env, **operator_paths}
    creating = [subprocess.Popen([PREFECT, "work-pool", "create", pool, "--type", "process", "--overwrite"], env=env,
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 stdin=subprocess.DEVNULL, start_new_session=True) for pool in ("cpu", "gpu")]
    for proc in creating:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output
    output = prefect_cli("--no-prompt", "deploy", "--prefect-file", str(PREFECT_FILE.relative_to(REPO)), "--all",
                         env=env)
    names = ["tag-documents/nightly", "backfill/on-demand", "prepare-corpus/on-demand", "train-tagger/gpu",
             "ner-pipeline/default"]
    for name in names:
        assert f"Deployment '{name}' successfully created" in output, output[-4000:]
    return {name: prefect_server.deployment(name) for name in names}


@pytest.fixture(scope="session")
def gpu_cluster(tmp_path_factory):
    """A real Dask cluster of two single-threaded workers; ``worker-1`` has ``GPU=1``."""
    cluster = ProcessCluster(tmp_path_factory.mktemp("dask-gpu"), [[], ["--resources", "GPU=1"]])
    try:
        yield cluster
    finally:
        cluster.stop()
        for proc in cluster.procs.values():
            _killpg(proc.pid, signal.SIGKILL)


UUID = re.compile(r"UUID:\s*([0-9a-f-]{36})")


def flow_run_id_from(output: str) -> str:
    match = UUID.search(output)
    assert match, f"no flow run id in:\n{output}"
    return match.group(1)


def write_dump(folder: Path, n_docs: int, seed: int = 3, name: str = "dump-0.parquet") -> dict[str, str]:
    """A Parquet document dump (``doc_id``, ``text``) from the synthetic templates; returns texts by id."""
    import pandas as pd

    from tests.synthetic import document_text, synthetic_sentences

    folder.mkdir(parents=True, exist_ok=True)
    sentences = synthetic_sentences(n_docs * 3, seed=seed)
    docs = {f"s{seed}-d{i:03d}": document_text(sentences[3 * i : 3 * i + 3]) for i in range(n_docs)}
    pd.DataFrame({"doc_id": list(docs), "text": list(docs.values())}).to_parquet(folder / name, index=False)
    return docs
