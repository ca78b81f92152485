"""The problem this project solves: will it rain in Seattle tomorrow?

A second problem for the template's machinery, from a different data set: NOAA's daily weather at
Seattle-Tacoma airport, 2012-2015, as the ``vega_datasets`` package ships it (``seattle-weather.csv``).
Each day is an example: what is known that evening (the day's precipitation, temperatures, wind and
weather, and the recent days) predicts whether the next day has precipitation.

The machinery reads it only through ``PROBLEM``, an implementation of :class:`flightdelay.interface.Problem`:

* ``schemas.py``: the raw files, the joined table and the request model (pandera);
* ``join.py``: the recent days and the next day's precipitation, by calendar day;
* ``features.py``: the model's inputs and the label;
* ``sample.py``: the sample data as monthly files;
* here: the options of ``params.yaml``'s ``ingest`` and ``label`` sections and the request example.

There are no reference tables: the only code a request names, the day's weather, is checked against the
schema's list.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field

from flightdelay.interface import Problem, SampleError
from flightdelay.io.files import read_csvs

from . import features, join, sample, schemas


class Ingest(BaseModel):
    """How far back the recent days reach."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    window_days: Annotated[int, Field(ge=1, le=31)]


class Label(BaseModel):
    """What counts as a rainy day."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_precipitation_mm: Annotated[float, Field(ge=0)]


# The request the OpenAPI page offers under "Try it out": a real November day (it rained the next day).
EXAMPLE = {
    "date": "2015-11-12",
    "precipitation": 9.9,
    "temp_max": 11.1,
    "temp_min": 5.0,
    "wind": 5.1,
    "weather": "fog",
    "precipitation_prev_day": 1.5,
    "precipitation_2_days_ago": 1.3,
    "temp_max_change_1d": 0.0,
    "wind_change_1d": 0.5,
    "rain_days_recent": 6.0,
    "precipitation_recent": 35.3,
}


class SeattleRain(Problem):
    entity = "day"
    keys = schemas.DAY_KEY
    categorical = features.CATEGORICAL
    numeric = features.NUMERIC
    label = features.LABEL
    classes = ("dry", "rain")
    outcome = schemas.OUTCOME
    reference_files = ()
    example = EXAMPLE
    ingest_options = Ingest
    label_options = Label
    held_back = sample.HELD_BACK

    def ingest(self, raw: Path, options: Any) -> pd.DataFrame:
        days = read_csvs(sorted((raw / sample.DAILY).glob("*.csv")), schemas.RawDays)
        return join.derive_days(days, options.window_days)

    def schema(self, raw: Path) -> pa.DataFrameSchema:
        return schemas.Days.to_schema()

    def warnings(self) -> pa.DataFrameSchema:
        return schemas.WARNINGS

    def features_of(self, joined: pd.DataFrame) -> pd.DataFrame:
        return features.build_features(joined)

    def labels_of(self, joined: pd.DataFrame, options: Any) -> pd.Series:
        return features.label(joined, options.min_precipitation_mm)

    def label_of_outcome(self, outcome: pd.Series, options: Any) -> pd.Series:
        # The next day's precipitation in mm; a day without a measurement has no label.
        amounts = pd.Series(pd.to_numeric(outcome, errors="coerce"), index=outcome.index, dtype=float)
        rainy: pd.Series = (amounts > options.min_precipitation_mm).astype(float)
        return rainy.where(amounts.notna())

    def period(self, rows: pd.DataFrame) -> pd.Series:
        dates = pd.to_datetime(rows["date"], format="%Y-%m-%d")
        return (dates.dt.year * 100 + dates.dt.month).astype("int64")

    def request_model(self, examples: Mapping[str, Any] | None = None) -> type[BaseModel]:
        model: type[BaseModel] = schemas.request_model(examples)
        return model

    def request_columns(self) -> tuple[str, ...]:
        return schemas.REQUEST_COLUMNS

    def load_references(self, bundle: Path) -> frozenset[str]:
        return frozenset(schemas.WEATHER_TYPES)

    def unknown_values(self, requests: Sequence[Mapping[str, Any]], references: Any) -> list[tuple[int, str, str]]:
        return [
            (index, "weather", str(request["weather"]))
            for index, request in enumerate(requests)
            if request["weather"] not in references
        ]

    def request_rows(self, requests: Sequence[Mapping[str, Any]], references: Any) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(list(requests), columns=list(schemas.REQUEST_COLUMNS))
        numeric = [c for c in schemas.REQUEST_COLUMNS if c not in ("date", "weather")]
        frame[numeric] = frame[numeric].astype(float)
        return frame

    def sample_periods(self) -> list[int]:
        return list(sample.PERIODS)

    def write_sample(self, raw: Path, periods: Sequence[int]) -> None:
        sample.write_sample(raw, periods)

    def sample_layout(self, nfiles: int) -> list[int] | None:
        # One file per month from the first on.
        return sample.PERIODS[:nfiles] if 1 <= nfiles <= len(sample.PERIODS) else None

    def add_period(self, raw: Path, period: int) -> list[Path]:
        return sample.write_months(raw, [period])

    def periods_present(self, raw: Path) -> list[int]:
        return sample.periods_present(raw)

    def sample_window(self, raw: Path, period: int, options: Any) -> pd.DataFrame:
        (wanted,) = sample.check_periods([period])
        index = sample.PERIODS.index(wanted)
        # The month before for the first days' recent days, the month after for the last day's label.
        around = sample.PERIODS[max(index - 1, 0) : index + 2]
        with tempfile.TemporaryDirectory() as tmp:
            sample.write_months(Path(tmp), around)
            days = read_csvs([Path(tmp) / sample.month_file(p) for p in around], schemas.RawDays)
        joined = join.derive_days(days, options.window_days)
        rows = joined[self.period(joined) == wanted].reset_index(drop=True)
        if rows.empty:
            raise SampleError(f"the sample has no day of {sample.month_file(wanted)} whose next day is on file")
        return rows


PROBLEM: Problem = SeattleRain()
