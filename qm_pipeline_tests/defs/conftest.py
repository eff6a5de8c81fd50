"""Fixtures for the Dagster jobs run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from qm_pipeline.runner import prepare_dagster_home


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance under a DAGSTER_HOME of this test, telemetry off (as the CLI)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    prepare_dagster_home(tmp_path)
    with dg.DagsterInstance.get() as found:
        yield found
