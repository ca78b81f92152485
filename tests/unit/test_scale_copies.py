"""The scale benchmark's copies of the data (``benchmarks/scale.py``): N times the flights, every key still unique."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The sample's flight key, written out: a project that replaced the problem keeps these tests (they copy
# frames of their own), and its problem has no such key to import.
FLIGHT_KEY = ["year", "month", "day", "carrier", "flight", "origin"]


def _scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "benchmarks" / "scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


scale = _scale()


def flights(carrier: str, numbers: range, day: int = 1, origin: str = "EWR", tail: str = "N14228") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": 2013,
            "month": 1,
            "day": day,
            "carrier": carrier,
            "flight": list(numbers),
            "tailnum": tail,
            "origin": origin,
            "dest": "IAH",
        }
    )


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    (tmp_path / "flights").mkdir()
    pd.DataFrame({"carrier": ["AA", "UA", "B6"], "name": ["American", "United", "JetBlue"]}).to_csv(
        tmp_path / "airlines.csv", index=False
    )
    pd.DataFrame({"tailnum": ["N14228", "N24211"], "seats": [149, 178]}).to_csv(tmp_path / "planes.csv", index=False)
    return tmp_path


def write(raw: Path, *parts: pd.DataFrame) -> pd.DataFrame:
    month = pd.concat(parts, ignore_index=True)
    month.to_csv(raw / "flights" / "2013-01.csv", index=False)
    return month


def read(raw: Path, name: str = "flights/2013-01.csv") -> pd.DataFrame:
    return pd.read_csv(raw / name, dtype={"tailnum": str}, keep_default_na=False)


def test_factor_one_leaves_the_files_as_they_are(raw: Path) -> None:
    write(raw, flights("AA", range(1, 6)))
    before = (raw / "flights" / "2013-01.csv").read_bytes(), (raw / "planes.csv").read_bytes()

    assert scale.replicate(raw, 1) == 5

    assert ((raw / "flights" / "2013-01.csv").read_bytes(), (raw / "planes.csv").read_bytes()) == before


def test_copies_keep_their_carrier_and_take_numbers_nobody_flies_that_day(raw: Path) -> None:
    original = write(raw, flights("AA", range(1, 6)), flights("UA", range(1, 3), tail="N24211"), flights("AA", [1], 2))

    assert scale.replicate(raw, 3) == 3 * len(original)

    copied = read(raw)
    assert len(copied) == 3 * len(original)
    assert not copied.duplicated(FLIGHT_KEY).any()
    assert copied["carrier"].value_counts().to_dict() == (original["carrier"].value_counts() * 3).to_dict()
    assert copied.iloc[: len(original)].equals(read_back(original))  # the sample itself comes first, unchanged
    assert copied["flight"].between(1, 9999).all()


def read_back(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"tailnum": str}).reset_index(drop=True)


def test_each_copy_flies_aircraft_of_its_own_that_planes_lists(raw: Path) -> None:
    write(raw, flights("AA", range(1, 4)), flights("UA", range(1, 3), tail=""))

    scale.replicate(raw, 3)

    copied, planes = read(raw), read(raw, "planes.csv")
    tails = copied["tailnum"][copied["tailnum"] != ""]
    assert tails.str.fullmatch(r"[A-Z0-9]{2,6}").all()
    assert set(tails) == {"N14228", "010000", "020000"}  # copy k's aircraft: k, then the aircraft's number
    assert (copied["tailnum"] == "").sum() == 6  # an unknown aircraft stays unknown in every copy
    assert len(planes) == 6
    assert not planes["tailnum"].duplicated().any()
    assert set(tails) <= set(planes["tailnum"])
    assert planes.set_index("tailnum").loc["020001", "seats"] == 178  # a copy keeps the aircraft's data


def test_a_carrier_out_of_numbers_lends_its_copies_to_the_carrier_with_most_left(raw: Path) -> None:
    original = write(raw, flights("AA", range(1, 7001)), flights("UA", range(1, 5001)))

    scale.replicate(raw, 2)

    copied = read(raw)
    assert not copied.duplicated(FLIGHT_KEY).any()
    assert copied["flight"].between(1, 9999).all()
    counts = copied["carrier"].value_counts().to_dict()
    # AA has 2,999 numbers left for its 7,000 copies and UA 4,999 for its 5,000: B6, with all 9,999 free, takes the rest
    assert counts == {"AA": 9999, "UA": 9999, "B6": 4002}
    assert len(copied) == 2 * len(original)


def test_more_departures_than_every_carriers_numbers_is_refused(raw: Path) -> None:
    write(raw, flights("AA", range(1, 9000)), flights("UA", range(1, 9000)), flights("B6", range(1, 9000)))

    with pytest.raises(ValueError, match="more than 29997 departures a day from one origin"):
        scale.replicate(raw, 2)
