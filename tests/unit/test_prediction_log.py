"""The prediction log never slows or breaks a request, whatever the sink does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_core import to_json

from flightdelay.serving import PredictionLog, json_line, rotated


def test_records_become_json_lines(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "logs" / "predictions.jsonl")
    for n in range(5):
        log.write({"request_id": str(n), "output": {"delay_probability": 0.1 * n}})
    assert log.flush()
    lines = (tmp_path / "logs" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["0", "1", "2", "3", "4"]


STRINGS = {"carrier": "UA", "dep_delay": -3, "temp": 39.02, "wind": 1e-7, "name": 'Zürich \u2028 "x" \\ \x01'}


@pytest.mark.parametrize(
    ("record", "as_python"),
    [
        ({"time": 1764582000.123456, "request_id": "ab" * 16, "variant": None}, None),
        ({"input": STRINGS, "output": {"delayed": False}}, None),
        (
            {"output": {"delay_probability": np.float64(0.25), "count": np.int64(3), "delayed": np.bool_(True)}},
            {"output": {"delay_probability": 0.25, "count": 3, "delayed": True}},
        ),
        ({"big": 2**70, 7: "a key that is not a string"}, None),
    ],
    ids=["scalars", "strings and numbers", "numpy scalars as numbers", "what orjson refuses"],
)
def test_a_record_is_the_json_line_pydantic_writes(record: dict[Any, Any], as_python: dict[str, Any] | None) -> None:
    line = json_line(record)
    assert line == to_json(as_python or record, fallback=str) + b"\n"
    assert line.count(b"\n") == 1


def test_a_record_orjson_refuses_is_still_written_and_the_log_goes_on(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "predictions.jsonl")
    log.write_many([{"request_id": "0", "big": 2**70}, {"request_id": "1"}])
    log.write({"request_id": "2"})
    assert log.flush()
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["0", "1", "2"]
    assert json.loads(lines[0])["big"] == 2**70
    assert log.dropped == 0


def test_unavailable_sink_drops_and_counts_without_raising(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the log directory should be")
    drops: list[int] = []
    log = PredictionLog(blocked / "predictions.jsonl", on_drop=drops.append)
    for n in range(100):
        log.write({"request_id": str(n)})
    assert log.flush()
    assert log.dropped == 100
    assert sum(drops) == 100


def test_a_hanging_sink_never_blocks_a_request(tmp_path: Path) -> None:
    """Opening a FIFO nobody reads blocks the writer thread forever; requests must not notice."""
    fifo = tmp_path / "hanging"
    os.mkfifo(fifo)
    log = PredictionLog(fifo, capacity=10)
    for n in range(100):  # returns although nothing can be written: 10 queued at most, the rest dropped
        log.write({"request_id": str(n)})
    assert not log.flush(timeout=0.2)
    assert log.dropped >= 89
    with fifo.open("rb") as reader:  # let the writer thread finish
        assert log.flush()
        assert reader.read().count(b"request_id") == 100 - log.dropped


def test_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.jsonl", capacity=1)
    for n in range(1000):
        log.write({"request_id": str(n)})
    assert log.flush()
    written = len((tmp_path / "p.jsonl").read_text().splitlines())
    assert written + log.dropped == 1000


def test_a_batch_is_queued_whole_or_up_to_the_capacity_and_the_rest_counted(tmp_path: Path) -> None:
    drops: list[int] = []
    log = PredictionLog(tmp_path / "p.jsonl", capacity=5, on_drop=drops.append, gather_seconds=5)
    batch = [{"request_id": str(n)} for n in range(8)]
    log.write_many(batch)  # the writer thread takes them but waits before writing: all 5 still count
    log.write_many(batch[:2])
    assert (log.dropped, drops) == (5, [3, 2])
    assert [r["request_id"] for r in batch] == [str(n) for n in range(8)]  # the caller's list is untouched
    assert log.flush(timeout=10)
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["0", "1", "2", "3", "4"]


def test_the_log_rotates_by_size_and_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    """Over a million predictions fill a 1 GiB volume: the log must roll over and drop its oldest file."""
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(path, max_bytes=2_000, backups=2)
    for n in range(300):
        log.write({"request_id": f"{n:04d}", "input": {"x": "y" * 20}})
        if n % 25 == 24:
            assert log.flush()
    assert log.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["predictions.jsonl", "predictions.jsonl.1", "predictions.jsonl.2"]
    assert all(p.stat().st_size <= 2_000 for p in tmp_path.iterdir())
    ids = [json.loads(line)["request_id"] for p in rotated(path) for line in p.read_text().splitlines()]
    assert ids == sorted(ids) and ids[-1] == "0299"  # in order, newest last; the oldest rolled away
    assert len(ids) < 300 and log.dropped == 0
