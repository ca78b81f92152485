"""The fitted pipeline as the service runs it: the same fitted model, without scikit-learn's per-call cost.

scikit-learn spends about 15 ms on one row of the gradient-boosted pipeline here: the column
transformer's pandas handling, input validation, and a Python loop over 300 trees. The trees
themselves take microseconds. For that estimator :class:`Scorer` encodes the categories itself, from
the fitted encoder's categories, and runs the fitted trees through treelite's C++ predictor (GTIL),
imported from the estimator when the service loads it: about 0.3 ms for one row. GTIL walks row by
row, so from :data:`GTIL_MAX_ROWS` rows on the estimator's own vectorised ``predict_proba`` on the
encoded matrix is faster (1,000 rows: ~25 ms against ~100 ms). Both run the same fitted trees in
float64 and agree with the pipeline to within 1e-12 (``tests/model/test_serving.py``).

Any other estimator (the logistic regression of ``params.yaml``) is scored by its pipeline as it is.
The registry keeps the scikit-learn pipeline: nothing here is stored, it is derived at load time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import treelite
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

#: From this many rows on, the estimator's vectorised predict is faster than GTIL (``nox -s bench -- serve``).
GTIL_MAX_ROWS = 100


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Scorer:
    """Probabilities of the positive class for features given as column arrays (``Problem.request_features``)."""

    pipeline: Pipeline
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    #: Per categorical feature, the fitted encoder's code of each known value (fast path only).
    codes: tuple[dict[Any, float], ...] | None = None
    #: The fitted trees in treelite's form (fast path only).
    forest: treelite.Model | None = None

    @classmethod
    def of(cls, pipeline: Pipeline, categorical: Sequence[str], numeric: Sequence[str]) -> Scorer:
        """The scorer for a fitted pipeline of ``core.model.make_model``: the fast path where it applies."""
        estimator = pipeline.named_steps["estimator"]
        encoder = pipeline.named_steps["columns"].named_transformers_["categorical"]
        if not (isinstance(estimator, HistGradientBoostingClassifier) and isinstance(encoder, OrdinalEncoder)):
            return cls(pipeline, tuple(categorical), tuple(numeric))
        fitted = getattr(encoder, "categories_", ())  # none when the problem has no categorical feature
        codes = tuple({value: float(code) for code, value in enumerate(known) if _known(value)} for known in fitted)
        with np.errstate(invalid="ignore"):  # the importer casts the estimator's NaN category slot to int
            forest = treelite.sklearn.import_model(estimator)
        return cls(pipeline, tuple(categorical), tuple(numeric), codes, forest)

    @property
    def features(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    def score(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """The probability of each row, and how many categorical values the model never saw (scored as missing)."""
        if self.codes is None or self.forest is None:
            return self._score_by_pipeline(columns)
        matrix, unseen = self.encode(columns)
        if len(matrix) < GTIL_MAX_ROWS:
            raw = treelite.gtil.predict(self.forest, matrix, nthread=1)
            return np.asarray(raw, dtype=float).reshape(len(matrix), -1)[:, -1], unseen
        proba = self.pipeline.named_steps["estimator"].predict_proba(matrix)[:, 1]
        return np.asarray(proba, dtype=float), unseen

    def encode(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """The matrix the column transformer would give the estimator, and the count of unseen categories."""
        assert self.codes is not None
        rows = len(columns[self.features[0]])
        matrix = np.empty((rows, len(self.features)), dtype=np.float64)
        unseen = 0
        for j, (column, codes) in enumerate(zip(self.categorical, self.codes, strict=True)):
            for i, value in enumerate(columns[column]):
                code = codes.get(value)
                if code is None:
                    code = np.nan
                    unseen += _known(value)
                matrix[i, j] = code
        for j, column in enumerate(self.numeric, start=len(self.categorical)):
            matrix[:, j] = columns[column]
        return matrix, unseen

    def _score_by_pipeline(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        frame = pd.DataFrame({column: columns[column] for column in self.features})
        proba = np.asarray(self.pipeline.predict_proba(frame)[:, 1], dtype=float)
        encoder = self.pipeline.named_steps["columns"].named_transformers_["categorical"]
        if hasattr(encoder, "steps"):  # logistic regression: impute, then one-hot
            encoder = encoder.steps[-1][1]
        unseen = 0
        for column, known in zip(self.categorical, getattr(encoder, "categories_", ()), strict=False):
            values = frame[column].dropna()
            unseen += int((~values.isin(known)).sum())
        return proba, unseen
