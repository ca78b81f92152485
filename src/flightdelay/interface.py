"""The problem interface: everything the machinery knows about the problem it serves.

The machinery (stages, gate, PR report, registry, release, service shell, monitor, workflows) never names
a column. It reads the problem through one object, ``flightdelay.problem.PROBLEM``, an instance of
:class:`Problem`. To solve another problem, replace the package ``flightdelay/problem/`` with one whose
``PROBLEM`` implements this class (``examples/`` holds a second one to start from); nothing else needs
an edit.

The tables, in pipeline order:

* **raw**: the files under ``paths.raw`` (data.dvc), as the problem receives them;
* **joined**: one row per example, what :meth:`Problem.ingest` joins (the ingest stage writes it to
  ``paths.joined`` as :meth:`Problem.ingest_batches` gives it) and :meth:`Problem.schema` checks; a request
  to the service becomes such rows (:meth:`Problem.request_rows`) and the model inputs of them
  (:meth:`Problem.request_features`);
* **featurized**: :attr:`Problem.keys`, the model's :attr:`Problem.features` and the :attr:`Problem.label`,
  what featurize splits by :meth:`Problem.period` into train, valid and test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel


class SampleError(RuntimeError):
    """The sample data cannot be written as asked (a period it does not hold, a file already there)."""


@dataclass(frozen=True)
class Invariant:
    """A behaviour the model must show, whatever its metrics: real rows moved from ``before`` to ``after``
    (joined-table columns set to these values) must raise the probability of the positive class by at least
    ``min_mean_rise`` on average, and lower it by more than 0.01 for at most ``max_share_lower`` of them.
    The behavioural model tests and the PR gate (``gate.robustness``) both check it."""

    name: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    min_mean_rise: float = 0.05
    max_share_lower: float = 0.05


class Problem(ABC):
    """A binary classification problem on time-stamped rows, as the machinery sees it."""

    #: What a row is, in messages and the service's descriptions ("flight").
    entity: str
    #: Columns kept beside the features in train/valid/test: what identifies a row, and what :meth:`period` reads.
    keys: tuple[str, ...]
    #: The model's inputs, as :meth:`features` returns them: categorical (strings, None when unknown) ...
    categorical: tuple[str, ...]
    #: ... and numeric (floats, NaN when unknown).
    numeric: tuple[str, ...]
    #: The label column of the featurized tables: 1 for the positive class.
    label: str
    #: Names of label 0 and label 1, for the confusion matrix ("on_time", "delayed").
    classes: tuple[str, str]
    #: The column of a labels file (``flightdelay monitor --labels``) that :meth:`label_of_outcome` reads.
    outcome: str
    #: Files under ``paths.raw`` that the service bundle carries for :meth:`request_rows`.
    reference_files: tuple[str, ...]
    #: Files under ``paths.raw`` that are snapshots of database tables (``dvc import-db``), each recorded in its
    #: own ``.dvc`` file beside it, with the query that takes it; ``data.dvc`` records the rest of ``paths.raw``.
    #: The sample's tables come from :meth:`sample_database`.
    database_snapshots: Mapping[str, str] = MappingProxyType({})
    #: The request the service's OpenAPI page offers under "Try it out".
    example: Mapping[str, Any]
    #: The options of ``params.yaml``'s ``ingest`` and ``label`` sections (frozen pydantic models).
    ingest_options: type[BaseModel]
    label_options: type[BaseModel]
    #: How many of the sample's last months a new project starts without: the data PR and the monitor add them.
    held_back: int = 2

    @property
    def features(self) -> tuple[str, ...]:
        """Every model input: categorical first, as the model's column transformer takes them."""
        return self.categorical + self.numeric

    # --- The pipeline ----------------------------------------------------------------------------

    @abstractmethod
    def ingest(self, raw: Path, options: Any) -> pd.DataFrame:
        """The joined table from the raw files; raise :class:`~flightdelay.io.files.RawDataError` on bad files."""

    def ingest_batches(self, raw: Path, options: Any) -> Iterator[pd.DataFrame]:
        """The joined table as consecutive batches of its rows, in its order: what the ingest stage writes.

        The stage writes each batch as it comes (``io.files.ParquetSink``), so its memory is that of one
        batch, not of the table. By default one batch, :meth:`ingest`'s whole table; a problem whose raw files
        come in periods (a file a month) overrides this to join one period at a time. The batches together
        must be :meth:`ingest`'s table, row for row.
        """
        yield self.ingest(raw, options)

    @abstractmethod
    def schema(self, raw: Path) -> pa.DataFrameSchema:
        """The hard checks on the joined table (validate fails on any); may read reference files in ``raw``."""

    @abstractmethod
    def warnings(self) -> pa.DataFrameSchema:
        """Soft checks on the joined table: counted in the validation report, never failing. Column checks only,
        each column's ``description`` saying what a failure means (the report names a failure by its column)."""

    @abstractmethod
    def features_of(self, joined: pd.DataFrame) -> pd.DataFrame:
        """The model inputs (:attr:`features`, in order) of joined rows; one row or millions, same code."""

    @abstractmethod
    def labels_of(self, joined: pd.DataFrame, options: Any) -> pd.Series:
        """The label (0 or 1, int64, named :attr:`label`) of joined rows."""

    @abstractmethod
    def period(self, rows: pd.DataFrame) -> pd.Series:
        """The month of each row (joined or featurized) as YYYYMM ints: the time split and the reports use it."""

    def featurize(self, joined: pd.DataFrame, options: Any) -> pd.DataFrame:
        """Keys, features and label of joined rows: what featurize splits and train fits on.

        A feature that is also a key (a category the rows are identified by) appears once, as the key.
        """
        features = self.features_of(joined)
        features = features.drop(columns=[c for c in self.keys if c in features.columns])
        return pd.concat([joined[list(self.keys)], features, self.labels_of(joined, options)], axis=1)

    @abstractmethod
    def label_of_outcome(self, outcome: pd.Series, options: Any) -> pd.Series:
        """The label (float 0/1) from a labels file's :attr:`outcome` values, as :meth:`labels_of` would give."""

    def invariants(self) -> tuple[Invariant, ...]:
        """What a domain expert expects of any model of this problem (none by default)."""
        return ()

    # --- The service -----------------------------------------------------------------------------

    @abstractmethod
    def request_model(self, examples: Mapping[str, Any] | None = None) -> type[BaseModel]:
        """The pydantic model of one request: what a caller knows at prediction time (derived from the schema)."""

    @abstractmethod
    def request_columns(self) -> tuple[str, ...]:
        """The joined table's columns a request carries (the release's golden requests are such rows)."""

    @abstractmethod
    def load_references(self, bundle: Path) -> Any:
        """Whatever :meth:`request_rows` needs from the :attr:`reference_files` copied into ``bundle``."""

    @abstractmethod
    def unknown_values(self, requests: Sequence[Mapping[str, Any]], references: Any) -> list[tuple[int, str, str]]:
        """``(index, field, value)`` of every value the references do not hold: such a request is a bad request."""

    @abstractmethod
    def request_rows(self, requests: Sequence[Mapping[str, Any]], references: Any) -> pd.DataFrame:
        """Joined rows for validated requests (the references joined in as ingest joins them)."""

    def request_features(self, requests: Sequence[Mapping[str, Any]], references: Any) -> dict[str, np.ndarray]:
        """The model inputs of validated requests, one array per :attr:`features` entry: what the service scores.

        By default :meth:`features_of` on :meth:`request_rows`: correct, but a pandas frame costs
        milliseconds for one row. A problem whose feature code works on column arrays overrides this to
        run that same code on the request's values (the flight problem does); the result must equal the
        default's, which ``tests/problem`` checks for the flight problem.
        """
        frame = self.features_of(self.request_rows(requests, references))
        return {column: frame[column].to_numpy() for column in self.features}

    # --- The sample --------------------------------------------------------------------------------

    @abstractmethod
    def sample_periods(self) -> list[int]:
        """Every month (YYYYMM) the sample can write, in order."""

    @abstractmethod
    def write_sample(self, raw: Path, periods: Sequence[int]) -> None:
        """Create ``raw`` holding the sample's ``periods``; it appears whole or not at all. A problem with
        :attr:`database_snapshots` writes the rest of ``raw`` only, beside them."""

    def sample_database(self) -> dict[str, pd.DataFrame]:
        """The tables of the sample's database, which :attr:`database_snapshots` query (none by default)."""
        return {}

    def initial_periods(self) -> list[int]:
        """The months a new project's ``data.dvc`` records: the sample without the :attr:`held_back` last ones."""
        return self.sample_periods()[: -self.held_back or None]

    @abstractmethod
    def sample_layout(self, nfiles: int) -> list[int] | None:
        """The periods a sample written by :meth:`write_sample` from its first month has, when it holds ``nfiles``
        files; None when no such sample has that many."""

    @abstractmethod
    def add_period(self, raw: Path, period: int) -> list[Path]:
        """Write a held-back month of the sample into ``raw``; refuse to overwrite; return the files written."""

    @abstractmethod
    def periods_present(self, raw: Path) -> list[int]:
        """The months (YYYYMM) ``raw`` holds, in order."""

    @abstractmethod
    def sample_window(self, raw: Path, period: int, options: Any) -> pd.DataFrame:
        """The joined rows of one month of the sample, joined with the references in ``raw`` (the monitor's
        ``--month``): ``raw`` need not hold that month."""


def period_label(period: int) -> str:
    """``201311`` as ``2013-11``."""
    return f"{period // 100}-{period % 100:02d}"


def parse_period(text: str) -> int:
    """``2013-11`` as ``201311``; a ValueError names the expected form."""
    try:
        year, month = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"{text!r}: expected a month as YYYY-MM, e.g. 2013-11") from None
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r}: month {month} is not 1-12")
    return year * 100 + month
