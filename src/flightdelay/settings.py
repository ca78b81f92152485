"""Typed settings: ``params.yaml`` parsed once into frozen, strict models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

PARAMS_FILE = Path("params.yaml")


class _Frozen(BaseModel):
    # Lax mode so YAML scalars become Paths and tuples; unknown keys are still errors.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paths(_Frozen):
    """Every file the pipeline reads or writes, relative to the project root."""

    raw: Path
    joined: Path
    validation_report: Path
    train: Path
    valid: Path
    test: Path
    model: Path
    metrics: Path
    slices: Path
    plots: Path

    @property
    def committed(self) -> tuple[Path, ...]:
        """The outputs git tracks beside ``dvc.lock`` (DVC caches the rest): a PR commits them reproduced."""
        return (self.validation_report, self.metrics, self.slices, self.plots)


class Split(_Frozen):
    """Time split: the latest month tests, the month(s) before it validate, the rest trains."""

    valid_months: Annotated[int, Field(ge=1)]
    test_months: Annotated[int, Field(ge=1)]
    min_train_months: Annotated[int, Field(ge=1)]


class HistGradientBoosting(_Frozen):
    learning_rate: Annotated[float, Field(gt=0, le=1)]
    max_iter: Annotated[int, Field(ge=1)]
    max_leaf_nodes: Annotated[int, Field(ge=2)]
    min_samples_leaf: Annotated[int, Field(ge=1)]
    l2_regularization: Annotated[float, Field(ge=0)]


class LogisticRegression(_Frozen):
    C: Annotated[float, Field(gt=0)]
    max_iter: Annotated[int, Field(ge=1)]


class Train(_Frozen):
    estimator: Literal["hist_gradient_boosting", "logistic_regression"]
    random_state: int
    #: Fit on at most this many rows: past it, a sample seeded by ``random_state`` (``stages.train``); None: all.
    max_rows: Annotated[int, Field(ge=1)] | None = None
    hist_gradient_boosting: HistGradientBoosting
    logistic_regression: LogisticRegression


class Costs(_Frozen):
    """Business cost of each kind of mistake, used to choose the decision threshold."""

    false_positive: Annotated[float, Field(ge=0)]
    false_negative: Annotated[float, Field(ge=0)]


class Evaluate(_Frozen):
    costs: Costs
    slices: tuple[str, ...]
    plot_points: Annotated[int, Field(ge=10)]


class Tune(_Frozen):
    """A time-boxed random search over ``space`` (lists of candidate values per HGB param)."""

    budget_seconds: Annotated[float, Field(gt=0)]
    max_trials: Annotated[int, Field(ge=1)]
    space: dict[str, tuple[float | int, ...]]


class SliceRules(_Frozen):
    """Fairness: what every slice (``evaluate.slices``) with at least ``min_rows`` test rows must meet, on the
    slice's metric names (``roc_auc``); fewer rows are too few to judge."""

    min_rows: Annotated[int, Field(ge=1)] = 300
    minimum: dict[str, float] = Field(default_factory=dict)
    max_gap: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)


class Gate(_Frozen):
    """The PR quality gate, on flat metric names as ``dvc metrics`` shows them (``test.roc_auc``)."""

    minimum: dict[str, float]
    max_regression: dict[str, Annotated[float, Field(ge=0)]]
    slices: SliceRules = SliceRules()
    # The problem's invariants (flightdelay.interface.Invariant) checked on the PR's model.
    robustness: bool = False
    # The regression rules fail only a regression the paired bootstrap finds significant.
    significant_regressions_only: bool = False


class Report(_Frozen):
    """How the PR report shows what the gate does not judge."""

    min_slice_rows: Annotated[int, Field(ge=1)]
    # The paired bootstrap of the headline metrics' changes: resamples of the test rows, and the interval's level.
    bootstrap_samples: Annotated[int, Field(ge=100, le=100_000)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95


class Monitor(_Frozen):
    """Drift and decay thresholds for ``nox -s monitor`` (the feedback loop)."""

    psi: Annotated[float, Field(gt=0)]
    p_value: Annotated[float, Field(gt=0, lt=1)]
    drift_share: Annotated[float, Field(gt=0, le=1)]
    prediction_psi: Annotated[float, Field(gt=0)]
    max_auc_drop: Annotated[float, Field(ge=0)]
    min_labels: Annotated[int, Field(ge=1)]
    # Shadow against production (flightdelay.variants). Defaults, so a project's older params.yaml still loads.
    shadow_max_disagreement: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_pairs: Annotated[int, Field(ge=1)] = 200
    # A/B: the smallest difference in log loss worth detecting (flightdelay.variants.compare_ab).
    ab_min_effect: Annotated[float, Field(gt=0)] = 0.005
    # Retraining when drift or decay held in at least retrain_k of the last retrain_n windows judged against the
    # current model (flightdelay.core.windows). 1 of 1, each flagged window, is what an older params.yaml meant.
    retrain_k: Annotated[int, Field(ge=1)] = 1
    retrain_n: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _k_of_n(self) -> Monitor:
        if self.retrain_k > self.retrain_n:
            raise ValueError(
                f"retrain_k ({self.retrain_k}) is more than retrain_n ({self.retrain_n}): "
                "retraining could never be proposed"
            )
        return self


class Engine(_Frozen):
    """Where the heavy stages (validate's row checks, featurize) run their batches of rows (``io.engines``).

    ``pandas``: in the stage's process, one batch after another. ``dask``: on a ``dask.distributed`` cluster,
    the scheduler at ``address``, or with none a local cluster of ``workers`` processes (a core each by
    default). The outputs are the same files either way; the engine is not a DVC param.
    """

    name: Literal["pandas", "dask"] = "pandas"
    address: str | None = None
    workers: Annotated[int, Field(ge=1)] | None = None


class Params(_Frozen):
    """The whole of ``params.yaml``."""

    paths: Paths
    # The problem's own options (flightdelay/problem/): validated by the models the problem declares.
    ingest: Any
    split: Split
    label: Any
    train: Train
    evaluate: Evaluate
    tune: Tune
    gate: Gate
    report: Report
    monitor: Monitor
    engine: Engine = Engine()

    @field_validator("ingest", "label", mode="before")
    @classmethod
    def _problem_options(cls, value: Any, info: ValidationInfo) -> BaseModel:
        from flightdelay.problem import PROBLEM

        model = PROBLEM.ingest_options if info.field_name == "ingest" else PROBLEM.label_options
        return model.model_validate(value)


class ParamsError(ValueError):
    """``params.yaml`` is missing, unreadable or does not match the settings models."""


def load(path: Path = PARAMS_FILE) -> Params:
    """Parse ``params.yaml`` into :class:`Params`, or raise :class:`ParamsError` naming the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: not found (run from the project root)") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ParamsError(f"{path}: {problems}") from exc
