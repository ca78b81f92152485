"""The validate stage's checks on the joined table: hard errors fail, soft warnings are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flightdelay import settings
from flightdelay.io.files import write_parquet
from flightdelay.problem import schemas
from flightdelay.stages import validate
from tests.conftest import ROOT
from tests.problem import factories

CARRIERS = pd.Series(["UA", "AA"])
AIRPORTS = pd.Series(["EWR", "ORD"])
SCHEMA = schemas.flights_schema(CARRIERS, AIRPORTS)


def errors(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    report = validate.check(frame, SCHEMA, schemas.WARNINGS)
    return {(e["column"], e["check"]): e["failures"] for e in report["errors"]}


def test_clean_table_passes() -> None:
    report = validate.check(factories.joined(), SCHEMA, schemas.WARNINGS)
    assert report["status"] == "passed"
    assert report["errors"] == []
    assert report["rows"] == 4


def test_out_of_range_value_names_column_and_check() -> None:
    frame = factories.joined()
    frame.loc[1, "distance"] = -5.0
    frame.loc[2, "humid"] = 140.0
    assert errors(frame) == {("distance", "greater_than(0)"): 1, ("humid", "less_than_or_equal_to(100)"): 1}


def test_unknown_carrier_and_origin() -> None:
    frame = factories.joined()
    frame.loc[0, "carrier"] = "ZZ"
    frame.loc[1, "origin"] = "XYZ"
    found = errors(frame)
    assert found[("carrier", "isin(['AA', 'UA'])")] == 1
    assert found[("origin", "isin(['EWR', 'ORD'])")] == 1


def test_duplicated_rows() -> None:
    frame = factories.joined()
    doubled = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    found = errors(doubled)
    assert any(check == "multiple_fields_uniqueness" for _, check in found), found


def test_bad_schedule_time() -> None:
    frame = factories.joined()
    frame.loc[0, "sched_dep_time"] = 675  # 06:75
    assert ("<table>", "sched_dep_time and sched_arr_time must be HHMM times") in errors(frame)


def test_every_failure_is_reported_at_once() -> None:
    frame = factories.joined()
    frame.loc[0, "month"] = 13
    frame.loc[1, "wind_dir"] = 400.0
    frame.loc[2, "carrier"] = "ZZ"
    assert len(errors(frame)) == 3


def test_soft_warnings_do_not_fail() -> None:
    frame = factories.joined()
    frame.loc[0, "wind_speed"] = 1048.0
    frame.loc[1, "dest_lat"] = float("nan")
    report = validate.check(frame, SCHEMA, schemas.WARNINGS)
    assert report["status"] == "passed"
    warned = {(w["column"], w["check"]): w["failures"] for w in report["warnings"]}
    assert warned == {("wind_speed", "less_than_or_equal_to(100)"): 1, ("dest_lat", "not_nullable"): 1}


def _project(tmp_path: Path, frame: pd.DataFrame, params: settings.Params) -> Path:
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    factories.airports().to_csv(raw / "airports.csv", index=False)
    pd.DataFrame({"carrier": ["UA", "AA"], "name": ["United", "American"]}).to_csv(raw / "airlines.csv", index=False)
    write_parquet(tmp_path / params.paths.joined, frame)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return tmp_path


def test_stage_writes_report_and_fails_with_the_problem(
    tmp_path: Path, params: settings.Params, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = factories.joined()
    frame.loc[0, "distance"] = 0.0
    monkeypatch.chdir(_project(tmp_path, frame, params))
    assert validate.main([]) == 1
    assert "column 'distance', check greater_than(0): 1 failing" in capsys.readouterr().err
    report = json.loads((tmp_path / params.paths.validation_report).read_text())
    assert report["status"] == "failed"
    assert report["errors"][0]["column"] == "distance"


def test_stage_passes_clean_data(tmp_path: Path, params: settings.Params, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_project(tmp_path, factories.joined(), params))
    assert validate.main([]) == 0


def test_a_batch_at_a_time_reports_what_the_whole_table_does() -> None:
    frame = factories.joined(12)
    frame.loc[[1, 9], "distance"] = [-5.0, -7.0]  # a row's check failing in the first batch and the last
    frame.loc[[3, 10], "temp"] = float("nan")  # a warning in two batches
    key = list(schemas.FLIGHT_KEY)
    frame.loc[11, key] = frame.loc[2, key]  # a key repeated across batches
    frame = frame.drop(columns=["dewp"])  # a failure of a column as a whole: no row, reported once
    batches = [frame.iloc[:5], frame.iloc[5:9], frame.iloc[9:]]

    whole = validate.check(frame, SCHEMA, schemas.WARNINGS)
    batched = validate.check_batches(batches, SCHEMA, schemas.WARNINGS, lambda names: frame[list(names)])

    assert batched == whole
    failing = {(e["column"], e["check"]): e["failures"] for e in whole["errors"]}
    assert failing[("distance", "greater_than(0)")] == 2
    assert failing[("<table>", "multiple_fields_uniqueness")] == 2
    assert failing[("dewp", "missing column")] == 1
    assert [(w["column"], w["failures"]) for w in whole["warnings"]] == [("temp", 2)]
