"""Bad input is one line in a flow run's logs, not three tracebacks.

Prefect logs every exception a run ends with, with its traceback, once per level
it passes: the subflow's engine ("Encountered exception during execution"), the
parent flow's engine, and, in a deployment, the engine's "Engine execution exited
with unexpected exception". For a :class:`~nerbatch.errors.NerbatchError` (bad
input, a refused output folder) the traceback only hides the one line that
matters, which the failed state's message already carries. Real bugs (any other
exception) keep their tracebacks.
"""

from __future__ import annotations

import logging

from nerbatch.errors import NerbatchError

#: The loggers of Prefect's flow and task run engines.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")

_LOGGED = "_nerbatch_logged"


class RefusalsInOneLine(logging.Filter):
    """Turns a record that carries a ``NerbatchError`` into ``Type: message`` without
    traceback, the first time that exception is logged, and drops it after that."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NerbatchError):
            return True
        if getattr(exc, _LOGGED, False):
            return False
        try:
            setattr(exc, _LOGGED, True)
        except AttributeError:  # an exception class with __slots__: log it every time
            pass
        record.msg, record.args = "%s: %s", (type(exc).__name__, exc)
        record.exc_info, record.exc_text = None, None
        return True


def log_refusals_in_one_line() -> None:
    """Install :class:`RefusalsInOneLine` on Prefect's run loggers (once per process)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RefusalsInOneLine) for f in logger.filters):
            logger.addFilter(RefusalsInOneLine())
