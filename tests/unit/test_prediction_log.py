"""The prediction log never slows or breaks a request, whatever the sink does."""

from __future__ import annotations

import json
import os
from pathlib import Path

from flightdelay.serving import PredictionLog


def test_records_become_json_lines(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "logs" / "predictions.jsonl")
    for n in range(5):
        log.write({"request_id": str(n), "output": {"delay_probability": 0.1 * n}})
    assert log.flush()
    lines = (tmp_path / "logs" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["0", "1", "2", "3", "4"]


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
