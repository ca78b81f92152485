"""The template's public commands: ``nox -s <session>``. Every session installs from ``uv.lock``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox
from nox.virtualenv import UV

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["pipeline", "tests", "lint"]
# A session's venv is kept between runs: _install syncs it to uv.lock exactly each time (uv adds, removes and
# changes only what differs), so a second `nox -s pr-report` starts in seconds, not after a fresh install.
nox.options.reuse_venv = "yes"
nox.needs_version = ">=2025.2.9"

ROOT = Path(__file__).parent
# Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE), every process would compile each module it
# imports, every time: compile the environment once at install instead. Elsewhere (GitHub's runners) Python
# writes the bytecode of what is imported on first use, which costs less than compiling every package.
ENV = {"UV_COMPILE_BYTECODE": "1"} if os.environ.get("PYTHONDONTWRITEBYTECODE") else {}


def _install(session: nox.Session, *groups: str) -> None:
    """Sync the session's venv to the lockfile exactly: the project, its dependencies, the ``scale`` group (dask,
    for params.yaml's engine: every session may run a stage) and ``groups``."""
    flags = [f"--group={g}" for g in ("scale", *groups)]
    session.run_install(
        UV,
        "sync",
        "--locked",
        "--no-default-groups",
        *flags,
        env={**ENV, "UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
        external=True,
    )
    _link_uv(session)


def _link_uv(session: nox.Session) -> None:
    """Put the uv that nox runs (pinned in requirements-bootstrap.txt) into the session's venv.

    `bentoml build` runs `uv` from PATH and otherwise tries to pip-install it into the running
    interpreter, which a uv-made venv cannot do (it has no pip). Linking the project's own uv makes the
    build use the pinned one, whatever else the machine has or lacks on PATH.
    """
    uv = shutil.which(UV)
    if uv is None:
        session.error(f"nox's uv ({UV}) is not an executable: reinstall requirements-bootstrap.txt")
    target, link = Path(uv).resolve(), Path(session.bin) / "uv"
    if link.resolve() != target:
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def _pipeline(session: nox.Session, *args: str) -> None:
    session.run("flightdelay", "get-data")
    session.run("dvc", "repro", *args)


@nox.session
def pipeline(session: nox.Session) -> None:
    """Get the raw data (DVC remote or the sample) and reproduce the pipeline: nox -s pipeline [-- dvc repro args]."""
    _install(session)
    _pipeline(session, *session.posargs)
    if not session.posargs:  # a fresh clone retrains but skips evaluate: give its MLflow run the evaluation
        session.run("flightdelay", "log-evaluation")


@nox.session
def tests(session: nox.Session) -> None:
    """Reproduce the pipeline, then run every test: nox -s tests [-- pytest args, e.g. -m 'not slow' or -n 0].

    The test files are spread over one worker per core (a file's tests stay together, so its module fixtures
    are made once); ``-n 0`` runs them in this process, for ``-s`` or a debugger.
    """
    _install(session, "test")
    _pipeline(session)
    session.run("pytest", "-n", "auto", "--dist", "loadfile", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks: ruff (lint + format), mypy strict, the workflows (schema, zizmor as an auditor), the overlays."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    for problem in sorted((ROOT / "examples").glob("*/problem")):  # drop-in problems: one at a time (same name)
        session.run("mypy", str(problem.relative_to(ROOT)), env={"MYPYPATH": "src"})
    github = ROOT / ".github"
    workflows = sorted(str(p) for p in (github / "workflows").glob("*.yml"))
    actions = sorted(str(p) for p in (github / "actions").glob("*/action.yml"))
    if workflows:
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    if actions:
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-actions", *actions)
    if (github / "dependabot.yml").is_file():
        session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", str(github / "dependabot.yml"))
    if workflows or actions:
        session.run("zizmor", "--offline", "--persona=auditor", *workflows, *actions)
    session.run("flightdelay", "deploy-check")  # overlays rendered and validated against the Kubernetes schemas


@nox.session
def tune(session: nox.Session) -> None:
    """Time-boxed hyperparameter search tracked in MLflow: nox -s tune [-- --budget 120]."""
    _install(session)
    _pipeline(session)
    session.run("flightdelay", "tune", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """Serve the current model on loopback with its OpenAPI page: nox -s serve [-- --port 3000]."""
    _install(session)
    _pipeline(session)
    session.run("flightdelay", "bento-model")
    args = session.posargs or ["--port", "3000"]
    session.run("bentoml", "serve", "flightdelay.service:FlightDelay", "--host", "127.0.0.1", *args)


@nox.session(name="template-update")
def template_update(session: nox.Session) -> None:
    """Take the template's later changes as a branch, ready for a PR: nox -s template-update [-- --to <ref>]."""
    _install(session)
    session.run("flightdelay", "template", "update", *session.posargs)


@nox.session(name="pr-report")
def pr_report(session: nox.Session) -> None:
    """Reproduce and compare with a base revision, as CI comments on a PR: nox -s pr-report -- --base origin/main."""
    _install(session)
    out = "build/pr-report"
    # Data the PR records but nobody pushed fails here, before anything is reproduced (PR_FROM_FORK: not checked).
    session.run("flightdelay", "check-pushed", f"--out={out}")
    session.run("flightdelay", "get-data")
    # A failing stage still gets a report (it says where the pipeline broke); the report then fails.
    session.run("flightdelay", "repro", f"--record={out}/pipeline.json", success_codes=[0, 1])
    session.run("flightdelay", "pr-report", f"--out={out}", *(session.posargs or ["--base=origin/main"]))


@nox.session
def release(session: nox.Session) -> None:
    """Register the gated model, build its Bento, smoke-test it, pin staging: nox -s release [-- --commit]."""
    _install(session, "test")  # the model tests run before anything is registered
    _pipeline(session)
    session.run("flightdelay", "release", *session.posargs)


@nox.session
def promote(session: nox.Session) -> None:
    """Promote what staging runs to production (or a version to staging): nox -s promote -- production [--commit]."""
    _install(session)
    session.run("flightdelay", "promote", *(session.posargs or ["production"]))


@nox.session(name="batch-predict")
def batch_predict(session: nox.Session) -> None:
    """Score a file of flights with a registered version: nox -s batch-predict -- --input F --output F [--version N]."""
    _install(session)
    session.run("flightdelay", "batch-predict", *session.posargs)


@nox.session
def history(session: nox.Session) -> None:
    """What ran where, from the git history of deploy/: nox -s history -- production [--json]."""
    _install(session)
    session.run("flightdelay", "history", *(session.posargs or ["production"]))


@nox.session
def rollback(session: nox.Session) -> None:
    """Put production back on the version it ran before: nox -s rollback -- production [--commit]."""
    _install(session)
    session.run("flightdelay", "rollback", *(session.posargs or ["production"]))


@nox.session
def monitor(session: nox.Session) -> None:
    """Drift and decay of a window against the training reference: nox -s monitor -- --month 2013-11 | --window LOG."""
    _install(session)
    _pipeline(session)
    session.run("flightdelay", "monitor", *(session.posargs or ["--month", "next"]))


@nox.session(name="push-cache")
def push_cache(session: nox.Session) -> None:
    """Push outputs and the DVC run-cache to the default remote (CI, after a reproduction)."""
    _install(session)
    session.run("flightdelay", "push-cache")


@nox.session
def containerize(session: nox.Session) -> None:
    """Containerize a built Bento with buildx and push it (GitHub Actions): nox -s containerize -- --bento TAG."""
    _install(session)
    session.run("flightdelay", "containerize", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """Golden requests against a deployed service: nox -s smoke -- --url URL --version N --bento TAG."""
    _install(session)
    session.run("flightdelay", "smoke", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks that print figures and assert nothing: nox -s bench [-- pipeline baselines serve batch]."""
    _install(session)
    _pipeline(session)
    names = session.posargs or ["pipeline", "baselines"]
    if "serve" in names:
        session.run("flightdelay", "bento-model")
    for name in names:
        session.run("python", f"benchmarks/{name}.py")
