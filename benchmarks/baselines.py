"""Model baselines on the pipeline's own split: the figures the README quotes (``nox -s bench -- baselines``).

* base rate: the training base rate as every probability;
* request columns: gradient boosting on the joined table's columns a request carries, no engineered features;
* logistic regression on the engineered features;
* the default model (params.yaml), as the pipeline trains it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

from flightdelay import settings
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from flightdelay.stages.train import fit


def request_model(params: settings.Params, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Gradient boosting on the request's columns as they are: what the engineered features add to them."""
    joined = read_parquet(params.paths.joined)
    joined = joined.assign(_label=PROBLEM.labels_of(joined, params.label))
    columns = list(PROBLEM.request_columns())
    for column in columns:
        if not pd.api.types.is_numeric_dtype(joined[column]):
            # The trees take at most 255 categories: the 254 most frequent, the rest as missing.
            frequent = joined[column].value_counts().index[:254]
            joined[column] = joined[column].where(joined[column].isin(frequent)).astype("category")
    period = PROBLEM.period(joined)
    fit_rows = joined[period.isin(set(PROBLEM.period(train)))]
    test_rows = joined[period.isin(set(PROBLEM.period(test)))]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=params.train.random_state)
    model.fit(fit_rows[columns], fit_rows["_label"].to_numpy())
    return np.asarray(model.predict_proba(test_rows[columns])[:, 1])


def main() -> int:
    params = settings.load(Path("params.yaml"))
    train, test = read_parquet(params.paths.train), read_parquet(params.paths.test)
    y = test[PROBLEM.label].to_numpy()
    logistic = params.train.model_copy(update={"estimator": "logistic_regression"})
    candidates = {
        "base rate": np.full(len(y), train[PROBLEM.label].mean()),
        "gradient boosting, request columns": request_model(params, train, test),
        "logistic regression, features": fit(params.model_copy(update={"train": logistic}), train).predict_proba(test)[
            :, 1
        ],
        "default model (params.yaml)": fit(params, train).predict_proba(test)[:, 1],
    }
    print(f"test rows: {len(y)}, {PROBLEM.label}: {y.mean():.3f}")
    print(f"{'model':<34}{'ROC AUC':>9}{'log loss':>10}")
    for name, proba in candidates.items():
        auc = roc_auc_score(y, proba) if np.unique(proba).size > 1 else 0.5
        print(f"{name:<34}{auc:>9.3f}{log_loss(y, proba):>10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
