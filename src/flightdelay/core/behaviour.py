"""Robustness: the problem's invariants (:class:`~flightdelay.interface.Invariant`) measured on a model.

The behavioural model tests and the PR gate (``gate.robustness``) read the same measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flightdelay.interface import Invariant

LOWER = 0.01  # a probability that fell by more than this counts as lowered
ROWS = 2000  # rows of the test period measured (a seeded sample)


@dataclass(frozen=True)
class Behaviour:
    """How the model's probability moved when ``rows`` real rows went from the invariant's before to its after."""

    invariant: Invariant
    rows: int
    mean_rise: float
    share_lower: float

    def failures(self) -> list[str]:
        invariant, rows = self.invariant, f"{self.rows:,} test rows"
        found = []
        if not self.mean_rise >= invariant.min_mean_rise:
            found.append(
                f"robustness: {invariant.name} raised the probability by {self.mean_rise:+.4f} on average over "
                f"{rows}, less than the required {invariant.min_mean_rise:+g}"
            )
        if self.share_lower > invariant.max_share_lower:
            found.append(
                f"robustness: {invariant.name} lowered the probability of {self.share_lower:.1%} of {rows} by more "
                f"than {LOWER}, more than the allowed {invariant.max_share_lower:.0%}"
            )
        return found


def measure(
    proba: Callable[[pd.DataFrame], np.ndarray],
    joined: pd.DataFrame,
    invariants: Sequence[Invariant],
    *,
    rows: int = ROWS,
    seed: int = 0,
) -> list[Behaviour]:
    """Each invariant on a seeded sample of ``joined`` rows; ``proba`` maps joined rows to probabilities."""
    if invariants and joined.empty:
        raise ValueError("no rows to measure the model's invariants on")
    sample = joined.sample(n=min(rows, len(joined)), random_state=seed).reset_index(drop=True)
    found = []
    for invariant in invariants:
        missing = sorted((set(invariant.before) | set(invariant.after)) - set(joined.columns))
        if missing:
            raise ValueError(f"the invariant {invariant.name!r} sets columns the joined table lacks: {missing}")
        change = proba(sample.assign(**invariant.after)) - proba(sample.assign(**invariant.before))
        found.append(Behaviour(invariant, len(sample), float(change.mean()), float((change < -LOWER).mean())))
    return found
