"""Shared fixtures: the project root, settings, and MLflow pointed at a temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdelay import settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _mlflow_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the project's own MLflow store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def params() -> settings.Params:
    return settings.load(ROOT / "params.yaml")
