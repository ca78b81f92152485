"""Model baselines on the pipeline's own split: the figures the README quotes (``nox -s bench -- baselines``).

* always on time: predicts "not delayed" with the training base rate as probability;
* raw columns: gradient boosting on the raw schedule columns and the weather, no engineered features;
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
from flightdelay.problem.features import LABEL
from flightdelay.stages.train import fit

RAW_COLUMNS = ["sched_dep_time", "sched_arr_time", "distance", "carrier", "origin", "dest"]
RAW_WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def raw_model(params: settings.Params, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    flights = read_parquet(params.paths.joined)
    period = flights["year"] * 100 + flights["month"]
    columns = [*RAW_COLUMNS, "day_of_week", *RAW_WEATHER]
    flights = flights.assign(day_of_week=pd.to_datetime(flights[["year", "month", "day"]]).dt.day_of_week)
    for column in ("carrier", "origin", "dest"):
        flights[column] = flights[column].astype("category")
    fit_rows = flights[period.isin(set(train["year"] * 100 + train["month"]))]
    test_rows = flights[period.isin(set(test["year"] * 100 + test["month"]))]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=params.train.random_state)
    model.fit(fit_rows[columns], train[LABEL].to_numpy())
    return np.asarray(model.predict_proba(test_rows[columns])[:, 1])


def main() -> int:
    params = settings.load(Path("params.yaml"))
    train, test = read_parquet(params.paths.train), read_parquet(params.paths.test)
    y = test[LABEL].to_numpy()
    logistic = params.train.model_copy(update={"estimator": "logistic_regression"})
    candidates = {
        "always on time (base rate)": np.full(len(y), train[LABEL].mean()),
        "gradient boosting, raw columns": raw_model(params, train, test),
        "logistic regression, features": fit(params.model_copy(update={"train": logistic}), train).predict_proba(test)[
            :, 1
        ],
        "default model (params.yaml)": fit(params, train).predict_proba(test)[:, 1],
    }
    print(f"test month rows: {len(y)}, delayed: {y.mean():.3f}")
    print(f"{'model':<34}{'ROC AUC':>9}{'log loss':>10}")
    for name, proba in candidates.items():
        auc = roc_auc_score(y, proba) if np.unique(proba).size > 1 else 0.5
        print(f"{name:<34}{auc:>9.3f}{log_loss(y, proba):>10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
