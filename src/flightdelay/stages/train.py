"""Train: fit the pipeline from ``params.yaml`` on the training months and track the run in MLflow."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline

from flightdelay.core.model import make_model, portable
from flightdelay.io.files import atomic_path, read_parquet, read_parquet_batches
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params
from flightdelay.stages._runner import run_stage

log = logging.getLogger(__name__)


def fit(params: Params, rows: pd.DataFrame) -> Pipeline:
    """The fitted pipeline for ``rows`` (keys, features and label as featurize writes them)."""
    model = make_model(params.train, PROBLEM.categorical, PROBLEM.numeric)
    model.fit(rows[list(PROBLEM.features)], rows[PROBLEM.label].to_numpy())
    return portable(model)


def flat_params(params: Params) -> dict[str, object]:
    """The training params as flat MLflow params: ``train.estimator``, ``train.hist_gradient_boosting.max_iter``..."""
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        else:
            flat[prefix] = value

    walk("train", params.train.model_dump())
    walk("split", params.split.model_dump())
    walk("label", params.label.model_dump())
    return flat


def track(params: Params, model: Pipeline, rows: pd.DataFrame, model_path: Path) -> str:
    """Log params, lineage and the model (with signature and input example) to MLflow; return the run id."""
    import mlflow
    import sklearn
    import skops.io
    from mlflow.models import infer_signature

    from flightdelay.io import tracking

    root = Path.cwd()
    tracking.configure(root)
    example = rows[list(PROBLEM.features)].head(5)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    tags = tracking.lineage(root) | {tracking.MODEL_SHA_TAG: tracking.sha256(model_path), "stage": "train"}
    with mlflow.start_run(run_name=f"train-{params.train.estimator}", tags=tags) as run:
        mlflow.log_params(flat_params(params))
        mlflow.log_metric("train_rows", len(rows))
        mlflow.log_metric("train_positive_rate", float(rows[PROBLEM.label].mean()))
        # Requirements spelled out: inferring them would import the model in a subprocess, for seconds.
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"],
            # MLflow stores scikit-learn models with skops, which loads only listed types; the model
            # was fitted in this process, so the types it holds are the ones to trust.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        )
        return str(run.info.run_id)


def training_rows(path: Path, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The rows of ``path`` to fit on: every row, or past ``max_rows`` the ``max_rows`` whose keys hash lowest.

    The hash is of each row's :attr:`~flightdelay.interface.Problem.keys` and ``seed``, so the sample is the
    same for the same rows however they are stored, a row keeps its place in it while rows are added (unless
    lower hashes push it out), and another seed draws another sample. The file is read twice, a batch at a
    time: its keys, to find the cut, then the rows under it. The rows keep the file's order.
    """
    total = pq.ParquetFile(path).metadata.num_rows if path.is_file() else 0
    if max_rows is None or total <= max_rows:
        return read_parquet(path)
    hashes = np.concatenate([_key_hashes(keys, seed) for keys in read_parquet_batches(path, columns=PROBLEM.keys)])
    cut = np.partition(hashes, max_rows - 1)[max_rows - 1]
    kept = [batch[_key_hashes(batch, seed) <= cut] for batch in read_parquet_batches(path)]
    rows: pd.DataFrame = pd.concat(kept, ignore_index=True)
    log.info("fitting on %d of %d rows (train.max_rows), sampled by key with seed %d", len(rows), total, seed)
    return rows


def _key_hashes(rows: pd.DataFrame, seed: int) -> np.ndarray:
    keys = rows[list(PROBLEM.keys)].assign(_seed=seed)
    return pd.util.hash_pandas_object(keys, index=False).to_numpy()


def train(params: Params) -> None:
    """Write ``paths.model`` and record the run in MLflow."""
    rows = training_rows(params.paths.train, params.train.max_rows, params.train.random_state)
    model = fit(params, rows)
    with atomic_path(params.paths.model) as tmp:
        joblib.dump(model, tmp)
    run_id = track(params, model, rows, params.paths.model)
    log.info("trained %s on %d rows; MLflow run %s", params.train.estimator, len(rows), run_id)


def main(argv: Sequence[str] | None = None) -> int:
    return run_stage("train", train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
