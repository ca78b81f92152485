"""Where the heavy stages run their batches of rows: in the stage's own process, or on a Dask cluster.

A stage asks :func:`engine` for a mapper, and hands it a Parquet table, a function of a batch of its rows
and a batch size; it gets the function's results back in the table's order. The results are the same with
either engine, so the files a stage writes from them are too (``tests/problem/test_engines.py``).

* ``pandas`` (the default): the stage's process reads one batch after another and calls the function.
* ``dask``: the workers of a ``dask.distributed`` cluster each read their own batches from the table (a
  path they must be able to open: a shared filesystem, or a local cluster) and call the function there;
  the stage's process gathers the results in order, at most :data:`IN_FLIGHT_PER_WORKER` batches per
  worker ahead, so its memory is that of a few results whatever the table's size. ``engine.address`` names
  the scheduler; with none, a local cluster of ``engine.workers`` processes (a core each) is started for the
  stage and closed after it. The function and what it refers to travel to the workers by pickle (cloudpickle):
  the workers need this project installed, as the stage's environment has it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from flightdelay.io.files import read_parquet_batches
from flightdelay.settings import Engine

T = TypeVar("T")
Mapper = Callable[[Path, Callable[[pd.DataFrame], T], int], Iterator[T]]

#: Batches a worker is given ahead of the one the stage waits for: enough to keep it busy, few to hold.
IN_FLIGHT_PER_WORKER = 2
CONNECT_SECONDS = 30


class EngineError(RuntimeError):
    """The engine asked for cannot run: dask missing, or its scheduler out of reach."""


@contextmanager
def engine(settings: Engine) -> Iterator[Mapper[Any]]:
    """The mapper of ``settings`` (``params.engine``), for the length of the block."""
    if settings.name == "pandas":
        yield _in_process
        return
    with _dask_client(settings) as client:

        def mapped(path: Path, function: Callable[[pd.DataFrame], Any], rows: int) -> Iterator[Any]:
            return _on_dask(client, path, function, rows)

        yield mapped


def _in_process(path: Path, function: Callable[[pd.DataFrame], T], rows: int) -> Iterator[T]:
    for batch in read_parquet_batches(path, rows):
        yield function(batch)


def batch_bounds(path: Path, rows: int) -> list[tuple[int, int]]:
    """The table's rows as ``[start, stop)`` ranges of at most ``rows``, none across a row group."""
    metadata = pq.ParquetFile(path).metadata
    bounds, start = [], 0
    for group in range(metadata.num_row_groups):
        end = start + metadata.row_group(group).num_rows
        bounds += [(first, min(first + rows, end)) for first in range(start, end, rows)]
        start = end
    return bounds


def read_rows(path: Path, start: int, stop: int) -> pd.DataFrame:
    """Rows ``[start, stop)``, within one row group, of the table at ``path``, typed as ``read_parquet`` types them."""
    file = pq.ParquetFile(path)
    first = 0
    for group in range(file.metadata.num_row_groups):
        size = file.metadata.row_group(group).num_rows
        if first <= start < first + size:
            table = file.read_row_group(group).slice(start - first, stop - start)
            rows: pd.DataFrame = pyarrow.Table.from_batches(table.to_batches(), schema=file.schema_arrow).to_pandas()
            return rows
        first += size
    raise ValueError(f"{path}: no row group holds row {start}")


def _apply(function: Callable[[pd.DataFrame], T], path: str, start: int, stop: int) -> T:
    """What a worker runs: read its batch, call the function on it."""
    return function(read_rows(Path(path), start, stop))


def _on_dask(client: Any, path: Path, function: Callable[[pd.DataFrame], T], rows: int) -> Iterator[T]:
    bounds = iter(batch_bounds(path, rows))
    workers = max(len(client.scheduler_info().get("workers", {})), 1)

    def submit(start: int, stop: int) -> Any:
        return client.submit(_apply, function, str(path.resolve()), start, stop, pure=False)

    waiting = deque(submit(*b) for b in islice(bounds, IN_FLIGHT_PER_WORKER * workers))
    while waiting:
        future = waiting.popleft()
        result: T = future.result()
        future.release()
        following = next(bounds, None)
        if following is not None:
            waiting.append(submit(*following))
        yield result


@contextmanager
def _dask_client(settings: Engine) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise EngineError(
            "params.yaml engine.name is dask, and dask.distributed is not installed here: the nox sessions "
            "install it (the `scale` dependency group); elsewhere `uv sync --group scale`"
        ) from exc
    if settings.address:
        try:
            client = Client(settings.address, timeout=CONNECT_SECONDS)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"engine.address {settings.address}: no Dask scheduler answers there ({exc})") from exc
        with client:
            yield client
        return
    workers = settings.workers or os.cpu_count() or 1
    # Loopback only, no dashboard: a local cluster is the stage's own, not a service.
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client
