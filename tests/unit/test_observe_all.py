"""``observe_all`` leaves a histogram as observing each amount would, in both of prometheus_client's modes."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram

from flightdelay.serving import observe_all

BUCKETS = [round(0.05 * i, 2) for i in range(1, 20)]  # the service's probability histogram's
EDGES = [0.0, 0.05, 0.05000001, 0.1, 0.5, 0.95, 0.9500001, 1.0, 2.0, -1.0, math.inf]
MANY = [random.Random(7).random() for _ in range(1000)]


def histogram(registry: CollectorRegistry, name: str = "probability") -> Histogram:
    return Histogram(name, "delay probabilities", buckets=BUCKETS, registry=registry)


def figures(registry: CollectorRegistry) -> tuple[dict[str, float], float]:
    """The histogram's bucket and count samples, and its sum."""
    samples = [s for metric in registry.collect() for s in metric.samples if not s.name.endswith("_created")]
    buckets = {f"{s.name}{s.labels}": s.value for s in samples if not s.name.endswith("_sum")}
    (total,) = (s.value for s in samples if s.name.endswith("_sum"))
    return buckets, total


@pytest.mark.parametrize(
    "amounts", [[], [0.3], EDGES, MANY, [math.nan, 0.2]], ids=["none", "one", "edges", "many", "nan"]
)
def test_observe_all_counts_each_amount_where_observe_does(amounts: list[float]) -> None:
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    observed = histogram(one_by_one)
    for amount in amounts:
        observed.observe(amount)

    observe_all(histogram(at_once), amounts)

    expected, expected_sum = figures(one_by_one)
    got, got_sum = figures(at_once)
    assert got == expected
    assert got_sum == pytest.approx(expected_sum, nan_ok=True)


def test_observe_all_adds_to_what_is_already_observed() -> None:
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    observed, bulk = histogram(one_by_one), histogram(at_once)
    for amount in (0.1, 0.7):
        observed.observe(amount)
        bulk.observe(amount)
    for amount in MANY[:10]:
        observed.observe(amount)

    observe_all(bulk, MANY[:10])

    assert figures(at_once)[0] == figures(one_by_one)[0]
    assert figures(at_once)[1] == pytest.approx(figures(one_by_one)[1])


def test_observe_all_refuses_a_labelled_histogram_as_observe_does() -> None:
    labelled = Histogram("by_model", "probabilities", ["model"], buckets=BUCKETS, registry=CollectorRegistry())
    with pytest.raises(ValueError, match="missing label values"):
        labelled.observe(0.5)
    with pytest.raises(ValueError, match="missing label values"):
        observe_all(labelled, [0.5])


# prometheus_client picks its value class (memory-mapped files) when it is imported with the directory set,
# as BentoML's workers import it: so in a process of its own. It prints each histogram's samples.
MULTIPROCESS = """
import json, sys
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from flightdelay.serving import observe_all

amounts, buckets = json.loads(sys.argv[1]), json.loads(sys.argv[2])
observed = Histogram("one_by_one", "d", buckets=buckets)
for amount in amounts:
    observed.observe(amount)
observe_all(Histogram("at_once", "d", buckets=buckets), amounts)
registry = CollectorRegistry()
MultiProcessCollector(registry)
print(json.dumps({
    metric.name: {s.name.removeprefix(metric.name) + str(s.labels): s.value for s in metric.samples}
    for metric in registry.collect()
}))
"""


def test_observe_all_writes_what_observe_writes_in_multiprocess_mode(tmp_path: Path) -> None:
    amounts = EDGES[:-1] + MANY[:200]  # JSON has no infinity
    out = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS, json.dumps(amounts), json.dumps(BUCKETS)],
        env=os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
        text=True,
    )
    histograms: dict[str, dict[str, float]] = json.loads(out.stdout)

    one_by_one, at_once = histograms["one_by_one"], histograms["at_once"]
    total = "_sum{}"
    assert at_once.pop(total) == pytest.approx(one_by_one.pop(total))
    assert at_once == one_by_one
    assert one_by_one["_count{}"] == len(amounts)
