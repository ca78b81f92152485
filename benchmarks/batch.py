"""Batch scoring benchmark: prints figures, asserts nothing. Run with ``nox -s bench -- batch``.

The project's model is registered on a throwaway `mlflow server`; the input is the joined flights (January to
the data's latest month) as Parquet, at 1x and copied to 4x (each copy's rows distinct only by position, which
is all batch scoring sees). ``flightdelay batch-predict`` runs as its own process on each, so its peak resident
memory comes from the kernel's accounting (``wait4``). Bounded memory means the peak at 4x is about the peak at
1x; throughput is rows per second of the whole command (the registry download and imports included).

The baseline, measured in the same run: the same rows scored in one call of the service's ``Predictor`` from an
in-memory list of requests, without validation, chunking or writing: the ratio is what the batch's guarantees
(each row validated, its error its own, the file written a chunk at a time) cost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flightdelay import registry, serving, settings
from flightdelay.io import dvc, tracking
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM

ROOT = Path(__file__).resolve().parents[1]

COPIES = (1, 4)


def peak(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(args)} failed: {child.stderr.read().decode() if child.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    params = settings.load(ROOT / "params.yaml")
    requests = read_parquet(ROOT / params.paths.joined)[list(PROBLEM.request_columns())]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        with registry.connect(tmp) as url:
            bundle = tmp / "bundle"
            model = dvc.verify_output(ROOT, "train", params.paths.model)
            serving.write_bundle(bundle, model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
            version = registry.register(
                bundle, {}, params={}, metrics={}, lineage={"model_sha256": tracking.sha256(model)}
            )
            env = os.environ | {"MLFLOW_TRACKING_URI": url}
            table = pa.Table.from_pandas(requests, preserve_index=False)
            figures = []
            for copies in COPIES:
                source = tmp / f"flights-{copies}x.parquet"
                with pq.ParquetWriter(source, table.schema) as writer:
                    for _ in range(copies):
                        writer.write_table(table, row_group_size=100_000)
                command = [sys.executable, "-m", "flightdelay", "batch-predict", "--input", str(source)]
                command += ["--output", str(tmp / f"scores-{copies}x.parquet"), "--version", version.number]
                seconds, rss = peak([*command, "--no-progress"], env)
                figures.append((copies, len(requests) * copies, seconds, rss))
            predictor = serving.Predictor.load(bundle)
            flights = [
                {str(k): (None if pd.isna(v) else v) for k, v in row.items()}
                for row in requests.to_dict(orient="records")
            ]
            start = time.perf_counter()
            predictor.predict(flights)
            baseline = time.perf_counter() - start
    print(f"batch-predict on {len(requests):,} joined flights (1x) and copies; {os.cpu_count()} cores")
    print(f"{'input':>6} {'rows':>11} {'wall s':>8} {'rows/s':>9} {'peak RSS MiB':>13}")
    for copies, rows, seconds, rss in figures:
        print(f"{copies:>5}x {rows:>11,} {seconds:>8.1f} {rows / seconds:>9,.0f} {rss:>13,.0f}")
    (_, _, s1, rss1), (_, _, s4, rss4) = figures
    print(f"peak RSS at {COPIES[1]}x / at 1x: {rss4 / rss1:.2f} (bounded memory: close to 1)")
    print(f"wall time at {COPIES[1]}x / at 1x: {s4 / s1:.2f} (linear: {COPIES[1]})")
    print(
        f"baseline, the Predictor on all {len(flights):,} requests in one call: {baseline:.1f} s "
        f"({len(flights) / baseline:,.0f} rows/s); batch-predict at 1x takes {s1 / baseline:.1f}x that"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
