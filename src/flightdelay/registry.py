"""The MLflow model registry: versions of the pipeline's model, their lineage, and the aliases that say where each runs.

``candidate`` is the latest registered version, ``staging`` and ``production`` follow the deploy pins.
Without ``MLFLOW_TRACKING_URI``, :func:`connect` starts a real ``mlflow server`` on loopback with a
SQLite backend and a local artifact store under ``.mlflow/`` in the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "flight-delay"
ALIASES = ("candidate", "staging", "production", "challenger")
LOCAL_STORE = Path(".mlflow")


class RegistryError(RuntimeError):
    """The registry is unreachable, or holds no such version, or refuses the change."""


@dataclass(frozen=True)
class Version:
    """One registered version: its number, the run that logged it, its tags and aliases."""

    name: str
    number: str
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} v{self.number}"


@contextmanager
def connect(root: Path, timeout: float = 120) -> Iterator[str]:
    """Point MLflow at ``MLFLOW_TRACKING_URI``, or at a local ``mlflow server`` started for the block; yield the URI."""
    import mlflow

    from flightdelay.io.bento import answers, free_port, stop

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # logs, not a terminal
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        if uri.startswith(("http://", "https://")) and not answers(uri.rstrip("/") + "/health"):
            raise RegistryError(f"MLflow tracking server {uri} is unreachable (GET /health failed)")
        mlflow.set_tracking_uri(uri)
        yield uri
        return
    store = (root / LOCAL_STORE).resolve()
    store.mkdir(exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", f"sqlite:///{store / 'registry.db'}"),
        *("--artifacts-destination", str(store / "artifacts"), "--workers", "1"),
    ]
    log = store / "server.log"
    with log.open("w") as output:
        # Its own process group, so that stop() ends the job runner and the consumers it starts too.
        server = subprocess.Popen(command, cwd=root, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not answers(f"{url}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RegistryError(f"`mlflow server` did not start; its output ({log}):\n{log.read_text()}")
            time.sleep(0.5)
        mlflow.set_tracking_uri(url)
        yield url
    finally:
        stop(server)


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def _as_version(mv: Any) -> Version:
    return Version(mv.name, str(mv.version), mv.run_id, dict(mv.tags), tuple(getattr(mv, "aliases", ()) or ()))


def get(number: str, name: str = MODEL_NAME) -> Version:
    """The version ``number`` of ``name``; a clear error if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return _as_version(_client().get_model_version(name, str(number)))
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {number} in the registry ({exc.error_code})") from exc


def by_alias(alias: str, name: str = MODEL_NAME) -> Version | None:
    """The version that holds ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return _as_version(_client().get_model_version_by_alias(name, alias))
    except MlflowException:
        return None


def versions(name: str = MODEL_NAME) -> list[Version]:
    """Every version of ``name``, oldest first."""
    found = _client().search_model_versions(f"name = '{name}'")
    return sorted((_as_version(mv) for mv in found), key=lambda v: int(v.number))


def set_alias(version: Version, alias: str) -> None:
    _client().set_registered_model_alias(version.name, alias, version.number)


def set_tags(version: Version, tags: Mapping[str, str]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.number, key, value)


def register(
    bundle: Path,
    golden: Mapping[str, Any],
    *,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    lineage: Mapping[str, str],
    name: str = MODEL_NAME,
) -> Version:
    """Log the bundle, the golden requests and the model from one run, register it, and give it ``candidate``."""
    import joblib
    import mlflow

    from flightdelay import serving

    mlflow.set_experiment(f"{name}-release")
    with mlflow.start_run(run_name="register") as run:
        mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags(dict(lineage))
        mlflow.log_artifacts(str(bundle), "bundle")
        mlflow.log_dict(dict(golden), "golden.json")
        info = mlflow.sklearn.log_model(
            joblib.load(bundle / serving.MODEL_FILE),
            name="model",
            pip_requirements=_requirements(),
            serialization_format="pickle",
        )
    mv = mlflow.register_model(info.model_uri, name, tags=dict(lineage))
    version = get(str(mv.version), name)
    # The run that made it: tags on the version as well, so the version alone tells its lineage.
    set_tags(version, {"registration_run_id": run.info.run_id})
    set_alias(version, "candidate")
    return get(version.number, name)


def _requirements() -> list[str]:
    from importlib import metadata

    wanted = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")
    return [f"{package}=={metadata.version(package)}" for package in wanted]


def download(version: Version, artifact: str, target: Path) -> Path:
    """Fetch an artifact of the version's registration run (``bundle``, ``golden.json``) into ``target``."""
    import mlflow

    target.mkdir(parents=True, exist_ok=True)
    return Path(
        mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=artifact, dst_path=str(target))
    )


def verified_bundle(version: Version, target: Path) -> Path:
    """The version's serving bundle, downloaded into ``target``, once its model hashes to the ``model_sha256`` the
    version records: a model swapped in the artifact store is code (joblib runs what it unpickles), so nothing
    loads one that fails this."""
    from flightdelay import serving
    from flightdelay.io import tracking

    bundle = download(version, "bundle", target)
    recorded = version.tags.get("model_sha256")
    actual = tracking.sha256(bundle / serving.MODEL_FILE)
    if recorded != actual:
        raise RegistryError(
            f"{version.label}'s model in the registry hashes to {actual}, but the version records "
            f"model_sha256={recorded}"
        )
    return bundle


def golden(version: Version) -> dict[str, Any]:
    """The golden requests and the answers recorded for them when the version was registered."""
    with tempfile.TemporaryDirectory() as tmp:
        return dict(json.loads(download(version, "golden.json", Path(tmp)).read_text()))
