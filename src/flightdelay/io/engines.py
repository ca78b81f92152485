"""Where the heavy stages run their batches of rows: in the stage's own process, or on a Dask cluster.

A stage asks :func:`engine` for a runner and hands it a Parquet table, a function of a batch of its rows
and a batch size (``table``), or items it reads itself and a function of one (``each``); it gets the
function's results back in order. They are the same with either engine, so the files a stage writes
from them are too (``tests/problem/test_stages_in_batches.py``, ``tests/e2e/test_batch.py``).

* ``pandas`` (the default): the stage's process reads one batch after another and calls the function.
* ``dask``: the workers of a ``dask.distributed`` cluster each read their own batches of a table (a path
  they must be able to open: a shared filesystem, or a local cluster), or are sent the caller's items, and
  call the function there; the caller gathers the results in order, at most :data:`IN_FLIGHT_PER_WORKER`
  per worker ahead, so its memory is that of a few results whatever the table's size. ``engine.address``
  names the scheduler; with none, a local cluster of ``engine.workers`` processes (a core each) is started
  for the block and closed after it. The function and what it refers to travel to the workers by pickle
  (cloudpickle): the workers need this project installed, as the stage's environment has it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from flightdelay.io.files import read_parquet_batches
from flightdelay.settings import Engine

T = TypeVar("T")
X = TypeVar("X")

#: Batches a worker is given ahead of the one the stage waits for: enough to keep it busy, few to hold.
IN_FLIGHT_PER_WORKER = 2
CONNECT_SECONDS = 30


class EngineError(RuntimeError):
    """The engine asked for cannot run: dask missing, or its scheduler out of reach."""


class InProcess:
    """The pandas engine: everything in the calling process, one batch after another."""

    def table(self, path: Path, function: Callable[[pd.DataFrame], T], rows: int) -> Iterator[T]:
        """``function`` of each batch of at most ``rows`` rows of the Parquet table at ``path``, in order."""
        for batch in read_parquet_batches(path, rows):
            yield function(batch)

    def each(self, items: Iterable[X], function: Callable[[X], T]) -> Iterator[T]:
        """``function`` of each of ``items`` (read by the caller: a file it alone can open), in order."""
        for item in items:
            yield function(item)


class OnDask:
    """The dask engine: the calls run on the cluster's workers, the results come back in order."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def table(self, path: Path, function: Callable[[pd.DataFrame], T], rows: int) -> Iterator[T]:
        """As :meth:`InProcess.table`, each worker reading its own batches from ``path``."""
        where = str(path.resolve())
        return self._ordered(partial(_apply, function, where), iter(batch_bounds(path, rows)))

    def each(self, items: Iterable[X], function: Callable[[X], T]) -> Iterator[T]:
        """As :meth:`InProcess.each`: the items are sent to the workers, a few per worker ahead."""
        return self._ordered(function, ((item,) for item in items))

    def _ordered(self, function: Callable[..., T], arguments: Iterator[tuple[Any, ...]]) -> Iterator[T]:
        workers = max(len(self.client.scheduler_info().get("workers", {})), 1)
        waiting = deque(
            self.client.submit(function, *given, pure=False)
            for given in islice(arguments, IN_FLIGHT_PER_WORKER * workers)
        )
        while waiting:
            future = waiting.popleft()
            result: T = future.result()
            future.release()
            following = next(arguments, None)
            if following is not None:
                waiting.append(self.client.submit(function, *following, pure=False))
            yield result


Runner = InProcess | OnDask


@contextmanager
def engine(settings: Engine) -> Iterator[Runner]:
    """The runner of ``settings`` (``params.engine``), for the length of the block."""
    if settings.name == "pandas":
        yield InProcess()
        return
    with _dask_client(settings) as client:
        yield OnDask(client)


def batch_bounds(path: Path, rows: int) -> list[tuple[int, int]]:
    """The table's rows as ``[start, stop)`` ranges of at most ``rows``, none across a row group."""
    if not path.is_file():  # named as the pandas engine names it (io.files.read_parquet_batches)
        raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro)")
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
    """What a worker runs for :meth:`OnDask.table`: read its batch, call the function on it."""
    return function(read_rows(Path(path), start, stop))


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
