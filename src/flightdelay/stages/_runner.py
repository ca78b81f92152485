"""What every stage's ``main`` shares: argument parsing, settings, and turning known errors into exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from flightdelay import settings
from flightdelay.core.split import SplitError
from flightdelay.interface import SampleError
from flightdelay.io.dvc import DvcError
from flightdelay.io.engines import EngineError
from flightdelay.io.files import RawDataError

# Errors whose message already says what is wrong and what to do; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (
    settings.ParamsError,
    RawDataError,
    SplitError,
    SampleError,
    DvcError,
    EngineError,
    FileNotFoundError,
)


class StageFailedError(RuntimeError):
    """The stage ran and the data did not pass (e.g. validation errors)."""


def run_stage(name: str, body: Callable[[settings.Params], None], argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m flightdelay.stages.{name}", description=body.__doc__)
    parser.add_argument("--params", type=Path, default=settings.PARAMS_FILE, help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"{name}: %(message)s", stream=sys.stderr)
    try:
        body(settings.load(args.params))
    except (*EXPECTED_ERRORS, StageFailedError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    return 0
