from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay.problem import PROBLEM, References, features, join, schemas
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
    dates = np.array(["2013-07-04", "2013-07-01", "2013-03-25"], dtype="datetime64[D]")
    assert features.days_to_holiday(dates).tolist() == [0.0, 3.0, 30.0]


def test_calendar_days_and_the_day_of_week_agree_with_pandas() -> None:
    stamps = pd.date_range("1999-12-25", "2031-03-10", freq="17D")
    days = features.calendar_days(stamps.year.to_numpy(float), stamps.month.to_numpy(float), stamps.day.to_numpy(float))
    assert (days == stamps.to_numpy(dtype="datetime64[D]")).all()
    rows = factories.joined(1)
    monday = features.build_features(rows.assign(year=2013, month=11, day=25)).iloc[0]
    assert monday["day_of_week"] == 0.0


def test_the_services_column_path_gives_the_pipelines_features() -> None:
    """``request_features`` (the service: column arrays, no frame) equals ``features_of(request_rows(...))``."""
    joined = factories.joined(4)
    requests = joined[list(schemas.REQUEST_COLUMNS)].astype(object).where(joined.notna(), None).to_dict("records")
    requests[1] |= {"tailnum": "N00000", "dest": "XYZ"}  # not on file: joined as unknown, as ingest would
    requests[2] |= {"tailnum": None, "temp": None}
    references = References(factories.planes(), factories.airports(), frozenset(), frozenset())
    served = PROBLEM.request_features(requests, references)
    expected = PROBLEM.features_of(PROBLEM.request_rows(requests, references))
    assert list(served) == list(features.FEATURES)
    for column in features.FEATURES:
        got, want = served[column], expected[column].to_numpy()
        assert len(got) == len(want) == 4
        if column in features.CATEGORICAL:
            assert list(got) == [None if pd.isna(v) else v for v in want], column
        else:
            np.testing.assert_array_equal(got, want.astype(float), err_msg=column)
    assert served["dest_lat"][1] != served["dest_lat"][1]  # NaN: the unknown destination
    assert served["plane_manufacturer"][1] is None


def test_a_reference_table_with_a_repeated_key_is_refused() -> None:
    planes = pd.concat([factories.planes(), factories.planes().iloc[:1]])
    with pytest.raises(ValueError, match=r"tailnum repeats in a reference table: \['N"):
        join.Lookup.of(planes, "tailnum", join.AIRCRAFT)
