"""Which windows flagged drift or decay: the record the monitor keeps, so that retraining waits for k of n.

One noisy window is not a trend. Each run of the monitor records its window's verdict: the window's
span, the model it was judged against, whether drift or decay held and why. Retraining is proposed when
at least ``k`` of the last ``n`` windows judged against the current model were flagged. A window judged
again replaces its record, so running the monitor twice on the same data does not count twice; a new
model starts a new count, since the older verdicts were about another model and its training reference.

The history is JSON lines, one :class:`Record` per line, oldest window first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


class HistoryError(ValueError):
    """The history of window verdicts cannot be read."""


@dataclass(frozen=True)
class Record:
    """One window's verdict, as the next run counts it."""

    window: str  # the key: "2013-11" for a month, "<first>/<last>" (ISO 8601, UTC) for a prediction log
    name: str  # "flights of 2013-11", "prediction log predictions.jsonl"
    start: str  # the window's first moment, ISO 8601 UTC: windows are ordered by their end
    end: str
    model: str  # the md5 of the model judged (dvc.lock): a new model starts a new count
    flagged: bool  # drift or decay held on the window
    causes: tuple[str, ...]  # ("prediction drift",), () when not flagged
    recorded: str  # when the monitor judged it, ISO 8601 UTC

    def as_json(self) -> str:
        return json.dumps(asdict(self) | {"causes": list(self.causes)}, sort_keys=True)

    def said(self) -> str:
        """``2013-11: prediction drift`` or ``2013-11: none``."""
        return f"{self.window}: {', '.join(self.causes) if self.flagged else 'none'}"


_FIELDS = {f.name for f in fields(Record)}


@dataclass(frozen=True)
class Tally:
    """The last ``n`` windows judged against one model, and whether ``k`` of them were flagged."""

    last: tuple[Record, ...]  # at most n, oldest first
    k: int
    n: int

    @property
    def flagged(self) -> int:
        return sum(record.flagged for record in self.last)

    @property
    def due(self) -> bool:
        return self.flagged >= self.k

    def observed(self) -> str:
        """``2 of the last 3 windows judged against this model were flagged (2013-10: none; ...)``."""
        judged = len(self.last)
        scope = f"the last {judged} windows" if judged > 1 else "the one window"
        if judged < self.n:
            scope += f" so far (of {self.n})"
        listed = "; ".join(record.said() for record in self.last)
        return f"{self.flagged} of {scope} judged against this model flagged ({listed})"

    def rule(self) -> str:
        """``in at least 2 of the last 3 windows ...``: how many flagged windows call for retraining."""
        return (
            f"in at least {self.k} of the last {self.n} windows judged against the current model "
            "(monitor.retrain_k, monitor.retrain_n; a window judged again replaces its verdict)"
        )


@dataclass(frozen=True)
class History:
    """Every window's recorded verdict, ordered by the window's end."""

    records: tuple[Record, ...] = ()

    @classmethod
    def parse(cls, text: str, source: str) -> History:
        """The history in ``text`` (JSON lines); a line that is not a record is an error naming ``source`` and line."""
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict) or set(raw) != _FIELDS:
                    found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
                    raise ValueError(f"expected the keys {sorted(_FIELDS)}, found {found}")
                record = Record(**(raw | {"causes": tuple(raw["causes"]), "flagged": _bool(raw["flagged"])}))
            except (ValueError, TypeError) as exc:
                raise HistoryError(
                    f"{source} line {number} is not a window verdict ({exc}); fix or remove the line"
                ) from exc
            records.append(record)
        return cls(tuple(sorted(records, key=lambda r: (r.end, r.recorded))))

    def dumps(self) -> str:
        return "".join(record.as_json() + "\n" for record in self.records)

    def with_record(self, record: Record) -> History:
        """This history with ``record``, replacing an earlier verdict on the same window against the same model."""
        kept = [r for r in self.records if (r.window, r.model) != (record.window, record.model)]
        return History(tuple(sorted([*kept, record], key=lambda r: (r.end, r.recorded))))

    def judged(self, model: str) -> list[str]:
        """The windows judged against ``model``."""
        return [record.window for record in self.records if record.model == model]

    def tally(self, model: str, k: int, n: int) -> Tally:
        """The last ``n`` windows judged against ``model``; ``k`` flagged ones call for retraining."""
        if not 1 <= k <= n:
            raise ValueError(f"retraining needs 1 <= k <= n, got k={k}, n={n}")
        mine = [record for record in self.records if record.model == model]
        return Tally(tuple(mine[-n:]), k, n)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"flagged must be true or false, found {value!r}")
    return value
