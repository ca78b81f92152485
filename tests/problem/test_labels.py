"""Labels that arrive after the prediction (``flightdelay monitor --labels``): the arrival delay of each request."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flightdelay.monitor import MonitorError, join_labels, read_labels
from flightdelay.problem import Label


def test_labels_join_by_request_id_whatever_their_order_and_however_late() -> None:
    logged = pd.Series(["a", "b", "c", "d"])
    arrived = pd.Series({"d": 3.0, "a": 45.0, "c": np.nan})  # out of order; b not arrived; c cancelled
    labels = join_labels(logged, arrived, Label(delay_minutes=15))
    assert labels[0] == 1.0 and math.isnan(labels[1]) and labels[2] == 1.0 and labels[3] == 0.0


def test_labels_file_repeats_count_once_and_conflicts_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("request_id,arr_delay\na,45\nb,-3\na,45\nc,\n")
    labels = read_labels(path)
    assert labels.to_dict() == pytest.approx({"a": 45.0, "b": -3.0, "c": float("nan")}, nan_ok=True)
    path.write_text("request_id,arr_delay\na,45\na,2\n")
    with pytest.raises(MonitorError, match="conflicting labels for request ids a"):
        read_labels(path)
    path.write_text("id,delay\na,4\n")
    with pytest.raises(MonitorError, match="missing \\['arr_delay', 'request_id'\\]"):
        read_labels(path)
