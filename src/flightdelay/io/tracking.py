"""MLflow tracking: where runs go and what lineage each run records.

The local default is a SQLite store in the project root (``mlflow.db``, artifacts in ``mlruns/``);
``MLFLOW_TRACKING_URI`` points everything at a server instead.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from flightdelay.io.dvc import data_hash, snapshots, tracked_path

EXPERIMENT = "flightdelay"
MODEL_SHA_TAG = "model_sha256"


def configure(root: Path) -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or the local store, select the experiment; return the URI."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        # A local artifact root beside the store, so runs never land in a cwd-relative ./mlruns elsewhere.
        artifacts = (root / "mlruns").resolve().as_uri()
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT))
    return uri


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lineage(root: Path, pointer: Path = Path("data.dvc")) -> dict[str, str]:
    """Tags that tie a run to its code and data: git commit (and whether the tree was dirty), data hash."""
    tags: dict[str, str] = {}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    if head.returncode == 0:
        tags["git_commit"] = head.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        tags["git_dirty"] = str(bool(dirty.stdout.strip())).lower()
    if (root / pointer).is_file():
        tags["data_dvc_md5"] = data_hash(root, pointer)
        taken = snapshots(root, tracked_path(root, pointer))
        if taken:  # the database snapshots the raw data holds beside what data.dvc records
            tags["db_snapshots_md5"] = ",".join(f"{t.name}={data_hash(root, t)}" for t in taken)
    return tags


def find_run(model_sha256: str) -> str | None:
    """The id of the latest run that logged the model with this hash, if any."""
    runs = mlflow.search_runs(
        filter_string=f"tags.{MODEL_SHA_TAG} = '{model_sha256}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def evaluation_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics.json`` as MLflow metric names: ``threshold``, ``test_roc_auc``, ``valid_log_loss``..."""
    flat = {"threshold": float(metrics["threshold"])}
    for part in ("test", "valid"):
        flat |= {f"{part}_{k}": float(v) for k, v in metrics[part].items() if v is not None}
    return flat


def log_evaluation(
    root: Path, model: Path, metrics: Mapping[str, Any], slices: Mapping[str, Any], *, if_missing: bool = False
) -> tuple[str, bool]:
    """Log an evaluation to the run that trained ``model`` (a new run when none did); return its id, and
    whether anything was logged. ``if_missing``: leave a run that already has test metrics as it is."""
    model_sha = sha256(model)
    run_id = find_run(model_sha)
    if if_missing and run_id and any(k.startswith("test_") for k in mlflow.get_run(run_id).data.metrics):
        return run_id, False
    tags = None if run_id else lineage(root) | {MODEL_SHA_TAG: model_sha, "stage": "evaluate"}
    with mlflow.start_run(run_id=run_id, tags=tags) as run:
        mlflow.log_metrics(evaluation_metrics(metrics))
        mlflow.log_dict(dict(slices), "evaluation/slices.json")
        return str(run.info.run_id), True
