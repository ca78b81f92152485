"""End-to-end helpers: real git clones of the template, real dvc, commands run as a user would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flightdelay import registry, serving, settings
from flightdelay.io import dvc
from flightdelay.problem import sample
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@dataclass
class Project:
    """A clone of the template with its own environment for commands."""

    path: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "flightdelay", *args, check=check)

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def share_cache(self, other: Project) -> None:
        """Use ``other``'s DVC cache (wherever it points) and check the recorded outputs out of it."""
        self.dvc("cache", "dir", "--local", other.dvc("cache", "dir").stdout.strip())
        self.dvc("checkout")


def environment(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    env.update(
        GIT_AUTHOR_NAME="e2e",
        GIT_AUTHOR_EMAIL="e2e@example.com",
        GIT_COMMITTER_NAME="e2e",
        GIT_COMMITTER_EMAIL="e2e@example.com",
    )
    return env


def wait_ready(
    server: subprocess.Popen[Any],
    ready: Callable[[], object],
    log: Path,
    timeout: float = 60,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> None:
    """Wait until ``ready()`` stops raising ``errors``; the error shows the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ready()
            return
        except errors:  # refused, or up but not answering yet
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"{server.args[0]} did not start:\n{log.read_text()}") from None
            time.sleep(0.2)


def listening(port: int) -> Callable[[], None]:
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close()


def clone(source: Path, target: Path, env: dict[str, str]) -> Project:
    subprocess.run(["git", "clone", "--quiet", str(source), str(target)], check=True, env=env)
    # The clone's own code runs its stages, not the checkout installed in this environment.
    return Project(target, env | {"PYTHONPATH": str(target / "src")})


def clone_sharing_cache(source: Project, target: Path) -> Project:
    """A clone of ``source`` in ``target`` that uses its DVC cache and has its outputs checked out."""
    project = clone(source.path, target / "repo", environment(target))
    project.share_cache(source)
    return project


def clone_template(target: Path, env: dict[str, str]) -> Project:
    """A clone of this checkout including uncommitted work (committed there), so tests see the code under test."""
    project = clone(ROOT, target, env)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, copy = ROOT / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        elif copy.exists():
            copy.unlink()
    project.git("add", "-A")
    if project.git("status", "--porcelain"):
        project.git("commit", "--quiet", "-m", "uncommitted work of the checkout under test")
    return project


def reduce_sample(project: Project, months: range) -> None:
    """Replace the recorded months with fewer months of the sample and record them in data.dvc; take the
    database snapshots (the reference tables) from the sample database, as get-data does."""
    raw = project.path / "data" / "raw"
    for kind in ("flights", "weather"):
        shutil.rmtree(raw / kind, ignore_errors=True)
    sample.write_sample(raw, months)
    project.dvc("commit", "--force", "data.dvc")
    dvc.seed_snapshots(project.path, raw)


@pytest.fixture(scope="session")
def reduced(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The template on three months (Jan-Mar), reproduced and committed: the base for each scenario."""
    tmp = tmp_path_factory.mktemp("reduced")
    project = clone_template(tmp / "repo", environment(tmp))
    reduce_sample(project, range(1, 4))
    project.dvc("repro")
    project.git("add", "-A")
    project.git("commit", "--quiet", "-m", "reduced sample")
    return project


@pytest.fixture
def scenario(reduced: Project, tmp_path: Path) -> Project:
    """A fresh clone of the reduced project sharing its DVC cache, with the data checked out."""
    return clone_sharing_cache(reduced, tmp_path)


def lower_gate(project: Project) -> None:
    """A gate that three months of data can meet (the real gate is for the full sample)."""
    params = project.path / "params.yaml"
    text = params.read_text()
    for old, new in (
        ("test.roc_auc: 0.70", "test.roc_auc: 0.55"),
        ("test.pr_auc: 0.35", "test.pr_auc: 0.2"),
        ("    minimum:\n      roc_auc: 0.55\n", "    minimum:\n      roc_auc: 0.45\n"),  # every slice
        ("    max_gap:\n      roc_auc: 0.20\n", "    max_gap:\n      roc_auc: 0.30\n"),
        # A three-month model with fewer trees lowers 5-7% of the rows' probabilities where the full sample's
        # lowers under 1%: the invariants' rule is for the full sample, like the floors.
        ("  robustness: true\n", "  robustness: false\n"),
    ):
        assert text.count(old) == 1, f"params.yaml no longer holds {old!r} once: update lower_gate"
        text = text.replace(old, new)
    params.write_text(text)


def publish(reduced: Project, tmp: Path) -> tuple[Project, Path]:
    """The reduced template as its GitHub repository holds it, with ``origin`` a local bare repository.

    The gate is lowered for three months (the real gate is for the full sample).
    """
    project = clone_sharing_cache(reduced, tmp)
    lower_gate(project)
    return project, push_to_origin(project, tmp, "gate for the reduced sample")


def push_to_origin(project: Project, tmp: Path, message: str) -> Path:
    """Commit the working tree with ``.python-version`` naming this machine's Python, push it to a new bare
    ``origin`` as main, and return that repository.

    The workflows' setup-python step finds this machine's Python in act's tool cache (any other it would
    download).
    """
    (project.path / ".python-version").write_text(f"{sys.version_info.major}.{sys.version_info.minor}\n")
    project.git("add", "-A")
    project.git("commit", "--quiet", "--allow-empty", "-m", f"{message}; this machine's Python")
    origin = tmp / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], check=True)
    project.git("remote", "set-url", "origin", str(origin))
    project.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
    project.git("fetch", "--quiet", "origin")
    return origin


def origin_log(origin: Path, ref: str = "main") -> list[str]:
    """Commit subjects on ``ref`` of a bare repository, newest first."""
    done = subprocess.run(
        ["git", "--git-dir", str(origin), "log", "--format=%s", ref], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on loopback (SQLite and local artifacts), shared by every run of a test."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    store = tmp_path / "mlflow-home"
    store.mkdir()
    try:
        with registry.connect(store) as url:
            yield url
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def register_model(tmp: Path, lineage: dict[str, str]) -> registry.Version:
    """The project's own model, bundled as a release bundles it, registered on the connected registry."""
    params = settings.load(ROOT / "params.yaml")
    bundle = Path(tempfile.mkdtemp(prefix="bundle-", dir=tmp))
    model = dvc.verify_output(ROOT, "train", params.paths.model)
    serving.write_bundle(bundle, model, ROOT / params.paths.raw, ROOT / params.paths.metrics, {})
    return registry.register(bundle, {}, params={}, metrics={}, lineage=lineage)


def own_home(store: Path, home: Path) -> dict[str, str]:
    """A BentoML home of its own for one server, sharing the store's Bentos and models.

    `bentoml serve` empties ``$BENTOML_HOME/prometheus_multiproc_dir`` when it starts, so servers sharing a
    home wipe each other's metrics (one per pod in a cluster; three on this machine).
    """
    home.mkdir()
    for name in ("bentos", "models"):
        (home / name).symlink_to(store / name)
    return {"BENTOML_HOME": str(home)}
