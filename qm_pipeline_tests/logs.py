"""The client libraries swallow decoding and request errors and only log them: tests that
talk to the simulated gateway look for those ERROR records (no heavy imports here, so the
ib_insync-only environment can use it too)."""

from __future__ import annotations

import logging

import pytest

SIMULATOR_LOGGER = "qm_pipeline.lib.sim.gateway.server"


def error_records(caplog: pytest.LogCaptureFixture, names: set[str]) -> list[str]:
    """`logger: message` of every ERROR (or worse) record from the named loggers."""
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.ERROR and r.name in names]
