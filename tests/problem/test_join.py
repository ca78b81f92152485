from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightdelay.problem.join import derive_weather, join_sources, schedule_context
from tests.problem import factories


def test_weather_trends_look_back_exactly_h_hours() -> None:
    derived, dropped = derive_weather(factories.weather())
    assert dropped == 0
    # pressure rises linearly by 10/23 per hour
    step = 10 / 23
    assert derived.loc[3, "pressure_change_3h"] == pytest.approx(3 * step)
    assert np.isnan(derived.loc[2, "pressure_change_3h"])  # no observation 3 hours before hour 2


def test_weather_gap_gives_nan_not_a_neighbour() -> None:
    gappy = factories.weather(hours=range(0, 24, 2))  # only even hours
    derived, _ = derive_weather(gappy)
    assert derived["pressure_change_3h"].isna().all()


def test_repeated_weather_hour_keeps_the_first() -> None:
    weather = factories.weather(hours=range(3))
    repeated = weather.iloc[[0, 1, 1, 2]].reset_index(drop=True)
    repeated.loc[2, "temp"] = 99.0
    derived, dropped = derive_weather(repeated)
    assert dropped == 1
    assert 99.0 not in derived["temp"].to_list()


def test_recent_precip_sums_three_hours() -> None:
    weather = factories.weather(hours=range(5), precip=[0.1, 0.2, 0.3, 0.0, 0.0])
    derived, _ = derive_weather(weather)
    assert derived.loc[2, "precip_3h"] == pytest.approx(0.6)
    assert derived.loc[4, "precip_3h"] == pytest.approx(0.3)


def test_join_takes_the_weather_known_at_prediction_time() -> None:
    derived, _ = derive_weather(factories.weather())
    flights = factories.flights(2, sched_dep_time=[630, 745])  # predicted at 04:30 and 05:45
    joined = join_sources(flights, derived, factories.planes(), factories.airports(), 120)
    assert joined["temp"].to_list() == pytest.approx(derived.set_index("hour").loc[[4, 5], "temp"].to_list())
    assert joined["plane_year"].to_list() == [1999.0, 1999.0]
    assert joined["dest_tz"].to_list() == [-6.0, -6.0]
    assert len(joined) == 2


def test_unknown_tail_and_destination_stay_as_missing() -> None:
    derived, _ = derive_weather(factories.weather())
    flights = factories.flights(1, tailnum=["N00000"], dest=["PSE"])
    joined = join_sources(flights, derived, factories.planes(), factories.airports(), 120)
    assert joined[["plane_year", "dest_lat"]].isna().all().all()


def test_schedule_context_counts_legs_and_gaps() -> None:
    flights = factories.flights(3)
    context = schedule_context(flights, horizon_minutes=30)
    assert context["tail_leg_of_day"].to_list() == [0.0, 1.0, 2.0]
    assert context["minutes_since_tail_prev_departure"].to_list()[1:] == [60.0, 60.0]
    assert context["origin_departures_in_hour"].to_list() == [1.0, 1.0, 1.0]
    assert context["carrier_departures_of_day"].to_list() == [3.0, 3.0, 3.0]


def test_previous_leg_delay_is_only_what_was_known_at_the_horizon() -> None:
    # legs at 06:00 and 09:00; prediction for the 09:00 leg is made at 07:00 (horizon 120)
    flights = factories.flights(2, sched_dep_time=[600, 900], dep_delay=[30.0, 0.0])
    known = schedule_context(flights, horizon_minutes=120)["tail_prev_departure_delay"].to_list()
    assert known[1] == 30.0  # left at 06:30, before 07:00
    late = factories.flights(2, sched_dep_time=[600, 900], dep_delay=[100.0, 0.0])
    censored = schedule_context(late, horizon_minutes=120)["tail_prev_departure_delay"].to_list()
    assert censored[1] == 60.0  # still waiting at 07:00: only 60 minutes were known
    not_due = schedule_context(flights, horizon_minutes=240)["tail_prev_departure_delay"].to_list()
    assert np.isnan(not_due[1])  # at 05:00 the 06:00 leg was not due yet


def test_no_tail_number_looks_like_a_first_leg() -> None:
    """In the data a missing tail number mostly means a cancelled flight: it must not leak the label."""
    flights = factories.flights(2, tailnum=[None, None])
    context = schedule_context(flights, horizon_minutes=120)
    assert context["tail_leg_of_day"].to_list() == [0.0, 0.0]
    assert context[["minutes_since_tail_prev_departure", "tail_prev_departure_delay"]].isna().all().all()


def test_prediction_time_before_midnight_takes_the_previous_days_weather() -> None:
    weather = pd.concat(
        [factories.weather(hours=range(22, 24)).assign(day=1), factories.weather(hours=range(3)).assign(day=2)]
    )
    derived, _ = derive_weather(weather)
    flights = factories.flights(1, day=[2], sched_dep_time=[100], sched_arr_time=[300])  # predicted 23:00 on the 1st
    joined = join_sources(flights, derived, factories.planes(), factories.airports(), 120)
    expected = derived[(derived["day"] == 1) & (derived["hour"] == 23)]["temp"].item()
    assert joined["temp"].item() == pytest.approx(expected)
