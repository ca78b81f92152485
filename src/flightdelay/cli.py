"""The project's commands that are not DVC stages: ``flightdelay --help``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from flightdelay import template

if TYPE_CHECKING:
    from flightdelay.core.windows import History

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(template.app, name="template")

_POINTER = Path("data.dvc")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("get-data")
def get_data(
    pointer: Annotated[Path, typer.Option(help="the .dvc file that records the raw data")] = _POINTER,
) -> None:
    """Bring the raw data into place: dvc pull from the default remote, or write the sample and check it.

    Without the .dvc file (a new problem), write the sample's first months to paths.raw and record them in it.
    """
    from flightdelay import settings
    from flightdelay.io import dvc

    try:
        raw = settings.load().paths.raw
        typer.echo(dvc.get_data(Path.cwd(), pointer, raw))
    except (dvc.DvcError, settings.ParamsError, RuntimeError) as exc:
        _fail(str(exc))


def sample_period(text: str) -> int:
    """A month of the sample as YYYYMM: ``2013-11``, or ``11`` for the sample's only November."""
    from flightdelay.interface import parse_period, period_label
    from flightdelay.problem import PROBLEM

    periods = PROBLEM.sample_periods()
    if text.isdigit():
        matching = [p for p in periods if p % 100 == int(text)]
        if len(matching) != 1:
            raise ValueError(f"{text!r}: the sample has {len(matching)} months numbered {text}; give it as YYYY-MM")
        return matching[0]
    period = parse_period(text)
    if period not in periods:
        raise ValueError(f"{text!r}: the sample holds {period_label(periods[0])} to {period_label(periods[-1])}")
    return period


@app.command("sample-db")
def sample_db(
    url: Annotated[
        str,
        typer.Option(
            envvar="FLIGHTDELAY_SAMPLE_DB_URL",
            help="SQLAlchemy URL of the database to load, e.g. postgresql+psycopg://user:password@host/db",
        ),
    ],
    replace: Annotated[bool, typer.Option(help="overwrite tables of the same names")] = False,
) -> None:
    """Load the sample's database tables (what the raw data's snapshots query) into the database at --url.

    To try the PostgreSQL source: load a database with this, point DVC's `sample` connection at it in
    .dvc/config.local, and `dvc update` the snapshots (see the README's "A database source").
    """
    from flightdelay.io import database
    from flightdelay.problem import PROBLEM

    tables = PROBLEM.sample_database()
    if not tables:
        _fail("this problem's raw data has no database snapshots: there is nothing to load")
    try:
        loaded = database.load_tables(url, tables, replace=replace)
    except database.DatabaseError as exc:
        _fail(str(exc))
    typer.echo(f"loaded {', '.join(loaded)} into {database.shown(url)}")


@app.command("add-month")
def add_month(
    month: Annotated[str, typer.Argument(help="a month of the sample to add: 2013-11, or 11 for short")],
    pointer: Annotated[Path, typer.Option(help="the .dvc file that records the raw data")] = _POINTER,
) -> None:
    """Add a held-back month of the sample to data/raw and record it in data.dvc (the 'data PR')."""
    from flightdelay.io import dvc

    try:
        written = dvc.add_month(Path.cwd(), pointer, sample_period(month))
    except (dvc.DvcError, ValueError) as exc:
        _fail(str(exc))
        return
    for path in written:
        typer.echo(f"added {path}")
    typer.echo(f"updated {pointer}; next: dvc repro, then git add {pointer} dvc.lock reports && git commit")


@app.command()
def tune(
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
    budget: Annotated[float | None, typer.Option(help="seconds to search (default: tune.budget_seconds)")] = None,
) -> None:
    """Search tune.space on the featurized data; print the best params and how to adopt them."""
    from flightdelay import settings
    from flightdelay import tune as tuning
    from flightdelay.io import tracking
    from flightdelay.io.files import read_parquet
    from flightdelay.stages.train import training_rows

    try:
        params = settings.load(params_file)
        if budget is not None:
            params = params.model_copy(update={"tune": params.tune.model_copy(update={"budget_seconds": budget})})
        # The rows the train stage fits on (a sample past train.max_rows), so a trial is what training would do.
        train = training_rows(params.paths.train, params.train.max_rows, params.train.random_state)
        valid = read_parquet(params.paths.valid)
    except (settings.ParamsError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    tracking.configure(Path.cwd())
    trials = tuning.search(params, train, valid)
    for line in tuning.summary(trials, params.train.hist_gradient_boosting.model_dump()):
        typer.echo(line)


@app.command("log-evaluation")
def log_evaluation(
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
) -> None:
    """Give the current model's MLflow run the evaluation dvc.lock records, when DVC skipped evaluate.

    In a fresh clone `dvc repro` retrains (the model is not in git) but skips evaluate: its inputs hash as
    recorded and its outputs are committed. Those outputs are this model's evaluation (dvc.lock ties them to
    the model's hash), so they belong on the run that trained it; `nox -s pipeline` logs them after repro.
    """
    from flightdelay import settings
    from flightdelay.io import dvc, tracking

    root = Path.cwd()
    try:
        params = settings.load(params_file)
        model = dvc.verify_output(root, "train", params.paths.model)
        reports = [dvc.verify_output(root, "evaluate", p) for p in (params.paths.metrics, params.paths.slices)]
    except (settings.ParamsError, dvc.DvcError) as exc:
        _fail(str(exc))
        return
    if not dvc.up_to_date(root, "evaluate"):
        _fail("evaluate is not up to date with its inputs (`dvc status evaluate`): run `dvc repro` first")
        return
    tracking.configure(root)
    metrics, slices = (json.loads(p.read_text()) for p in reports)
    run_id, logged = tracking.log_evaluation(root, model, metrics, slices, if_missing=True)
    done = "logged the evaluation recorded in dvc.lock to" if logged else "already has its evaluation:"
    typer.echo(f"MLflow run {run_id} {done} test ROC AUC {metrics['test']['roc_auc']:.4f}")


@app.command("bento-model")
def bento_model(
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
) -> None:
    """Save the pipeline's model, reference tables and threshold to the BentoML model store; pin its tag."""
    from flightdelay import settings
    from flightdelay.io import bento

    params = settings.load(params_file)
    tag = bento.save_model(Path.cwd(), params)
    pins = bento.write_requirements(Path.cwd(), Path("src/requirements.txt"))
    Path(bento.TAG_PIN).write_text(f"{tag}\n")
    typer.echo(f"{tag} (pinned in {bento.TAG_PIN}; {pins} packages in src/requirements.txt)")


_PR_OUT = Path("build/pr-report")


@app.command()
def repro(
    record: Annotated[Path, typer.Option(help="where to record which stages ran")] = _PR_OUT / "pipeline.json",
) -> None:
    """dvc repro, recording which stages ran, were skipped or restored, for the PR report."""
    from flightdelay import pr_report

    run = pr_report.repro(Path.cwd(), record)
    if not run.ok:
        raise typer.Exit(1)


@app.command("check-pushed")
def check_pushed(
    out: Annotated[Path, typer.Option(help="where a failing report.md is written for the PR comment")] = _PR_OUT,
    from_fork: Annotated[
        bool, typer.Option("--from-fork", envvar="PR_FROM_FORK", help="a fork's PR: the remote is not readable")
    ] = False,
) -> None:
    """Before anything is reproduced: the data every .dvc file records must be in the default DVC remote."""
    from flightdelay import pr_report
    from flightdelay.io import dvc

    if from_fork:
        typer.echo("check-pushed: not checked, a fork's PR cannot read the DVC remote (the release pulls it all)")
        return
    remote = dvc.default_remote(Path.cwd())
    if remote is None:
        typer.echo("check-pushed: no default DVC remote is configured, nothing to check")
        return
    try:
        targets = dvc.pointers(Path.cwd())
        missing = dvc.unpushed(Path.cwd(), targets, remote)
    except dvc.DvcError as exc:
        _fail(str(exc))
    if not missing:
        typer.echo(f"check-pushed: the remote holds all that {', '.join(map(str, targets))} record")
        return
    document = pr_report.unpushed_report(missing, remote)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(document)
    typer.echo(document, nl=False)
    raise typer.Exit(1)


@app.command("pr-report")
def pr_report_command(
    base: Annotated[str, typer.Option(help="the PR's target branch or any revision, e.g. origin/main")],
    out: Annotated[Path, typer.Option(help="directory for report.md and the plots")] = _PR_OUT,
    run_url: Annotated[str | None, typer.Option(envvar="PR_REPORT_RUN_URL", help="link to the CI run")] = None,
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
) -> None:
    """Compare the working tree with the merge base of BASE: print the report, write it, exit 1 if the gate fails."""
    from flightdelay import pr_report, settings
    from flightdelay.io.git import GitError

    try:
        params = settings.load(params_file)
        document, passed = pr_report.build(
            Path.cwd(), params, base, out, pipeline=pr_report.load_pipeline(out / "pipeline.json"), run_url=run_url
        )
    except (settings.ParamsError, GitError) as exc:
        _fail(str(exc))
        return
    typer.echo(document)
    typer.echo(f"written to {out / 'report.md'}", err=True)
    if not passed:
        raise typer.Exit(1)


# --- The release loop: each command talks to the registry (MLFLOW_TRACKING_URI, or a local server) --

_Version = Annotated[str | None, typer.Option("--version", help="registered model version (default: the candidate)")]
_Commit = Annotated[
    bool, typer.Option("--commit/--no-commit", help="commit the overlay change (deployment is a commit)")
]
_Push = Annotated[
    str | None,
    typer.Option(
        "--push",
        metavar="REMOTE",
        help="commit and push the pin to REMOTE's main (rebasing when main moved); the alias moves only once it landed",
    ),
]

_Approvals = Annotated[
    bool,
    typer.Option(
        "--record-approvals",
        help="in a workflow run: read who approved the run's environment from GitHub's API and record them in the "
        "pin commit (Approved-by trailers); refuse when nobody did",
    ),
]


@contextmanager
def _release_errors() -> Iterator[None]:
    """Run a release step against the registry; its refusals become one clear error line and exit 1."""
    from flightdelay import deploy, registry, release

    try:
        with registry.connect(Path.cwd()):
            yield
    except (release.ReleaseError, registry.RegistryError, deploy.DeployError) as exc:
        _fail(str(exc))


def _version(number: str | None) -> Any:
    from flightdelay import registry, release

    version = registry.get(number) if number else registry.by_alias("candidate")
    if version is None:
        raise release.ReleaseError("no candidate version in the registry: run `flightdelay register` first")
    return version


@app.command()
def register(
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
) -> None:
    """Gate and model-test the pipeline's model, then register it with its lineage as the new candidate."""
    from flightdelay import release, settings

    with _release_errors():
        version = release.register(Path.cwd(), settings.load(params_file), typer.echo)
        typer.echo(version.number)


@app.command()
def package(version: _Version = None) -> None:
    """Build the Bento of one registered version (never `latest`); print its tag."""
    from flightdelay import release

    with _release_errors():
        typer.echo(release.package(Path.cwd(), _version(version), lambda line: typer.echo(line, err=True)))


@app.command()
def smoke(
    version: _Version = None,
    url: Annotated[str | None, typer.Option(help="the deployed service, e.g. the staging endpoint")] = None,
    bento_tag: Annotated[
        str | None, typer.Option("--bento", help="the Bento under test; served on loopback when no --url")
    ] = None,
    record: Annotated[bool, typer.Option(help="record the pass on the version (production requires it)")] = True,
    wait: Annotated[
        float, typer.Option(help="with --url: seconds to wait for the deployment to serve the version first", min=0)
    ] = 0,
) -> None:
    """Readiness and the golden requests against a deployed service or a Bento served on loopback."""
    from flightdelay import registry, release

    with _release_errors():
        chosen = _version(version)
        if url:
            if wait:
                flight = registry.golden(chosen)["flights"][0]
                release.wait_for_version(url, chosen.number, flight, typer.echo, timeout=wait)
            release.smoke(url, chosen, bento_tag, typer.echo)
            tested = bento_tag or "unknown"
        elif bento_tag:
            url = release.smoke_built(chosen, bento_tag, typer.echo)
            tested = bento_tag
        else:
            raise release.ReleaseError("give --url (a deployed service) or --bento (to serve on loopback)")
        if record:
            release.record_smoke(chosen, tested, url)


@app.command()
def promote(
    environment: Annotated[str, typer.Argument(help="staging, production or challenger")],
    *,
    version: _Version = None,
    bento_tag: Annotated[str | None, typer.Option("--bento", help="staging: the Bento built for the version")] = None,
    image: Annotated[str | None, typer.Option(help="staging: image repository (default $FLIGHTDELAY_IMAGE)")] = None,
    digest: Annotated[str | None, typer.Option(help="staging: the pushed image's digest, sha256:...")] = None,
    commit: _Commit = False,
    push: _Push = None,
    record_approvals: _Approvals = False,
) -> None:
    """Pin an environment to a version and move its alias; production takes only what passed staging."""
    from flightdelay import release

    with _release_errors():
        trailers = release.provenance(environment, approvals=record_approvals)
        move = release.promote(
            Path.cwd(), environment, version_number=version, bento_tag=bento_tag, image=image, digest=digest
        )
        release.apply(Path.cwd(), move, typer.echo, commit=commit, push=push, trailers=trailers)


@app.command()
def rollback(
    environment: Annotated[str, typer.Argument(help="staging, production or challenger")] = "production",
    commit: _Commit = False,
    push: _Push = None,
    record_approvals: _Approvals = False,
) -> None:
    """Put an environment back on the version promoted there before the current one."""
    from flightdelay import release

    with _release_errors():
        trailers = release.provenance(environment, approvals=record_approvals)
        move = release.rollback(Path.cwd(), environment)
        release.apply(Path.cwd(), move, typer.echo, commit=commit, push=push, trailers=trailers)


@app.command("release")
def release_command(
    *,
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
    image: Annotated[str | None, typer.Option(help="image repository for the pin (default $FLIGHTDELAY_IMAGE)")] = None,
    pin: Annotated[bool, typer.Option("--pin/--no-pin", help="pin staging at the end (CI containerizes first)")] = True,
    record: Annotated[Path | None, typer.Option(help="write the version and Bento tag here, as JSON")] = None,
    commit: _Commit = False,
    push: _Push = None,
) -> None:
    """The local release: register, build the Bento, serve it on loopback, smoke-test it, pin staging."""
    from flightdelay import release, settings
    from flightdelay.io.files import write_json

    with _release_errors():
        done = release.release(
            Path.cwd(),
            settings.load(params_file),
            typer.echo,
            image=image,
            pin=pin,
            commit=commit,
            push=push,
            trailers=release.provenance("staging"),
        )
        if record:
            write_json(record, {"version": done.version.number, "bento_tag": done.bento_tag})


@app.command()
def containerize(
    bento_tag: Annotated[str, typer.Option("--bento", help="the Bento to containerize")],
    image: Annotated[str, typer.Option(envvar="FLIGHTDELAY_IMAGE", help="image repository, e.g. ghcr.io/org/repo")],
    metadata: Annotated[Path, typer.Option(help="buildx metadata file")] = Path("build/release/image.json"),
) -> None:
    """Containerize the Bento with buildx, push it, print its digest (GitHub Actions: Docker runs there)."""
    import subprocess

    from flightdelay import release

    try:
        metadata.parent.mkdir(parents=True, exist_ok=True)
        command = release.containerize_command(bento_tag, image, metadata)
        if subprocess.run(command, check=False).returncode != 0:
            raise release.ReleaseError(f"bentoml containerize {bento_tag} failed")
        typer.echo(release.pushed_digest(metadata))
    except release.ReleaseError as exc:
        _fail(str(exc))


@app.command()
def history(
    environment: Annotated[str, typer.Argument(help="staging, production or challenger")] = "production",
    *,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document, newest first")] = False,
) -> None:
    """What ran where: each pin of the environment from when to when, how it got there and who approved it.

    Read from the git history of deploy/<environment> (fetch the whole history: a shallow clone has one commit).
    """
    import json

    from flightdelay import deploy

    try:
        stints = deploy.stints(deploy.history(Path.cwd(), environment))
    except deploy.DeployError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"environment": environment, "stints": [s.as_dict() for s in stints]}, indent=2))
        return
    if not stints:
        typer.echo(f"{environment}: nothing was ever pinned (git log of deploy/{environment}/kustomization.yaml)")
        return
    rollbacks = sum(s.change.action == "rollback" for s in stints)
    typer.echo(f"{environment}: {len(stints)} pins, {rollbacks} of them rollbacks, newest first")
    for stint in stints:
        typer.echo("\n".join(stint.lines()))


@app.command("deploy-check")
def deploy_check() -> None:
    """Validate the overlays (Kubernetes schemas, pin consistency), the Prometheus rules and the base image pin."""
    from flightdelay import deploy

    failed = False
    for environment in deploy.ENVIRONMENTS:
        try:
            pin = deploy.read_pin(Path.cwd(), environment)
            manifests = deploy.render(Path.cwd() / "deploy" / environment)
        except deploy.DeployError as exc:
            typer.echo(f"{environment}: {exc}", err=True)
            failed = True
            continue
        problems = deploy.validate(manifests)
        for problem in problems:
            typer.echo(f"{environment}: {problem}", err=True)
        failed = failed or bool(problems)
        state = pin.describe() if pin else "no release yet"
        typer.echo(f"{environment}: {len(manifests)} manifests valid; {state}" if not problems else "")
    failed = _check_strategies(Path.cwd()) or failed
    monitoring = deploy.monitoring_problems(Path.cwd())
    for problem in monitoring:
        typer.echo(f"monitoring: {problem}", err=True)
    if not monitoring:
        typer.echo("monitoring: alert rules and scrape configuration valid")
    image = deploy.base_image_problems(Path.cwd())
    for problem in image:
        typer.echo(problem, err=True)
    if not image:
        typer.echo("bentofile.yaml: base image pinned by digest")
    if failed or monitoring or image:
        raise typer.Exit(1)


def _check_strategies(root: Path) -> bool:
    """Every strategy the production overlay could choose, rendered and validated as if it did; True if any fails."""
    from flightdelay import deploy

    production = root / "deploy" / "production"
    try:
        chosen = deploy.strategy_of(production)
    except deploy.DeployError as exc:
        typer.echo(f"production: {exc}", err=True)
        return True
    try:
        challenger = deploy.render(root / "deploy" / "challenger")
    except deploy.DeployError:
        challenger = []  # named with the overlays
    failed = False
    for strategy in deploy.strategies(root) if chosen else []:
        try:
            manifests = deploy.render(production, strategy=strategy)
            problems = [
                *deploy.validate(manifests),
                *deploy.example_problems(manifests),
                *deploy.challenger_problems(manifests, challenger),
            ]
        except deploy.DeployError as exc:
            problems = [str(exc)]
        for problem in problems:
            typer.echo(f"production with strategy {strategy}: {problem}", err=True)
        failed = failed or bool(problems)
        mark = " (chosen)" if strategy == chosen else ""
        typer.echo(f"production with strategy {strategy}{mark}: valid" if not problems else "")
    return failed


@app.command()
def monitor(
    *,
    month: Annotated[str | None, typer.Option(help="a month of the sample as the window, e.g. 2013-11")] = None,
    window: Annotated[Path | None, typer.Option(help="the service's prediction log (JSON lines) as the window")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="labels that arrived later: request_id and the outcome (arr_delay)")
    ] = None,
    out: Annotated[Path, typer.Option(help="directory for report.html, summary.json, digest.md")] = Path(
        "build/monitor"
    ),
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
    fail_on_drift: Annotated[bool, typer.Option(help="exit 3 when retraining is recommended")] = False,
    propose: Annotated[
        bool,
        typer.Option(
            help="on drift or decay: open/update the retraining PR and the monitor issue (GitHub); on a shadow or "
            "A/B verdict that calls for a decision: the monitor issue"
        ),
    ] = False,
    base: Annotated[str, typer.Option(help="the branch the retraining PR targets")] = "main",
    history: Annotated[
        Path, typer.Option(help="the windows' verdicts (JSON lines): read, and this window's added")
    ] = Path("build/monitor-history.jsonl"),
    history_branch: Annotated[
        str | None,
        typer.Option(help="keep the verdicts on this branch of origin instead (read, then pushed): for CI runners"),
    ] = None,
) -> None:
    """Compare a window of new data with the training reference: drift, prediction drift, quality, decay.

    Each window's verdict is recorded in the history; retraining is recommended when drift or decay held
    in monitor.retrain_k of the last monitor.retrain_n windows judged against the current model.
    `--month next` is the first month after the data's latest that has no verdict yet: the window the
    scheduled workflow watches.
    """
    import pandas as pd

    from flightdelay import monitor as monitoring
    from flightdelay import retrain, settings
    from flightdelay.core.windows import HistoryError
    from flightdelay.io import drift_report, dvc, git
    from flightdelay.io.github import Client, GitHubError

    root = Path.cwd()
    try:
        params = settings.load(params_file)
        model = dvc.recorded_md5(root, "train", params.paths.model)
        judged, parent = _read_history(root, history, history_branch)
        if month == "next":
            month = monitoring.watch_month(root, params, judged, model)
        result, reference, seen = monitoring.run(root, params, month=month, log=window, labels=labels)
        recorded = monitoring.judge(
            result, seen, judged, model=model, rules=params.monitor, now=pd.Timestamp.now(tz="UTC")
        )
    except (settings.ParamsError, monitoring.MonitorError, HistoryError, dvc.DvcError, git.GitError) as exc:
        _fail(str(exc))
        return
    paths = drift_report.write(out, result, reference, seen)
    digest = paths["digest"].read_text()
    if recorded != judged:  # before anything is printed: a reader that stops reading loses no verdict
        try:
            _write_history(root, recorded.dumps(), path=history, branch=history_branch, parent=parent, window=seen.name)
        except (OSError, git.GitError) as exc:
            typer.echo(digest)
            _fail(f"the verdict on {seen.name} could not be recorded, so nothing was proposed: {exc}")
    typer.echo(digest)
    typer.echo(f"written: {', '.join(str(p) for p in paths.values())}", err=True)
    if result.quality_failed:  # never silent, and never a retraining PR on data that fails the checks
        _fail("the window fails the data checks (the Data quality table above): fix its data; nothing proposed")
        return
    if propose and result.retrain:
        following = retrain.next_month(Path.cwd(), params.paths.raw)
        if following is None:
            _fail("retraining recommended, but every month of the sample is in the data already")
            return
        try:
            retrain.propose(
                Path.cwd(),
                Client.from_environment(),
                following,
                digest,
                typer.echo,
                outputs=params.paths.committed,
                base=base,
            )
        except (retrain.RetrainError, GitHubError) as exc:
            _fail(str(exc))
    elif propose and result.variant_decision:
        try:
            retrain.report_variants(Client.from_environment(), digest, typer.echo)
        except GitHubError as exc:
            _fail(str(exc))
    if fail_on_drift and result.retrain:
        raise typer.Exit(3)


HISTORY_FILE = "history.jsonl"  # on the branch --history-branch names


def _read_history(root: Path, path: Path, branch: str | None) -> tuple[History, str | None]:
    """The recorded verdicts: from ``origin``'s ``branch`` when given (with the commit read), else from ``path``."""
    from flightdelay.core.windows import History
    from flightdelay.io import git

    if branch is None:
        return (History.parse(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else History()), None
    text, parent = git.read_branch_file(root, "origin", branch, HISTORY_FILE)
    return History.parse(text or "", f"{HISTORY_FILE} on origin/{branch}"), parent


def _write_history(root: Path, text: str, *, path: Path, branch: str | None, parent: str | None, window: str) -> None:
    """Replace the history file whole; with ``branch``, first push it there as a commit on ``parent``."""
    from flightdelay.io import git
    from flightdelay.io.files import atomic_path

    if branch is not None:
        message = f"monitor: the verdict on {window}"
        commit = git.write_branch_file(root, "origin", branch, HISTORY_FILE, text=text, message=message, parent=parent)
        typer.echo(f"recorded the verdict on {window} on origin/{branch} ({commit[:10]})", err=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@app.command("batch-predict")
def batch_predict(
    *,
    source: Annotated[
        str,
        typer.Option(
            "--input",
            help="flights to score: a CSV or Parquet file with the request columns, or its URL (s3://, gs://, "
            "https://: fetched with dvc get-url)",
        ),
    ],
    output: Annotated[Path, typer.Option(help="where the scores go: .csv or .parquet")],
    version: Annotated[str | None, typer.Option(help="the registered version to score with")] = None,
    alias: Annotated[str | None, typer.Option(help="the version holding this alias (default: production)")] = None,
    chunk_rows: Annotated[int, typer.Option(help="rows read, scored and written at a time")] = 50_000,
    progress: Annotated[bool, typer.Option(help="a progress bar on stderr")] = True,
) -> None:
    """Score a file of flights with a registered model version, a chunk at a time, as the service scores them.

    Writes each row's request id, the validated request, the probability, the decision at the version's
    threshold, the version and, for a row that could not be scored, why. `nox -s monitor -- --window OUTPUT
    --labels ARRIVALS` joins labels to it by request id.
    """
    import tempfile

    from flightdelay import batch, registry, settings
    from flightdelay.io.engines import EngineError

    try:
        engine = settings.load().engine  # params.yaml's engine: here, or a Dask cluster's workers
        with registry.connect(Path.cwd()), tempfile.TemporaryDirectory() as tmp:
            chosen = batch.resolve(version, alias)
            flights = batch.fetch(source, Path(tmp))
            typer.echo(f"scoring {source} with {chosen.label} (aliases: {', '.join(chosen.aliases) or 'none'})")
            done = batch.run(flights, output, chosen, chunk_rows=chunk_rows, progress=progress, engine=engine)
    except (batch.BatchError, registry.RegistryError, settings.ParamsError, EngineError) as exc:
        _fail(str(exc))
    failed = f"; {done.failed:,} could not be scored (see their error column)" if done.failed else ""
    typer.echo(f"wrote {done.output}: {done.rows:,} flights scored by {done.version.label}{failed}")


@app.command("push-cache")
def push_cache() -> None:
    """Push the outputs and the run-cache to the DVC remote, so a later `dvc repro` restores instead of rerunning."""
    from flightdelay.io import dvc

    remote = dvc.default_remote(Path.cwd())
    if not remote:
        typer.echo("no default DVC remote: nothing to push (the sample and a local run stand in)")
        return
    try:
        dvc.run("push", cwd=Path.cwd())
        dvc.run("push", "--run-cache", cwd=Path.cwd())
    except dvc.DvcError as exc:
        _fail(str(exc))
    typer.echo(f"pushed the outputs and the run-cache to DVC remote {remote!r}")
