"""The project's commands that are not DVC stages: ``flightdelay --help``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

_POINTER = Path("data.dvc")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("get-data")
def get_data(
    pointer: Annotated[Path, typer.Option(help="the .dvc file that records the raw data")] = _POINTER,
) -> None:
    """Bring the raw data into place: dvc pull from the default remote, or write the sample and check it."""
    from flightdelay.io import dvc

    try:
        typer.echo(dvc.get_data(Path.cwd(), pointer))
    except (dvc.DvcError, RuntimeError) as exc:
        _fail(str(exc))


@app.command("add-month")
def add_month(
    month: Annotated[int, typer.Argument(min=1, max=12, help="month of 2013 to add, e.g. 11")],
    pointer: Annotated[Path, typer.Option(help="the .dvc file that records the raw data")] = _POINTER,
) -> None:
    """Add a held-back month of the sample to data/raw and record it in data.dvc (the 'data PR')."""
    from flightdelay.io import dvc, sample

    try:
        written = dvc.add_month(Path.cwd(), pointer, month)
    except (dvc.DvcError, sample.SampleError) as exc:
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

    try:
        params = settings.load(params_file)
        if budget is not None:
            params = params.model_copy(update={"tune": params.tune.model_copy(update={"budget_seconds": budget})})
        train, valid = read_parquet(params.paths.train), read_parquet(params.paths.valid)
    except (settings.ParamsError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    tracking.configure(Path.cwd())
    trials = tuning.ranked(tuning.search(params, train, valid))
    typer.echo(f"{len(trials)} trial(s); best first (validation ROC AUC):")
    for trial in trials[:5]:
        typer.echo(f"  {trial.valid_roc_auc:.4f}  {trial.seconds:6.1f}s  {trial.params}")
    if trials:
        typer.echo(f"adopt the best with:\n  {tuning.adopt_command(trials[0].params)}")


@app.command("bento-model")
def bento_model(
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
) -> None:
    """Save the pipeline's model, reference tables and threshold to the BentoML model store; pin its tag."""
    from flightdelay import settings
    from flightdelay.io import bento

    params = settings.load(params_file)
    tag = bento.save_model(Path.cwd(), params)
    pins = bento.write_requirements(Path("src/requirements.txt"))
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
