"""Months of the real sample as monitor windows, built once per session (each takes seconds)."""

from __future__ import annotations

import json

import pytest

from flightdelay import monitor, settings
from tests.conftest import ROOT


@pytest.fixture(scope="session")
def baseline(params: settings.Params) -> dict[str, object]:
    return dict(json.loads((ROOT / params.paths.metrics).read_text()))


@pytest.fixture(scope="session")
def january(params: settings.Params) -> monitor.Window:
    return monitor.month_window(ROOT, params, "2013-01")


@pytest.fixture(scope="session")
def february(params: settings.Params) -> monitor.Window:
    return monitor.month_window(ROOT, params, "2013-02")
