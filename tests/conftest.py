"""Shared fixtures: the project root, settings, and MLflow pointed at a temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdelay import problem, settings

ROOT = Path(__file__).resolve().parents[1]

# The end-to-end and monitor tests drive the template's own sample problem (late flights: its requests,
# months and walkthroughs). A project that replaced the problem keeps them, and takes their updates, but
# they are not collected until they speak its problem; the report header says so.
SAMPLE_BOUND = ("e2e", "monitor")
SAMPLE_PROBLEM = bool(getattr(problem, "TEMPLATE_SAMPLE", False))
collect_ignore = [] if SAMPLE_PROBLEM else list(SAMPLE_BOUND)


def pytest_report_header() -> str | None:
    if SAMPLE_PROBLEM:
        return None
    bound = ", ".join(f"tests/{d}" for d in SAMPLE_BOUND)
    return f"not collected: {bound} (they drive the template's sample problem, late flights)"


@pytest.fixture(autouse=True)
def _mlflow_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the project's own MLflow store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def params() -> settings.Params:
    return settings.load(ROOT / "params.yaml")
