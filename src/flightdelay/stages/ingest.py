"""Ingest: read the monthly batches and reference tables, join them, write one typed Parquet file."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flightdelay import schemas
from flightdelay.core.join import derive_weather, join_sources
from flightdelay.io.files import read_csv, read_csvs, write_parquet
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def ingest(params: Params) -> None:
    """Join flights with origin weather, aircraft and destination into ``paths.flights``."""
    raw = params.paths.raw
    flights = read_csvs(sorted((raw / "flights").glob("*.csv")), schemas.RawFlights)
    weather = read_csvs(sorted((raw / "weather").glob("*.csv")), schemas.RawWeather)
    planes = read_csv(raw / "planes.csv", schemas.RawPlanes)
    airports = read_csv(raw / "airports.csv", schemas.RawAirports)
    weather, duplicates = derive_weather(weather)
    if duplicates:
        log.info("dropped %d repeated weather hours (the first observation wins)", duplicates)
    joined = join_sources(flights, weather, planes, airports, params.ingest.horizon_minutes)
    write_parquet(params.paths.flights, joined)
    log.info("wrote %d flights x %d columns to %s", len(joined), joined.shape[1], params.paths.flights)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("ingest", ingest, argv)


if __name__ == "__main__":
    raise SystemExit(main())
