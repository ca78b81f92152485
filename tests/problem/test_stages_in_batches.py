"""Ingest and featurize a batch at a time: the files they write are those of the whole table, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flightdelay import settings
from flightdelay.core.split import split_by_month
from flightdelay.io.files import read_csvs, read_parquet, write_parquet
from flightdelay.problem import PROBLEM, sample, schemas
from flightdelay.stages.featurize import featurize
from flightdelay.stages.ingest import ingest

PARTS = ("train", "valid", "test")


def _params(params: settings.Params, root: Path, raw: Path) -> settings.Params:
    paths = params.paths.model_copy(
        update={"raw": raw, "joined": root / "joined.parquet"} | {part: root / f"{part}.parquet" for part in PARTS}
    )
    return params.model_copy(update={"paths": paths})


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    sample.write_sample(raw, [2, 3, 4, 5])
    for name in PROBLEM.reference_files:
        shutil.copyfile(sample.package_data_dir() / name, raw / name)
    return raw


def test_ingest_then_featurize_in_batches_write_the_whole_tables_files(
    raw: Path, params: settings.Params, tmp_path: Path
) -> None:
    batched = _params(params, tmp_path / "batched", raw)
    ingest(batched)
    featurize(batched, batch_rows=10_000)  # a month is ~28,000 rows: batches cut months and parts

    # The whole table at once, as the stages did before they streamed.
    whole = _params(params, tmp_path / "whole", raw)
    flights = read_csvs(sorted((raw / "flights").glob("*.csv")), schemas.RawFlights)
    weather = read_csvs(sorted((raw / "weather").glob("*.csv")), schemas.RawWeather)
    write_parquet(whole.paths.joined, PROBLEM._join(raw, flights, weather, params.ingest))
    rows = PROBLEM.featurize(read_parquet(whole.paths.joined), params.label)
    sizes = params.split
    split = split_by_month(rows, PROBLEM.period(rows), sizes.valid_months, sizes.test_months, sizes.min_train_months)
    for part in PARTS:
        write_parquet(getattr(whole.paths, part), getattr(split, part))

    for path in ("joined", *PARTS):
        assert getattr(batched.paths, path).read_bytes() == getattr(whole.paths, path).read_bytes(), path
    assert [sorted(PROBLEM.period(read_parquet(getattr(batched.paths, p))).unique()) for p in PARTS] == [
        [201302, 201303],
        [201304],
        [201305],
    ]
