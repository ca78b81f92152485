"""The project's commands that are not DVC stages: ``flightdelay --help``."""

from __future__ import annotations

import sys
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


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
