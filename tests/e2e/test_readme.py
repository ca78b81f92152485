"""The README's walkthroughs, run as written in a fresh clone after Quickstart line 1.

Every `bash` block runs in document order in one clone, each in a new shell (so a block that needs the
project environment activates it itself), with the machine's PATH minus this test's environment.
What a block prints is checked against the `text` block after it that says it is its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flightdelay.io import bento
from tests import readme
from tests.conftest import ROOT
from tests.e2e.conftest import clone_template

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
BLOCKS = readme.blocks(README)
# A block that does not finish in this long is broken, whatever it does.
BLOCK_TIMEOUT = 900


@dataclass
class Walkthrough:
    path: Path
    env: dict[str, str]
    log: Path
    failed: list[int] = field(default_factory=list)


def _environment(tmp: Path) -> dict[str, str]:
    """The user's shell: no test venv on PATH, nothing pointing at the test's own tools or stores.

    Inside `nox -s tests`, nox exports its session venv as UV_PROJECT_ENVIRONMENT: left in, the README's
    `uv sync` would sync that venv (the one running this test) instead of making the clone's `.venv/`.
    """
    ours = {"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"}
    ours |= {"UV_PROJECT_ENVIRONMENT", "UV_PYTHON"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ours and not k.startswith(("MLFLOW_", "NOX", "PYTEST", "BENTOML_"))
    }
    ours = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != ours)
    return env | {
        "GIT_AUTHOR_NAME": "readme",
        "GIT_AUTHOR_EMAIL": "readme@example.com",
        "GIT_COMMITTER_NAME": "readme",
        "GIT_COMMITTER_EMAIL": "readme@example.com",
        "PRE_COMMIT_HOME": str(tmp / "pre-commit"),
        "BENTOML_HOME": str(tmp / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    """A clone in the state Quickstart line 1 leaves: `.tools/`, the sample data and the pipeline's outputs."""
    tools = ROOT / ".tools" / "bin" / "nox"
    if not tools.is_file():
        pytest.fail(f"{tools} is missing: run Quickstart line 1 in {ROOT} first (the README blocks use .tools/)")
    tmp = tmp_path_factory.mktemp("readme")
    env = _environment(tmp)
    project = clone_template(tmp / "repo", env)
    (project.path / ".tools").symlink_to(ROOT / ".tools")
    project.git("update-ref", "refs/remotes/origin/main", "HEAD")  # the uncommitted work under test is main
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    project.dvc("checkout")
    yield Walkthrough(project.path, env, tmp / "blocks.log")


def _serve(block: readme.Block, url: str, where: Walkthrough, out: Path) -> tuple[int, str]:
    """Start a server block, wait until ``url`` answers, stop it; (0, log) once it answered."""
    with out.open("w") as sink:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=where.path,
            env=where.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + BLOCK_TIMEOUT
        answered = False
        while time.monotonic() < deadline and process.poll() is None and not answered:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    answered = True
            except urllib.error.HTTPError as exc:
                answered = exc.code < 500
            except (urllib.error.URLError, OSError):
                time.sleep(2)
        bento.stop(process)  # the block's whole process group: the server and what it started
    status = 0 if answered else (process.returncode or 1)
    return status, out.read_text()


def _run(block: readme.Block, where: Walkthrough) -> tuple[int, str]:
    out = where.log.with_name(f"block-{block.line}.log")
    url = block.serves()
    if url:
        return _serve(block, url, where, out)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=where.path,
        env=where.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    out.write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def _shown_output(block: readme.Block) -> readme.Block | None:
    following = [b for b in BLOCKS if b.line > block.line]
    if following and following[0].directive == "output":
        return following[0]
    return None


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.runs], ids=lambda b: f"line-{b.line}")
def test_the_block_runs_as_written(block: readme.Block, walkthrough: Walkthrough) -> None:
    if walkthrough.failed:
        pytest.fail(f"an earlier block (README.md:{walkthrough.failed[0]}) failed, and the walkthrough builds on it")
    started = time.monotonic()
    status, output = _run(block, walkthrough)
    seconds = time.monotonic() - started
    tail = "\n".join(output.splitlines()[-40:])
    if status != block.expected_exit():
        walkthrough.failed.append(block.line)
        pytest.fail(f"README.md:{block.line} exited {status}, not {block.expected_exit()}:\n{block.text}\n{tail}")
    shown = _shown_output(block)
    if shown is not None:
        missing = readme.unmatched(shown.text, output)
        assert missing is None, f"README.md:{shown.line} shows {missing!r}, which the block did not print:\n{tail}"
    print(f"README.md:{block.line}: {seconds:.0f} s")
