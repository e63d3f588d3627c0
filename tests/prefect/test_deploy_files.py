"""Structural checks of deploy/ that need no server, no Docker engine and no
cluster: prefect.yaml entrypoints exist, the nightly cron avoids the DST hour,
the Dockerfiles pin their bases and drop root, the Dask files are valid."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _prefect_yaml() -> dict:
    return yaml.safe_load((DEPLOY / "prefect.yaml").read_text())


def test_every_entrypoint_names_a_flow_function_in_the_repository():
    deployments = _prefect_yaml()["deployments"]
    assert {d["name"] for d in deployments} == {"nightly", "on-demand", "gpu", "default"}
    for d in deployments:
        path, function = d["entrypoint"].split(":")
        tree = ast.parse((REPO / path).read_text())
        [node] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
        assert any(isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "flow" for dec in node.decorator_list)
        assert d["work_pool"]["name"] in {"cpu", "gpu"}


def test_nightly_schedule_has_a_timezone_and_avoids_the_dst_hour():
    [nightly] = [d for d in _prefect_yaml()["deployments"] if d["name"] == "nightly"]
    [schedule] = nightly["schedules"]
    minute, hour, *_ = schedule["cron"].split()
    assert schedule["timezone"] == "Europe/Berlin" and hour.isdigit() and int(hour) != 2
    assert nightly["concurrency_limit"] == 1
    assert {"input_template", "bundle_dir", "out_root"} <= set(nightly["parameters"])
    # The template comes from the deploying environment; the build step that decides whether
    # the schedule is active requires it to hold {date} (tests/prefect/test_nightly_paths.py).
    assert nightly["parameters"]["input_template"] == "{{ $NERBATCH_INPUT_TEMPLATE }}"
    [step] = nightly["build"]
    assert "NERBATCH_INPUT_TEMPLATE" in step["prefect.deployments.steps.run_shell_script"]["script"]
    assert schedule["active"] == "{{ nightly-paths.stdout }}"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_dockerfiles_pin_their_bases_install_with_constraints_and_drop_root(name):
    steps = _instructions(DEPLOY / "docker" / name)
    froms = [args.split()[0] for op, args in steps if op == "FROM"]
    assert froms
    for image in froms:
        repository, _, tag = image.rpartition(":")
        assert repository and re.search(r"\d", tag) and tag != "latest", f"{image} is not pinned to an exact tag"
    final_stage = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    users = [args for op, args in steps[final_stage:] if op == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    copies = " ".join(args for op, args in steps if op == "COPY")
    assert "constraints.txt" in copies and "nerbatch" in copies and "flows" in copies
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert installs and all("--constraint constraints.txt" in args for args in installs)
    extras = {e for args in installs for group in re.findall(r'"\.\[([\w,]+)\]"', args) for e in group.split(",")}
    assert "vectors" in extras  # both images train the default preset, which uses the GloVe package
    if name == "Dockerfile.gpu":
        assert any(re.fullmatch(r"nvidia/cuda:[\d.]+-[\w-]*runtime[\w.-]*", image) for image in froms)
        assert "gpu" in extras
    assert all(op != "ADD" for op, _ in steps)  # COPY only: no remote fetches at build time


def test_dask_settings_validate_and_worker_specs_fit_the_nanny():
    import distributed
    import jsonschema

    schema = yaml.safe_load(Path(distributed.__file__).with_name("distributed-schema.yaml").read_text())
    jsonschema.validate(yaml.safe_load((DEPLOY / "dask" / "dask.yaml").read_text()), schema)
    accepted = set(inspect.signature(distributed.Nanny.__init__).parameters)
    specs = {}
    for name in ("cpu-worker.yaml", "gpu-worker.yaml"):
        specs.update(yaml.safe_load((DEPLOY / "dask" / name).read_text()))
    for worker, spec in specs.items():
        assert spec["cls"] == "distributed.Nanny" and set(spec["opts"]) <= accepted, worker
        assert spec["opts"]["nthreads"] == 1
    assert specs["gpu-0"]["opts"]["resources"] == {"GPU": 1}
