"""Where nerbatch starts Keras and its backend: once per process, without
TensorFlow's start-up noise, with one INFO line saying whether a GPU is used.

TensorFlow's C++ runtime writes 4-32 lines to stderr while it loads and probes
for CUDA (``E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)``, oneDNN
and "cuda drivers" notes, absl's "All log messages before absl::InitializeLog()"
warning). They are written before its log level applies, so even
``TF_CPP_MIN_LOG_LEVEL=3`` does not hide them, and on a CPU worker they look like
errors although the absence of a GPU is normal. :func:`load_keras` therefore
imports Keras and probes the devices with stderr's file descriptor pointed at a
temporary file, and passes on only what is not that noise (and everything, when
the import fails).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

log = logging.getLogger(__name__)

#: Start-up lines of TensorFlow's runtime that say nothing an operator can act on.
START_UP_NOISE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    # absl INFO and WARNING lines ("I0000 00:00:1795619363.488434   17779 port.cc:153] ..."), and its
    # ERROR lines about CUDA (on a machine without a GPU: "failed call to cuInit")
    r"|^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|^E\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*(cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS|TensorRT|registered)"
    r"|^To enable the following instructions: .* in other operations, rebuild TensorFlow"
)

_lock = threading.Lock()
_devices: str | None = None  # set once the backend has started in this process


def load_keras() -> ModuleType:
    """The ``keras`` module, its backend started in this process (first call only:
    TensorFlow's start-up noise kept off stderr, one INFO line about the devices)."""
    global _devices
    with _lock:
        if _devices is None:
            # The user's setting wins; by default TensorFlow's own later INFO/WARNING/ERROR
            # lines are off too (a failure still raises a Python exception).
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            with _start_up_output_filtered():
                import keras

                _devices = _probe_devices(keras)
            log.info("%s", _devices)
    import keras

    return keras


def describe_devices() -> str:
    """One line: the Keras backend and whether it uses a GPU, e.g.
    ``TensorFlow 2.21.0: no GPU, running on the CPU (2 cores)``."""
    load_keras()
    assert _devices is not None
    return _devices


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def dedicate_cores(cores: int) -> int:
    """Size TensorFlow's thread pools for ``cores`` and return the size in effect.

    A Dask worker process runs with TensorFlow capped at one thread (one worker
    process per core for tagging); the one task that trains a model gets the whole
    machine instead. The pools are fixed once TensorFlow has run its first
    operation in the process: then this logs why it cannot, and changes nothing.
    """
    keras = load_keras()
    if keras.backend.backend() != "tensorflow":
        return cores
    import tensorflow as tf

    threading_config = tf.config.threading
    try:
        threading_config.set_intra_op_parallelism_threads(cores)
        threading_config.set_inter_op_parallelism_threads(cores)
    except RuntimeError:
        # 0 = not set: the environment's, else TensorFlow's default (every core).
        in_effect = (threading_config.get_intra_op_parallelism_threads() or _threads_from_environment()
                     or machine_cores())
        if in_effect != cores:
            log.warning("TensorFlow already runs in this process with %d threads and keeps them (not %d); "
                        "start the process without TF_NUM_INTRAOP_THREADS to use every core", in_effect, cores)
        return in_effect
    return cores


def _threads_from_environment() -> int:
    try:
        return int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
    except ValueError:
        return 0


def _probe_devices(keras: ModuleType) -> str:
    """Initialise the backend's device list (where CUDA is probed) and describe it."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        name, gpus = f"TensorFlow {tf.__version__}", tf.config.list_physical_devices("GPU")
        gpu_names = [gpu.name for gpu in gpus]
    elif backend == "jax":
        import jax

        name, gpu_names = f"JAX {jax.__version__}", [str(d) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        name = f"PyTorch {torch.__version__}"
        gpu_names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        name, gpu_names = f"Keras backend {backend}", []
    if gpu_names:
        return f"{name}: using {len(gpu_names)} GPU(s): {', '.join(gpu_names)}"
    return f"{name}: no GPU, running on the CPU ({machine_cores()} cores)"


@contextmanager
def _start_up_output_filtered() -> Iterator[None]:
    """Whatever is written to file descriptor 2 in the block goes to a temporary
    file; afterwards the lines that are not :data:`START_UP_NOISE` are written to
    stderr (all of them if the block raised, since they may explain why)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to keep clean
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", errors="replace").splitlines()
            kept = lines if failed else [line for line in lines if line.strip() and not START_UP_NOISE.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
