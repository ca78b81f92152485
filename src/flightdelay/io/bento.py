"""The BentoML model store: the pipeline's model saved under a tag that names its content."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flightdelay import serving
from flightdelay.io import tracking
from flightdelay.io.files import atomic_path
from flightdelay.settings import Params

MODEL_NAME = "flight-delay"
TAG_PIN = "src/flightdelay/bento-tag.txt"  # read by the service; included in the Bento
GOLDEN = "src/flightdelay/golden.json"  # the golden requests and answers of a release build; included too


def save_model(root: Path, params: Params) -> str:
    """Save the bundle (model, reference tables, threshold, lineage) once per model hash; return its tag."""
    import bentoml

    from flightdelay.io import dvc

    digest = tracking.sha256(dvc.verify_output(root, "train", params.paths.model))
    tag = f"{MODEL_NAME}:{digest[:16]}"  # the same model always gets the same tag, never `latest`
    try:
        return str(bentoml.models.get(tag).tag)
    except bentoml.exceptions.NotFound:
        pass
    lineage = tracking.lineage(root) | {"model_sha256": digest}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp)
        metadata = serving.write_bundle(
            bundle, root / params.paths.model, root / params.paths.raw, root / params.paths.metrics, lineage
        )
        store_bundle(tag, bundle, metadata)
    return tag


def store_bundle(tag: str, bundle: Path, metadata: dict[str, Any]) -> None:
    """Copy a serving bundle into the BentoML model store under ``tag``."""
    import bentoml

    with bentoml.models.create(tag, metadata=metadata, labels={"project": "flightdelay"}) as model:
        for item in bundle.iterdir():
            (Path(model.path) / item.name).write_bytes(item.read_bytes())


def write_requirements(root: Path, target: Path) -> int:
    """The service's runtime dependencies, exported from ``uv.lock`` with their hashes; return how many.

    Only what the project needs to run (no test or lint tooling), each pinned and hashed, so the image
    installs exactly the locked files. Uses the ``uv`` on PATH (every nox session links the pinned one).
    """
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not on PATH: run this through nox (it links the pinned uv) or put .tools/bin on PATH")
    done = subprocess.run(
        [uv, "export", "--frozen", "--no-default-groups", "--no-emit-project", "--format", "requirements-txt"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"uv export from {root / 'uv.lock'} failed: {done.stderr.strip()}")
    with atomic_path(target) as tmp:
        tmp.write_text(done.stdout)
    return sum(1 for line in done.stdout.splitlines() if line[:1].isalnum())


class ServeError(RuntimeError):
    """`bentoml serve` exited or never became ready."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[Any], grace: float = 30) -> None:
    """Terminate a server and every process it started, and wait; kill what is left after ``grace`` seconds.

    The server must lead its own process group (``start_new_session=True``): `mlflow server` starts a job
    runner and seven huey consumers that outlive it when only it is terminated, each polling a core.
    """
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    deadline = time.monotonic() + grace
    while _signal_group(process.pid, 0) and time.monotonic() < deadline:  # its children, shutting down
        time.sleep(0.2)
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group: int, number: int) -> bool:
    """Send ``number`` to process group ``group``; False when the group has no process left."""
    try:
        os.killpg(group, number)
    except ProcessLookupError:
        return False
    return True


def answers(url: str) -> bool:
    """True when a GET of ``url`` answers 200 within five seconds."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running(
    target: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    output: Path,
    port: int | None = None,
    timeout: float = 180,
    attempts: int = 3,
) -> Iterator[str]:
    """Run ``bentoml serve <target>`` on loopback, yield its URL once ``/readyz`` answers 200, stop it on exit.

    BentoML reserves its process manager's ports by binding and releasing them, so another process can
    take one before it binds again; a start that fails with "Address already in use" is retried on
    fresh ports. The server's output goes to ``output``, which any error quotes.
    """
    for attempt in range(1, attempts + 1):
        chosen = port or free_port()
        url = f"http://127.0.0.1:{chosen}"
        command = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(chosen)]
        with output.open("w") as log:
            server = subprocess.Popen(
                command, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + timeout
            while not answers(f"{url}/readyz"):
                if server.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise ServeError(f"`bentoml serve {target}` not ready after {timeout:.0f} s:\n{output.read_text()}")
                time.sleep(0.5)
            else:
                yield url
                return
        finally:
            stop(server)
        printed = output.read_text()
        if "Address already in use" not in printed or attempt == attempts:
            raise ServeError(f"`bentoml serve {target}` exited with {server.returncode}:\n{printed}")
    raise AssertionError("unreachable")
