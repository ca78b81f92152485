from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay.problem import features
from tests.problem import factories


def test_label_counts_late_cancelled_and_diverted_as_delayed() -> None:
    frame = pd.DataFrame({"arr_delay": [14.0, 15.0, np.nan, -5.0]})
    assert features.label(frame, 15).to_list() == [0, 1, 1, 0]


def test_features_are_row_wise() -> None:
    joined = factories.joined(4)
    whole = features.build_features(joined)
    one_by_one = pd.concat([features.build_features(joined.iloc[[i]]) for i in range(len(joined))])
    pd.testing.assert_frame_equal(whole, one_by_one)
    assert list(whole.columns) == list(features.FEATURES)


def test_block_time_takes_out_the_time_zone() -> None:
    row = features.build_features(factories.joined(1)).iloc[0]
    # 06:00 EWR -> 08:00 local at ORD (UTC-6): 3 hours gate to gate
    assert row["sched_block_minutes"] == 180.0
    assert row["schedule_padding_minutes"] == pytest.approx(180.0 - 719.0 / 8.0)


def test_days_to_holiday() -> None:
    dates = pd.Series(pd.to_datetime(["2013-07-04", "2013-07-01", "2013-03-25"]))
    assert features.days_to_holiday(dates).tolist() == [0.0, 3.0, 30.0]
