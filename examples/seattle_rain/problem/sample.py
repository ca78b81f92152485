"""The sample data: Seattle's daily weather 2012-2015 from the ``vega_datasets`` package, as monthly batches.

The monthly files are cut line by line from the package's CSV, so the same package version always gives
the same bytes, which ``data.dvc`` pins.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from flightdelay.interface import SampleError, period_label

PACKAGE = "vega_datasets"
SOURCE = "_data/seattle-weather.csv"
FIRST_YEAR, LAST_YEAR = 2012, 2015
PERIODS = [year * 100 + month for year in range(FIRST_YEAR, LAST_YEAR + 1) for month in range(1, 13)]
# A new project records 2012-01 to 2015-06; the last six months are held back, for add-month and the monitor.
HELD_BACK = 6
DAILY = "daily"


def source_file() -> Path:
    """The package's CSV, found without importing the package (its import loads pandas and its catalogue)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SampleError(f"the {PACKAGE} package is not installed in this environment (uv add vega-datasets)")
    return Path(next(iter(spec.submodule_search_locations))) / SOURCE


def month_file(period: int) -> str:
    return f"{DAILY}/{period_label(period)}.csv"


def check_periods(periods: Iterable[int]) -> list[int]:
    """``periods`` sorted and deduplicated; a SampleError names one the sample does not hold."""
    wanted = sorted(set(periods))
    unknown = [p for p in wanted if p not in PERIODS]
    if unknown or not wanted:
        held = f"{period_label(PERIODS[0])} to {period_label(PERIODS[-1])}"
        raise SampleError(f"the sample holds the months {held}; got {', '.join(map(period_label, unknown)) or 'none'}")
    return wanted


def _by_month(lines: list[bytes]) -> dict[int, list[bytes]]:
    months: dict[int, list[bytes]] = {}
    for line in lines[1:]:
        # Each line starts with its date, YYYY/MM/DD.
        months.setdefault(int(line[0:4]) * 100 + int(line[5:7]), []).append(line)
    return months


def write_months(raw: Path, periods: Iterable[int], source: Path | None = None) -> list[Path]:
    """Write the days of ``periods`` into ``raw``, a file per month; refuse to overwrite any file."""
    wanted = check_periods(periods)
    targets = [raw / month_file(p) for p in wanted]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise SampleError(f"refusing to overwrite {', '.join(existing)}")
    lines = (source or source_file()).read_bytes().splitlines(keepends=True)
    months = _by_month(lines)
    for period, target in zip(wanted, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(lines[0] + b"".join(months.get(period, [])))
        tmp.replace(target)
    return targets


def write_sample(raw: Path, periods: Iterable[int], source: Path | None = None) -> None:
    """Create ``raw`` holding ``periods``; it appears whole or not at all."""
    if raw.exists():
        raise SampleError(f"{raw} already exists; remove it first or use add-month")
    raw.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{raw.name}.", dir=raw.parent))
    try:
        write_months(staging, periods, source)
        staging.chmod(0o755)  # mkdtemp makes it private; the data is not
        staging.rename(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def periods_present(raw: Path) -> list[int]:
    """The months that have a file in ``raw``."""
    found = []
    for path in (raw / DAILY).glob("*.csv"):
        year, _, month = path.stem.partition("-")
        if year.isdigit() and month.isdigit():
            found.append(int(year) * 100 + int(month))
    return sorted(found)
