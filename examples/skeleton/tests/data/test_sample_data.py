"""Data tests on the project's raw data (TODO: the expectations your data must meet)."""

from __future__ import annotations

from pathlib import Path

from flightdelay import settings
from flightdelay.io import dvc
from flightdelay.problem import PROBLEM
from flightdelay.stages import validate
from tests.conftest import ROOT


def test_raw_data_matches_data_dvc() -> None:
    assert dvc.in_sync(ROOT, Path("data.dvc"))


def test_the_joined_table_passes_the_hard_checks(params: settings.Params) -> None:
    raw = ROOT / params.paths.raw
    joined = PROBLEM.ingest(raw, params.ingest)
    report = validate.check(joined, PROBLEM.schema(raw), PROBLEM.warnings())
    assert report["errors"] == []
    assert report["rows"] > 0
