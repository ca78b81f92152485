"""The release loop: register a gated model, package it as a Bento, smoke-test it, promote it, roll it back.

Every step names exactly one registered version; nothing is ever resolved as ``latest``. The steps
are separate so the workflows can put containerizing (Docker, only on GitHub) and approvals between
them; :func:`release` strings the local ones together for ``nox -s release``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flightdelay import deploy, registry, serving
from flightdelay.core import gate
from flightdelay.core.report import flatten
from flightdelay.io import bento, dvc, git, tracking
from flightdelay.io.files import read_parquet
from flightdelay.problem import PROBLEM
from flightdelay.settings import Params

GOLDEN_ROWS = 25
SMOKE_TAG = "smoke_staging"  # set on a version once its Bento answered the golden requests
PROMOTED_TAG = "{environment}_promoted_at"
ROLLED_BACK_TAG = "{environment}_rolled_back_at"
PIN_TAG = "{environment}_pin"
DEFAULT_IMAGE = "ghcr.io/your-org/flightdelay"


class ReleaseError(RuntimeError):
    """A step refused: the gate or the model tests failed, the smoke test failed, or the order is wrong."""


Say = Callable[[str], None]
Trailers = tuple[tuple[str, str], ...]  # (key, value) lines that end a pin commit's message
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")  # a GitHub login


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- 1. Register ---------------------------------------------------------------------------------


def model_tests(root: Path) -> None:
    """The behavioural model tests of the pipeline issue; :class:`ReleaseError` if any fails."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/model", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-15:])
        raise ReleaseError(
            f"the model tests failed (pytest tests/model exited {done.returncode}); not registered:\n{tail}"
        )


def golden_requests(root: Path, params: Params, rows: int = GOLDEN_ROWS) -> list[dict[str, Any]]:
    """Real rows of the test months as requests: the first ``rows`` that the request model accepts."""
    joined = read_parquet(root / params.paths.joined)
    periods = PROBLEM.period(joined)
    latest = sorted(periods.unique())[-params.split.test_months :]
    test = joined[periods.isin(latest)]
    model = PROBLEM.request_model()
    requests = []
    for record in test[list(PROBLEM.request_columns())].to_dict(orient="records"):
        cleaned = {str(k): _plain(v) for k, v in record.items()}
        try:
            requests.append(model.model_validate(cleaned).model_dump())
        except ValueError:
            continue
        if len(requests) == rows:
            break
    return requests


def _plain(value: Any) -> Any:
    """A JSON-ready Python value for a cell: NaN becomes None, numpy scalars become Python ones."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def register(root: Path, params: Params, say: Say, *, run_model_tests: bool = True) -> registry.Version:
    """Gate, model tests, then a new registered version with its lineage and the alias ``candidate``."""
    try:  # first: the model tests and the bundle unpickle it
        model_file = dvc.verify_output(root, "train", params.paths.model)
    except dvc.DvcError as exc:
        raise ReleaseError(f"not registered: {exc}") from exc
    metrics = {
        k: float(v)
        for k, v in flatten(json.loads((root / params.paths.metrics).read_text())).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    production = registry.by_alias("production")
    base = _run_metrics(production.run_id) if production else None
    verdict = gate.judge(params.gate, metrics, base)
    if not verdict.passed:
        raise ReleaseError("the quality gate failed; not registered: " + "; ".join(verdict.failures))
    against = f", against production {production.label}" if production else ""
    say(f"quality gate passed ({verdict.checked} checks{against})")
    if run_model_tests:
        model_tests(root)
        say("model tests passed")
    lineage = tracking.lineage(root) | _dvc_lineage(root, params) | {"model_sha256": tracking.sha256(model_file)}
    if lineage.get("git_dirty") == "true":
        files = ", ".join(git.modified(root)[:10])
        raise ReleaseError(f"uncommitted changes in {files}: commit them so the version names its code")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        serving.write_bundle(
            bundle, root / params.paths.model, root / params.paths.raw, root / params.paths.metrics, lineage
        )
        flights = golden_requests(root, params)
        probabilities, _ = serving.Predictor.load(bundle).predict(flights)
        golden = {"flights": flights, "delay_probability": [float(p) for p in probabilities]}
        version = registry.register(bundle, golden, params=_flat_params(params), metrics=metrics, lineage=lineage)
    say(f"registered {version.label} (alias candidate), run {version.run_id}, commit {lineage['git_commit'][:12]}")
    return version


def _run_metrics(run_id: str) -> dict[str, float]:
    import mlflow

    return dict(mlflow.get_run(run_id).data.metrics)


def _flat_params(params: Params) -> dict[str, object]:
    return flatten(params.model_dump(mode="json"))


def _dvc_lineage(root: Path, params: Params) -> dict[str, str]:
    """The DVC run that made the model: the train stage's command and dependency hashes as dvc.lock records them."""
    import hashlib

    import yaml

    lock = yaml.safe_load((root / "dvc.lock").read_text())
    train = lock["stages"]["train"]
    model = next(o for o in train["outs"] if o["path"] == str(params.paths.model))
    deps = json.dumps(train["deps"], sort_keys=True).encode()
    return {
        "dvc_train_deps_sha256": hashlib.sha256(deps).hexdigest(),
        "dvc_model_md5": str(model["md5"]),
        "dvc_lock_sha256": hashlib.sha256((root / "dvc.lock").read_bytes()).hexdigest(),
    }


# --- 2. Package ----------------------------------------------------------------------------------


def package(root: Path, version: registry.Version, say: Say) -> str:
    """Build the Bento of exactly ``version`` from the registry; return its tag ``flightdelay:v<N>-<commit>``."""
    import bentoml

    commit = version.tags.get("git_commit")
    if not commit:
        raise ReleaseError(f"{version.label} has no git_commit tag; was it registered by `flightdelay register`?")
    bento_version = deploy.Pin.bento_version(version.number, commit)
    model_tag = f"{registry.MODEL_NAME}:v{version.number}-{commit[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            bundle = registry.verified_bundle(version, Path(tmp))
        except registry.RegistryError as exc:
            raise ReleaseError(f"{exc}: not building a Bento from it") from exc
        golden = registry.golden(version)
        metadata = json.loads((bundle / serving.METADATA_FILE).read_text())
        try:
            existing = bentoml.models.get(model_tag)
        except bentoml.exceptions.NotFound:
            bento.store_bundle(model_tag, bundle, metadata)
        else:
            if existing.info.metadata.get("model_sha256") != metadata.get("model_sha256"):
                raise ReleaseError(f"the BentoML store already holds a different {model_tag}; delete it first")
    (root / bento.TAG_PIN).write_text(f"{model_tag}\n")
    (root / bento.GOLDEN).write_text(json.dumps(golden, indent=1) + "\n")
    try:
        bento.write_requirements(root, root / "src" / "requirements.txt")
    except RuntimeError as exc:
        raise ReleaseError(str(exc)) from exc
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bentoml",
            "build",
            "-f",
            "bentofile.yaml",
            "src",
            "--version",
            bento_version,
            "--label",
            f"model_version={version.number}",
            "--label",
            f"git_commit={commit}",
            "--output",
            "tag",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ReleaseError(f"bentoml build failed:\n{done.stdout}\n{done.stderr}")
    tag = f"{deploy.BENTO_NAME}:{bento_version}"
    say(f"built Bento {tag} from {version.label} (model {model_tag})")
    return tag


# --- 3. Smoke test -------------------------------------------------------------------------------


def smoke(url: str, version: registry.Version, bento_tag: str | None, say: Say) -> None:
    """Readiness, then the golden requests: same probabilities as at registration, same model version."""
    import httpx

    golden = registry.golden(version)
    with httpx.Client(base_url=url, timeout=30) as client:
        try:
            ready = client.get("/readyz")
        except httpx.HTTPError as exc:
            raise ReleaseError(f"smoke test: {url} is unreachable: {exc}") from exc
        if ready.status_code != 200:
            raise ReleaseError(f"smoke test: {url}/readyz answered {ready.status_code}")
        answer = client.post("/predict_batch", json={"flights": golden["flights"]})
    if answer.status_code != 200:
        raise ReleaseError(f"smoke test: /predict_batch answered {answer.status_code}: {answer.text[:500]}")
    predictions = answer.json()
    problems = []
    for index, (got, expected) in enumerate(zip(predictions, golden["delay_probability"], strict=True)):
        if abs(got["delay_probability"] - expected) > 1e-9:
            problems.append(f"flight {index}: {got['delay_probability']!r}, recorded {expected!r}")
        if not got["model_version"].startswith(f"v{version.number}-"):
            problems.append(f"flight {index}: served by model version {got['model_version']!r}, not v{version.number}")
        if bento_tag and got["bento_tag"] != bento_tag:
            problems.append(f"flight {index}: served by Bento {got['bento_tag']!r}, not {bento_tag!r}")
    if problems:
        raise ReleaseError(f"smoke test against {url} failed for {version.label}: " + "; ".join(problems[:5]))
    say(f"smoke test passed: {url} is ready and answered {len(predictions)} golden requests as recorded")


def wait_for_version(
    url: str, number: str, flight: dict[str, Any], say: Say, *, timeout: float, every: float = 10
) -> None:
    """Wait (at most ``timeout`` seconds) until the service at ``url`` answers ``flight`` with model version ``number``.

    A deployed environment changes only once Argo CD or Flux has synced the pin and the new pods are
    ready; until then the old version answers, or nothing does.
    """
    import httpx

    deadline = time.monotonic() + timeout
    seen = "no answer"
    while True:
        try:
            answer = httpx.post(f"{url.rstrip('/')}/predict_batch", json={"flights": [flight]}, timeout=10)
            if answer.status_code == 200:
                seen = str(answer.json()[0].get("model_version"))
                if seen.startswith(f"v{number}-"):
                    say(f"{url} serves model version v{number}")
                    return
            else:
                seen = f"HTTP {answer.status_code}"
        except (httpx.HTTPError, ValueError, IndexError, AttributeError) as exc:
            seen = f"{type(exc).__name__}: {exc}"
        if time.monotonic() + every > deadline:
            raise ReleaseError(
                f"{url} still does not serve model version v{number} after {timeout:.0f} s (last: {seen})"
            )
        time.sleep(every)


def record_smoke(version: registry.Version, bento_tag: str, url: str) -> None:
    registry.set_tags(
        version,
        {SMOKE_TAG: "passed", f"{SMOKE_TAG}_bento": bento_tag, f"{SMOKE_TAG}_url": url, f"{SMOKE_TAG}_at": _now()},
    )


# --- 4-6. Promote and roll back ------------------------------------------------------------------


def promote(
    root: Path,
    environment: str,
    *,
    version_number: str | None = None,
    bento_tag: str | None = None,
    image: str | None = None,
    digest: str | None = None,
) -> Move:
    """Decide what pinning ``environment`` to a version means; :func:`apply` carries it out.

    Staging takes a freshly built Bento (the candidate by default). The challenger takes exactly what
    staging runs, and only once that passed the smoke test; so does production, unless its strategy
    compares it with the challenger (shadow, A/B): then production takes what the challenger runs, the
    version the comparison was about.
    """
    current = deploy.read_pin(root, environment)  # an inconsistent pin stops here, before anything changes
    if environment == "staging":
        version = registry.get(version_number) if version_number else registry.by_alias("candidate")
        if version is None:
            raise ReleaseError("no candidate version in the registry: run `flightdelay register` first")
        commit = version.tags["git_commit"]
        tag = bento_tag or f"{deploy.BENTO_NAME}:{deploy.Pin.bento_version(version.number, commit)}"
        pin = deploy.Pin(
            image=image or os.environ.get("FLIGHTDELAY_IMAGE", DEFAULT_IMAGE),
            tag=tag.partition(":")[2],
            digest=digest,
            bento_tag=tag,
            model_name=version.name,
            model_version=version.number,
            git_commit=commit,
            data_hash=version.tags.get("data_dvc_md5", "unknown"),
        )
    else:
        source = "challenger" if environment == "production" and _compares(root) else "staging"
        staged = deploy.read_pin(root, source)
        if staged is None:
            raise ReleaseError(f"{source} runs nothing yet: promote to {source} first")
        if version_number and version_number != staged.model_version:
            raise ReleaseError(
                f"{registry.MODEL_NAME} v{version_number} is not what {source} runs (v{staged.model_version}); "
                f"promote it to {source} first"
            )
        version = registry.get(staged.model_version)
        if version.tags.get(SMOKE_TAG) != "passed" or version.tags.get(f"{SMOKE_TAG}_bento") != staged.bento_tag:
            raise ReleaseError(
                f"{version.label} ({staged.bento_tag}) has not passed the staging smoke test; "
                f"refusing to promote it to {environment}"
            )
        pin = staged
    _check_alias(root, environment, current)
    tags = {
        PROMOTED_TAG.format(environment=environment): _now(),
        PIN_TAG.format(environment=environment): json.dumps(pin.as_dict()),
    }
    return Move(environment, version, pin, "deploy", ((version.number, tags),), f"promoted {version.label}")


def _compares(root: Path) -> bool:
    """Whether production's strategy compares it with the challenger (shadow or A/B)."""
    return deploy.strategy_of(root / "deploy" / "production") in deploy.CHALLENGED


def _check_alias(root: Path, environment: str, current: deploy.Pin | None) -> None:
    """The overlay and the registry must agree on what runs before either is changed."""
    holder = registry.by_alias(environment)
    pinned = current.model_version if current else None
    held = holder.number if holder else None
    if pinned != held:
        raise ReleaseError(
            f"deploy/{environment} pins v{pinned} but the registry's alias {environment} is on v{held}; "
            "fix whichever was changed by hand before promoting or rolling back"
        )


def rollback(root: Path, environment: str, *, image: str | None = None) -> Move:
    """Decide how to put ``environment`` back on the pin it ran before the current one.

    The pin comes from the git history of the environment's overlay (what really ran, reviewed
    commit by commit), never from a registry tag anyone with registry access could edit. A version
    that was rolled back from is skipped unless it was deployed again afterwards; a pin whose image
    lies outside the configured repository is refused.
    """
    current = deploy.read_pin(root, environment)
    if current is None:
        raise ReleaseError(f"{environment} runs nothing yet: there is nothing to roll back")
    _check_alias(root, environment, current)
    changes = deploy.history(root, environment)
    skip = {current.model_version}
    previous = None
    for newer, change in itertools.pairwise(changes):
        if change.pin is None:
            break  # before the first release
        if newer.action == "rollback":
            skip.add(change.pin.model_version)  # the version this rollback left
        elif change.pin.model_version not in skip:
            previous = change.pin
            break
    if previous is None:
        raise ReleaseError(f"no earlier version ran in {environment} (git log of its overlay): nothing to roll back to")
    repository = image or os.environ.get("FLIGHTDELAY_IMAGE", DEFAULT_IMAGE)
    if previous.image != repository:
        raise ReleaseError(
            f"the earlier pin of {environment} names the image {previous.image}, outside the configured repository "
            f"{repository} (FLIGHTDELAY_IMAGE); refusing to deploy it"
        )
    version = registry.get(previous.model_version)
    summary = f"rolled {environment} back from v{current.model_version} to {version.label}"
    tags = {ROLLED_BACK_TAG.format(environment=environment): _now()}
    return Move(environment, version, previous, "rollback", ((current.model_version, tags),), summary)


@dataclass(frozen=True)
class Move:
    """A decided change of what an environment runs: the pin, then the registry's side of it."""

    environment: str
    version: registry.Version  # its alias ``environment`` follows the pin
    pin: deploy.Pin
    action: str  # "deploy" or "rollback": the commit message's verb
    tags: tuple[tuple[str, dict[str, str]], ...]  # (version number, tags) recorded once the pin has landed
    summary: str


def apply(
    root: Path,
    move: Move,
    say: Say,
    *,
    commit: bool = False,
    push: str | None = None,
    trailers: Trailers = (),
) -> deploy.Pin:
    """Write the pin; commit it (and push it to ``push``, a git remote); only then move the alias and record the tags.

    The registry follows git, never the other way round: when the push is refused for good, the alias
    stays where the pin on ``main`` says, and the next promote or rollback finds them agreeing.
    ``trailers`` (see :func:`provenance`) end the commit message, for ``flightdelay history``.
    """
    path = deploy.write_pin(root, move.environment, move.pin)
    say(f"{move.summary}: {move.pin.describe()}")
    say(f"wrote {path.relative_to(root)}")
    if commit or push:
        say(f"committed {commit_pin(root, move.environment, move.pin, move.action, trailers)}")
    if push:
        try:
            landed = git.push_rebased(root, push, "main")
        except git.GitError as exc:
            raise ReleaseError(f"the pin did not reach {push}/main, so the registry was left as it was: {exc}") from exc
        say(f"pushed to {push}/main: {landed}")
    registry.set_alias(move.version, move.environment)
    for number, tags in move.tags:
        registry.set_tags(registry.get(number), tags)
    say(f"alias {move.environment} -> v{move.version.number}")
    return move.pin


def commit_pin(root: Path, environment: str, pin: deploy.Pin, action: str = "deploy", trailers: Trailers = ()) -> str:
    """Commit the environment's overlay alone (deployment is a commit); return "<hash>: <message>"."""
    path = str(deploy.overlay(root, environment).relative_to(root))
    subject = f"{action}({environment}): {pin.model_name} v{pin.model_version} ({pin.bento_tag})"
    message = subject + ("\n\n" + "\n".join(f"{key}: {value}" for key, value in trailers) if trailers else "")
    try:
        git.git(root, "add", path)
        git.git(root, "commit", "-m", message, "--", path)
        head = git.rev_parse(root, "HEAD")
    except git.GitError as exc:
        raise ReleaseError(str(exc)) from exc
    return f"{head[:12]}: {subject}"


def provenance(environment: str, *, approvals: bool = False) -> Trailers:
    """The trailers of a pin commit made by a workflow: its run, and who approved the environment for it.

    Actions sets ``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY`` and ``GITHUB_RUN_ID``; outside a workflow
    there is no run to name. With ``approvals``, the run's approvals of ``environment`` (the required
    reviewers' decisions) are read from GitHub's API, and a run nobody approved is refused: the trail
    must not say "no approval" for a deployment that needed one. The challenger takes live traffic
    beside production, so the ``production`` environment's reviewers gate it too.
    """
    gate = "production" if environment == "challenger" else environment
    server, repository, run_id = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    found: list[tuple[str, str]] = []
    if approvals:
        if not (repository and run_id):
            raise ReleaseError("--record-approvals needs GITHUB_REPOSITORY and GITHUB_RUN_ID (a workflow run)")
        from flightdelay.io import github

        try:
            logins = github.Client.from_environment().approvals(int(run_id), gate)
        except (github.GitHubError, ValueError) as exc:
            raise ReleaseError(f"could not read who approved run {run_id} for {gate}: {exc}") from exc
        odd = [login for login in logins if not _LOGIN.match(login)]
        if odd:
            raise ReleaseError(f"the API named approvers that are not GitHub logins: {odd!r}")
        if not logins:
            raise ReleaseError(
                f"nobody approved run {run_id} for {gate}: give the environment required reviewers "
                "(Settings -> Environments), or drop --record-approvals"
            )
        found += [("Approved-by", login) for login in logins]
    if server and repository and run_id:
        found.append(("Run", f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"))
    return tuple(found)


def smoke_built(version: registry.Version, bento_tag: str, say: Say) -> str:
    """Serve the built Bento on loopback and smoke-test it; return the URL it was served at."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the Bento's code, not a checkout's
        env["FLIGHTDELAY_PREDICTION_LOG"] = str(Path(tmp) / "predictions.jsonl")
        with bento.running(bento_tag, cwd=Path(tmp), env=env, output=Path(tmp) / "serve.log") as url:
            smoke(url, version, bento_tag, say)
    return url


@dataclass(frozen=True)
class Released:
    version: registry.Version
    bento_tag: str
    pin: deploy.Pin | None


def release(
    root: Path,
    params: Params,
    say: Say,
    *,
    image: str | None = None,
    pin: bool = True,
    commit: bool = False,
    push: str | None = None,
    trailers: Trailers = (),
) -> Released:
    """The local chain: register, package, serve the built Bento on loopback, smoke-test it, pin staging.

    With ``pin=False`` it stops before the pin, for CI to containerize in between.
    """
    version = register(root, params, say)
    tag = package(root, version, say)
    record_smoke(version, tag, smoke_built(version, tag, say))
    staged = None
    if pin:
        move = promote(root, "staging", version_number=version.number, bento_tag=tag, image=image)
        staged = apply(root, move, say, commit=commit, push=push, trailers=trailers)
    return Released(registry.get(version.number), tag, staged)


# --- 3. Containerize (GitHub Actions only: no Docker engine runs elsewhere) ----------------------


def containerize_command(bento_tag: str, image: str, metadata_file: Path) -> list[str]:
    """``bentoml containerize`` with buildx: push to ``image:<bento version>``, layers cached in the image repository.

    The cache is ``image:buildcache`` (a registry cache), not the Actions cache: ``type=gha`` needs the
    runtime token that Actions gives to JavaScript actions only, never to a ``run:`` step like this one.
    """
    version = bento_tag.partition(":")[2]
    if not version:
        raise ReleaseError(f"{bento_tag!r} is not a Bento tag (name:version)")
    cache = f"type=registry,ref={image}:buildcache"
    return [
        *(sys.executable, "-m", "bentoml", "containerize", bento_tag, "--backend", "buildx"),
        *("--image-tag", f"{image}:{version}"),
        *("--opt", "push", "--opt", f"cache-from={cache}", "--opt", f"cache-to={cache},mode=max"),
        *("--opt", f"metadata-file={metadata_file}"),
    ]


def pushed_digest(metadata_file: Path) -> str:
    """The pushed image's digest from buildx's metadata file; :class:`ReleaseError` if it has none."""
    try:
        digest = json.loads(metadata_file.read_text()).get("containerimage.digest")
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read the build metadata {metadata_file}: {exc}") from exc
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise ReleaseError(f"{metadata_file} records no pushed image digest (containerimage.digest)")
    return digest
