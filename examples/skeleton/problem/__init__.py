"""Your problem (a skeleton): TODO, one sentence on what the model predicts.

The machinery reads this package only through ``PROBLEM``, an implementation of
:class:`flightdelay.interface.Problem` (its docstrings say what each member must do). Replace each
TODO with your problem; ``schemas.py`` holds the columns. The sample below is made up: a tiny,
deterministic data set so the pipeline, the service and the tests run from the first minute. Replace it
by your data (``dvc add``), or by a writer of a public sample, as the flight-delay template does.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict

from flightdelay.interface import Problem, SampleError, period_label
from flightdelay.io.files import read_csvs

from . import schemas

FOLDER = "events"  # data/raw/events/YYYY-MM.csv
PERIODS = [year * 100 + month for year in (2022, 2023) for month in range(1, 13)]
ROWS_PER_MONTH = 60
EXAMPLE = {"event_id": "e-example", "date": "2023-06-15", "category": "c", "amount": 72.5, "count": 6.0}


class Ingest(BaseModel):
    """TODO: options of the ingest stage (params.yaml, `ingest`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Label(BaseModel):
    """TODO: options of the label (params.yaml, `label`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Skeleton(Problem):  # TODO: name it after your problem
    entity = "event"
    keys = (*schemas.KEY, "date")  # the date too: period() reads it from the featurized rows
    categorical = ("category",)
    numeric = ("amount", "count", "day_of_week")
    label = "positive"
    classes = ("negative", "positive")
    outcome = schemas.OUTCOME
    reference_files = ()
    example = EXAMPLE
    ingest_options = Ingest
    label_options = Label

    def ingest(self, raw: Path, options: Any) -> pd.DataFrame:
        # TODO: read your raw files and join them into one row per example.
        return read_csvs(sorted((raw / FOLDER).glob("*.csv")), schemas.RawEvents)

    def schema(self, raw: Path) -> pa.DataFrameSchema:
        return schemas.Events.to_schema()

    def warnings(self) -> pa.DataFrameSchema:
        return schemas.WARNINGS

    def features_of(self, joined: pd.DataFrame) -> pd.DataFrame:
        # TODO: your features, from the joined columns a request carries too (serving runs this same code).
        out = pd.DataFrame(index=joined.index)
        out["category"] = joined["category"].astype("str").where(joined["category"].notna(), None)
        out["amount"] = joined["amount"].astype(float)
        out["count"] = joined["count"].astype(float)
        out["day_of_week"] = pd.to_datetime(joined["date"], format="%Y-%m-%d").dt.day_of_week.astype(float)
        return out[list(self.features)]

    def labels_of(self, joined: pd.DataFrame, options: Any) -> pd.Series:
        return joined[schemas.OUTCOME].astype("int64").rename(self.label)

    def label_of_outcome(self, outcome: pd.Series, options: Any) -> pd.Series:
        return pd.Series(pd.to_numeric(outcome, errors="coerce"), index=outcome.index, dtype=float)

    def period(self, rows: pd.DataFrame) -> pd.Series:
        dates = pd.to_datetime(rows["date"], format="%Y-%m-%d")
        return (dates.dt.year * 100 + dates.dt.month).astype("int64")

    def request_model(self, examples: Mapping[str, Any] | None = None) -> type[BaseModel]:
        model: type[BaseModel] = schemas.request_model(examples)
        return model

    def request_columns(self) -> tuple[str, ...]:
        return schemas.REQUEST_COLUMNS

    def load_references(self, bundle: Path) -> None:
        return None  # TODO: reference files the service joins (see reference_files)

    def unknown_values(self, requests: Sequence[Mapping[str, Any]], references: Any) -> list[tuple[int, str, str]]:
        return []  # the schema's isin check already refuses an unknown category

    def request_rows(self, requests: Sequence[Mapping[str, Any]], references: Any) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(list(requests), columns=list(schemas.REQUEST_COLUMNS))
        frame[["amount", "count"]] = frame[["amount", "count"]].astype(float)
        return frame

    # --- The sample: TODO, replace the made-up events by your data ----------------------------------

    def sample_periods(self) -> list[int]:
        return list(PERIODS)

    def write_sample(self, raw: Path, periods: Sequence[int]) -> None:
        if raw.exists():
            raise SampleError(f"{raw} already exists; remove it first or use add-month")
        raw.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{raw.name}.", dir=raw.parent))
        try:
            _write_months(staging, periods)
            staging.chmod(0o755)  # mkdtemp makes it private; the data is not
            staging.rename(raw)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def sample_layout(self, nfiles: int) -> list[int] | None:
        return PERIODS[:nfiles] if 1 <= nfiles <= len(PERIODS) else None

    def add_period(self, raw: Path, period: int) -> list[Path]:
        return _write_months(raw, [period])

    def periods_present(self, raw: Path) -> list[int]:
        return sorted(int(p.stem.replace("-", "")) for p in (raw / FOLDER).glob("*.csv"))

    def sample_window(self, raw: Path, period: int, options: Any) -> pd.DataFrame:
        with tempfile.TemporaryDirectory() as tmp:
            (path,) = _write_months(Path(tmp), [period])
            return read_csvs([path], schemas.RawEvents)


def _month_rows(period: int) -> str:
    """A month of made-up events as CSV: the same bytes on every machine (the generator is seeded per month)."""
    rng = random.Random(period)
    effect = {"a": -1.0, "b": 0.0, "c": 1.0}
    lines = ["event_id,date,category,amount,count,outcome"]
    for i in range(ROWS_PER_MONTH):
        category = rng.choice(schemas.CATEGORIES)
        amount = max(0.0, rng.gauss(50.0, 20.0))
        count = rng.randint(0, 9)
        odds = 0.06 * (amount - 50.0) + effect[category] + 0.25 * (count - 4.5)
        outcome = int(rng.random() < 1 / (1 + math.exp(-odds)))
        day = f"{period // 100}-{period % 100:02d}-{1 + i % 28:02d}"
        lines.append(f"e{period}-{i:03d},{day},{category},{amount:.2f},{count},{outcome}")
    return "\n".join(lines) + "\n"


def _write_months(raw: Path, periods: Iterable[int]) -> list[Path]:
    wanted = sorted(set(periods))
    unknown = [p for p in wanted if p not in PERIODS]
    if unknown or not wanted:
        held = f"{period_label(PERIODS[0])} to {period_label(PERIODS[-1])}"
        raise SampleError(f"the sample holds the months {held}; got {', '.join(map(period_label, unknown)) or 'none'}")
    targets = [raw / FOLDER / f"{period_label(p)}.csv" for p in wanted]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise SampleError(f"refusing to overwrite {', '.join(existing)}")
    for period, target in zip(wanted, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(_month_rows(period))
        tmp.replace(target)
    return targets


PROBLEM: Problem = Skeleton()
