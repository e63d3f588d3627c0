"""Where nerbatch starts TensorFlow: no start-up noise on stderr, one INFO line
about the devices, real messages kept, thread pools sized for training."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

#: What TensorFlow writes while it starts on a machine without a GPU (absl lines,
#: CUDA probing), whatever TF_CPP_MIN_LOG_LEVEL says.
NOISE_MARKERS = ("I0000 ", "W0000 ", "E0000 ", "absl::InitializeLog", "cuInit", "cuda drivers", "oneDNN")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_NUM_INTRAOP_THREADS")}
    environment.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=REPO,
                          timeout=180)


def test_starting_the_model_code_writes_no_tensorflow_noise_and_one_line_about_the_gpu():
    code = ("import logging; logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
            "import nerbatch.model.tagger, nerbatch.bundle\n"
            "from nerbatch.model.backend import load_keras; keras = load_keras()\n"
            "print(float(keras.ops.sum(keras.ops.ones((2, 2)) @ keras.ops.ones((2, 2)))))\n")
    for level in (None, "2"):  # unset (the CLI), and what the test suite and older job variables set
        result = _python(code, **({"TF_CPP_MIN_LOG_LEVEL": level} if level else {}))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "8.0"
        assert not [line for line in result.stderr.splitlines() if any(m in line for m in NOISE_MARKERS)], result.stderr
        [device_line] = [line for line in result.stderr.splitlines() if line.startswith("nerbatch.model.backend:")]
        assert "GPU" in device_line and ("no GPU, running on the CPU" in device_line or "using" in device_line)
        assert result.stderr.strip() == device_line  # nothing else


def test_what_is_not_start_up_noise_still_reaches_stderr(capfd):
    from nerbatch.model.backend import _start_up_output_filtered

    with _start_up_output_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795619363.488434   17779 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1795619363.5   17779 cuda_executor.cc:1] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"something a person must see\n")
    assert capfd.readouterr().err == "something a person must see\n"


def test_training_gets_every_core_in_a_process_capped_at_one_thread():
    code = ("from nerbatch.model.backend import dedicate_cores, load_keras\n"
            "keras = load_keras(); print(dedicate_cores(2))\n"
            "keras.ops.ones((2, 2)) @ keras.ops.ones((2, 2))\n"
            "import tensorflow as tf; print(tf.config.threading.get_intra_op_parallelism_threads())\n"
            "print(dedicate_cores(2))\n")
    result = _python(code, TF_NUM_INTRAOP_THREADS="1", OMP_NUM_THREADS="1")  # as in a Dask worker process
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2", "2"]
    assert "keeps them" not in result.stderr
