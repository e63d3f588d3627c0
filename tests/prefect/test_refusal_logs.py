"""The log filter behind "bad input is one line": Prefect's run loggers, real records."""

from __future__ import annotations

import logging

import pytest

import flows  # noqa: F401 - installs the filter, as every flow module does
from nerbatch.errors import InputError


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture()
def flow_run_log():
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    logger = logging.getLogger("prefect.flow_runs")
    handler = Collect()
    logger.addHandler(handler)
    try:
        with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):  # no flow run here
            yield logger, handler.lines
    finally:
        logger.removeHandler(handler)


def test_a_refusal_is_one_line_once_and_a_bug_keeps_its_traceback(flow_run_log):
    logger, lines = flow_run_log
    refusal = InputError("/data/d.parquet", "not a readable Parquet file")
    for _ in range(3):  # subflow, parent flow, engine: the same exception each time
        try:
            raise refusal
        except InputError:
            logger.exception("Encountered exception during execution: %r", refusal)
    assert lines == ["InputError: /data/d.parquet: not a readable Parquet file"]
    try:
        raise ZeroDivisionError("a bug")
    except ZeroDivisionError as bug:
        logger.exception("Encountered exception during execution: %r", bug)
    assert lines[-1].startswith("Encountered exception during execution: ZeroDivisionError")
    assert "Traceback (most recent call last)" in lines[-1]
