"""Scale benchmark: the pipeline on N copies of the sample, each stage's wall time and peak memory.

Prints figures, asserts nothing. Run with ``nox -s bench -- scale``; ``FLIGHTDELAY_BENCH_FACTORS``
chooses the copies (default ``1,10,30,100``). For each factor, in a throwaway clone with a cache of its own:

* every month's flights are copied N times (``replicate``): each copy gets flight numbers its day and
  origin do not use yet and aircraft of its own (``planes.csv`` copied with them), so the flight key
  stays unique and the per-aircraft features keep the sample's distribution. The weather stays as it is
  (one observation per origin and hour). Only the departures counted per origin-hour and per carrier-day
  grow N times;
* each stage runs as DVC runs it (``dvc repro --force --single-item STAGE``), its wall time and the peak
  resident memory of DVC and the stage (``wait4``) recorded. A stage that fails or is killed (out of memory)
  ends that factor; the next one still runs.

The copies measure resources, not accuracy: a model trained on them is no better than the sample's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flightdelay import problem

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validate", "featurize", "train", "evaluate")
FACTORS = tuple(int(f) for f in os.environ.get("FLIGHTDELAY_BENCH_FACTORS", "1,10,30,100").split(","))
MAX_FLIGHT = 9999  # the flights schema's bound
DAY = ["year", "month", "day", "origin"]


@dataclass
class Run:
    factor: int
    flights: int = 0
    replicate_seconds: float = 0.0
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)  # seconds, peak MiB
    failed: str | None = None


def _tail(copy: int, index: int) -> str:
    """Copy ``copy``'s aircraft ``index``: two digits then four base-36 ones (no real tail starts with a digit)."""
    digits = np.base_repr(index, 36).rjust(4, "0")
    if len(digits) > 4 or copy > 99:
        raise ValueError(f"cannot name aircraft {index} of copy {copy} in 6 characters")
    return f"{copy:02d}{digits}"


def _unused(taken: set[int]) -> Iterator[int]:
    return (n for n in range(1, MAX_FLIGHT + 1) if n not in taken)


def _numbers(day: pd.DataFrame, copies: int, carriers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Carrier and flight number of each copy of one day's departures from one origin (``copies`` - 1 of each row).

    A copy keeps its carrier and takes the lowest flight numbers that carrier does not use that day; when
    they run out (from about 70 copies on), it moves to the carrier with the most numbers left.
    """
    rows = np.tile(np.arange(len(day)), copies - 1)
    used = {carrier: set(numbers) for carrier, numbers in day.groupby("carrier")["flight"]}
    free = {c: _unused(used.get(c, set())) for c in carriers}
    left = {c: MAX_FLIGHT - len(used.get(c, ())) for c in carriers}
    carrier, flight = day["carrier"].to_numpy()[rows].copy(), np.empty(len(rows), dtype=np.int64)
    for i, own in enumerate(carrier):
        taken = own if left[own] else max(left, key=left.__getitem__)
        if not left[taken]:
            raise ValueError(f"more than {MAX_FLIGHT * len(carriers)} departures a day from one origin")
        carrier[i] = taken
        flight[i] = next(free[taken])
        left[taken] -= 1
    return carrier, flight


def replicate(raw: Path, factor: int) -> int:
    """Make every month file under ``raw/flights`` hold ``factor`` copies of its flights; return the flights."""
    carriers = pd.read_csv(raw / "airlines.csv", dtype=str)["carrier"].tolist()
    planes = pd.read_csv(raw / "planes.csv", dtype=str, keep_default_na=False)
    tails = {tail: i for i, tail in enumerate(planes["tailnum"])}
    total = 0
    for path in sorted((raw / "flights").glob("*.csv")):
        flights = pd.read_csv(path, dtype=str, keep_default_na=False)
        total += len(flights) * factor
        if factor == 1:
            continue
        for tail in flights["tailnum"]:
            if tail and tail not in tails:
                tails[tail] = len(tails)
        flights["flight"] = flights["flight"].astype(int)
        parts = [flights]
        for _, day in flights.groupby(DAY, sort=False):
            copies = day.iloc[np.tile(np.arange(len(day)), factor - 1)].copy()
            copies["carrier"], copies["flight"] = _numbers(day, factor, carriers)
            number = [k for k in range(1, factor) for _ in range(len(day))]
            copies["tailnum"] = [
                _tail(k, tails[t]) if t else "" for k, t in zip(number, copies["tailnum"], strict=True)
            ]
            parts.append(copies)
        path.unlink()  # the DVC cache may hold it as a link: write a new file, never through the link
        pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    if factor > 1:
        fleets = [planes.assign(tailnum=[_tail(k, tails[t]) for t in planes["tailnum"]]) for k in range(1, factor)]
        (raw / "planes.csv").unlink()
        pd.concat([planes, *fleets], ignore_index=True).to_csv(raw / "planes.csv", index=False)
    return total


def measured(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str | None]:
    """Wall seconds and peak resident MiB of a command and the children it waits for; why it failed, if it did."""
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    failed = None
    if code < 0:
        failed = f"killed by {signal.Signals(-code).name}" + (" (out of memory?)" if code == -signal.SIGKILL else "")
    elif code:
        failed = f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}"
    return seconds, usage.ru_maxrss / 1024, failed


def run(factor: int, tmp: Path) -> Run:
    result = Run(factor)
    repo = tmp / f"x{factor}"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / f'mlflow-{factor}.db'}"
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True, capture_output=True)
    cache = [*dvc, "cache", "dir", "--local", str(tmp / f"cache-{factor}")]
    subprocess.run(cache, cwd=repo, env=env, check=True, capture_output=True)
    shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw", dirs_exist_ok=True)  # files of its own
    start = time.perf_counter()
    result.flights = replicate(repo / "data" / "raw", factor)
    result.replicate_seconds = time.perf_counter() - start
    for stage in STAGES:
        seconds, mib, failed = measured([*dvc, "repro", "--force", "--single-item", stage], repo, env)
        result.stages[stage] = (seconds, mib)
        if failed:
            result.failed = f"{stage}: {failed}"
            break
    shutil.rmtree(repo)
    shutil.rmtree(tmp / f"cache-{factor}", ignore_errors=True)
    return result


def report(runs: list[Run]) -> None:
    base = next((r for r in runs if r.factor == 1 and not r.failed), None)
    print(f"{'factor':>6} {'flights':>11} {'stage':<10} {'seconds':>8} {'peak MiB':>9} {'time x1':>8} {'RSS x1':>7}")
    for r in runs:
        print(f"{r.factor:>6} {r.flights:>11,} {'(copies)':<10} {r.replicate_seconds:>8.1f}")
        for stage, (seconds, mib) in r.stages.items():
            ratios = ""
            if base is not None and stage in base.stages:
                ratios = f" {seconds / base.stages[stage][0]:>8.1f} {mib / base.stages[stage][1]:>7.1f}"
            print(f"{'':>6} {'':>11} {stage:<10} {seconds:>8.1f} {mib:>9.0f}{ratios}")
        total = sum(s for s, _ in r.stages.values())
        peak = max((m for _, m in r.stages.values()), default=0.0)
        state = f"FAILED at {r.failed}" if r.failed else "completed"
        print(f"{'':>6} {'':>11} {'all':<10} {total:>8.1f} {peak:>9.0f}   {state}")


def main() -> int:
    if not (ROOT / "data" / "raw" / "flights").is_dir() or not getattr(problem, "TEMPLATE_SAMPLE", False):
        print("scale: this benchmark copies the template's sample flights, and this project's problem is another")
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for factor in FACTORS:
            runs.append(run(factor, Path(tmp)))
            print(f"x{factor}: {runs[-1].failed or 'completed'}", file=sys.stderr, flush=True)
    report(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
