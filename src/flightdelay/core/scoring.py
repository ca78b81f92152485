"""The fitted pipeline as the service runs it: the same fitted model, without scikit-learn's per-call cost.

scikit-learn spends 5-9 ms on one row of the gradient-boosted pipeline here, and 18-40 ms on 1,000: the
column transformers' pandas handling and input validation, then a Python loop over 300 trees, each a call
into compiled code that walks every row. For that estimator :class:`Scorer` encodes the categories itself,
from the fitted encoder's categories, and runs the fitted trees in onnxruntime: the estimator's trees,
thresholds and leaf values written at load time into one ONNX ``TreeEnsemble`` node (:func:`onnx_trees`),
which walks them in C++. One row takes ~0.04 ms; 1,000 rows 0.45-0.8x scikit-learn's time on one thread
and 0.25-0.45x on two (README, benchmark). The trees are compared in float64 and the raw scores summed in
another order than scikit-learn's, so the probabilities agree with the pipeline's to within 1e-12
(``tests/unit/test_scoring.py``, ``tests/model/test_serving.py``).

Any other estimator (the logistic regression of ``params.yaml``) is scored by its pipeline as it is.
The registry keeps the scikit-learn pipeline: nothing here is stored, it is derived at load time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

if TYPE_CHECKING:
    import onnx

#: From this many rows on, a batch's trees run on ``threads`` threads (``Scorer.of``); below, on one.
PARALLEL_MIN_ROWS = 100

# ONNX's TreeEnsemble node modes (ai.onnx.ml opset 5).
_BRANCH_LEQ, _BRANCH_MEMBER = 0, 6


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _members(bitset: np.ndarray) -> list[int]:
    """The integers a scikit-learn category bitset (8 x 32 bits) holds."""
    return [word * 32 + bit for word, chunk in enumerate(bitset.tolist()) for bit in range(32) if chunk >> bit & 1]


@dataclass
class _Ensemble:
    """The attributes of an ONNX ``TreeEnsemble`` node, tree by tree: branches and leaves in two lists."""

    modes: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    true_leaf: list[int] = field(default_factory=list)
    true_id: list[int] = field(default_factory=list)
    false_leaf: list[int] = field(default_factory=list)
    false_id: list[int] = field(default_factory=list)
    members: list[float] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    leaves: list[float] = field(default_factory=list)

    def branch(self, mode: int, feature: int, split: float, *, missing_true: bool, yes: int, no: int) -> None:
        """A branch; ``yes`` and ``no`` are leaves when negative (leaf ``-1 - i``), branches otherwise."""
        self.modes.append(mode)
        self.features.append(feature)
        self.splits.append(split)
        self.missing_true.append(int(missing_true))
        for target, leaf, ids in ((yes, self.true_leaf, self.true_id), (no, self.false_leaf, self.false_id)):
            leaf.append(int(target < 0))
            ids.append(-1 - target if target < 0 else target)

    def node(self) -> onnx.NodeProto:
        import onnx  # ~1 s of imports (protobuf), needed only when a model is converted

        def tensor(values: list[Any], dtype: type) -> onnx.TensorProto:
            return onnx.numpy_helper.from_array(np.array(values, dtype=dtype))

        sets = {"membership_values": tensor(self.members, np.float64)} if self.members else {}
        return onnx.helper.make_node(
            "TreeEnsemble",
            ["X"],
            ["Y"],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function=1,  # SUM
            post_transform=0,  # NONE: the baseline and the logistic are applied in numpy, as scikit-learn does
            tree_roots=self.roots,
            nodes_modes=tensor(self.modes, np.uint8),
            nodes_splits=tensor(self.splits, np.float64),
            nodes_featureids=self.features,
            nodes_missing_value_tracks_true=self.missing_true,
            nodes_trueleafs=self.true_leaf,
            nodes_truenodeids=self.true_id,
            nodes_falseleafs=self.false_leaf,
            nodes_falsenodeids=self.false_id,
            leaf_targetids=[0] * len(self.leaves),
            leaf_weights=tensor(self.leaves, np.float64),
            **sets,
        )


def onnx_trees(estimator: HistGradientBoostingClassifier) -> bytes:
    """The fitted trees of a binary ``HistGradientBoostingClassifier`` as an ONNX model: X (float64) in, raw score out.

    The model's input is what the estimator's ``predict_proba`` is given (its categorical features as
    category values, NaN when missing); its output is the sum of the trees' leaf values, to which
    :class:`CompiledTrees` adds the estimator's baseline and applies the logistic. A node routes as
    scikit-learn's predictor does (``_predictor.pyx``):

    - a numeric split goes left when the value is at most the threshold; a missing value goes where the
      split sends missing values;
    - a categorical split goes left for the categories in its left set, right for the other categories the
      estimator saw in training, and where missing values go for a missing or never-seen category. ONNX
      tests membership of one set, so the node tests the set on the side missing values do not go to.

    Reads the fitted estimator's private attributes (``_predictors``, ``_preprocessor``, ``_bin_mapper``,
    ``_baseline_prediction``) as scikit-learn 1.9 (the locked version) lays them out; the tests compare every path with
    ``predict_proba``.
    """
    import onnx  # ~1 s of imports (protobuf), needed only here

    if estimator.n_trees_per_iteration_ != 1:
        raise ValueError("onnx_trees converts a binary classifier (one tree per iteration)")
    # With categorical features, the estimator encodes them again, into codes 0..k-1 of its own, and puts
    # them first: a node's feature index and categories are in that space, mapped back to the input's here.
    column, categories = np.arange(estimator.n_features_in_), []
    preprocessor = getattr(estimator, "_preprocessor", None)
    if preprocessor is not None:
        categorical = estimator.is_categorical_
        column = np.concatenate([np.flatnonzero(categorical), np.flatnonzero(~categorical)])
        categories = [list(c) for c in preprocessor.named_transformers_["encoder"].categories_]
    known_bitsets, known_index = estimator._bin_mapper.make_known_categories_bitsets()

    def values(feature: int, codes: set[int]) -> list[float]:
        own = categories[feature]  # categorical features come first: their index is their encoder's
        return sorted(float(own[c]) for c in codes if c < len(own) and _known(own[c]))

    ensemble = _Ensemble()
    for (predictor,) in estimator._predictors:
        nodes = predictor.nodes
        is_leaf = nodes["is_leaf"].astype(bool)
        # A node's place among the ensemble's branches, or (as -1 - i) among its leaves.
        place = np.empty(len(nodes), dtype=np.int64)
        place[~is_leaf] = len(ensemble.modes) + np.arange(int((~is_leaf).sum()))
        place[is_leaf] = -1 - (len(ensemble.leaves) + np.arange(int(is_leaf.sum())))
        ensemble.leaves += nodes["value"][is_leaf].tolist()
        ensemble.roots.append(len(ensemble.modes) if is_leaf[0] else int(place[0]))
        if is_leaf[0]:  # a tree that is one leaf: a branch with that leaf on both sides
            ensemble.branch(_BRANCH_LEQ, 0, 0.0, missing_true=True, yes=int(place[0]), no=int(place[0]))
        for node in nodes[~is_leaf]:
            left, right = int(place[node["left"]]), int(place[node["right"]])
            feature, missing_left = int(node["feature_idx"]), bool(node["missing_go_to_left"])
            if not node["is_categorical"]:
                ensemble.branch(
                    _BRANCH_LEQ,
                    int(column[feature]),
                    float(node["num_threshold"]),
                    missing_true=missing_left,
                    yes=left,
                    no=right,
                )
                continue
            goes_left = set(_members(predictor.raw_left_cat_bitsets[node["bitset_idx"]]))
            if missing_left:  # the set is the known categories that go right
                seen = set(_members(known_bitsets[known_index[feature]]))
                tested, yes, no = values(feature, seen - goes_left), right, left
            else:
                tested, yes, no = values(feature, goes_left), left, right
            ensemble.members += [*tested, math.nan]  # NaN ends a node's set
            ensemble.branch(_BRANCH_MEMBER, int(column[feature]), 0.0, missing_true=False, yes=yes, no=no)
    graph = onnx.helper.make_graph(
        [ensemble.node()],
        "hist_gradient_boosting",
        [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, [None, estimator.n_features_in_])],
        [onnx.helper.make_tensor_value_info("Y", onnx.TensorProto.DOUBLE, [None, 1])],
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 21), onnx.helper.make_opsetid("ai.onnx.ml", 5)]
    )
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized


def _session(model: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep rather than spin: a spinning thread takes the core from the other worker.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class CompiledTrees:
    """A binary ``HistGradientBoostingClassifier``'s trees in onnxruntime: the probability of each row."""

    one: ort.InferenceSession  # one thread, on the caller's
    many: ort.InferenceSession  # ``threads`` threads, for batches of PARALLEL_MIN_ROWS rows and more
    baseline: float

    @classmethod
    def of(cls, estimator: HistGradientBoostingClassifier, threads: int = 1) -> CompiledTrees:
        model = onnx_trees(estimator)
        one = _session(model, 1)
        many = one if threads <= 1 else _session(model, threads)
        return cls(one, many, float(np.asarray(estimator._baseline_prediction).ravel()[0]))

    def proba(self, matrix: np.ndarray) -> np.ndarray:
        session = self.many if len(matrix) >= PARALLEL_MIN_ROWS else self.one
        (raw,) = session.run(None, {"X": matrix})
        return np.asarray(expit(raw[:, 0] + self.baseline), dtype=float)


@dataclass(frozen=True)
class Scorer:
    """Probabilities of the positive class for features given as column arrays (``Problem.request_features``)."""

    pipeline: Pipeline
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    #: Per categorical feature, the fitted encoder's code of each known value (fast path only).
    codes: tuple[dict[Any, float], ...] | None = None
    #: The fitted trees in onnxruntime (fast path only).
    trees: CompiledTrees | None = None

    @classmethod
    def of(cls, pipeline: Pipeline, categorical: Sequence[str], numeric: Sequence[str], threads: int = 1) -> Scorer:
        """The scorer for a fitted pipeline of ``core.model.make_model``: the fast path where it applies.

        ``threads``: how many threads score a batch of :data:`PARALLEL_MIN_ROWS` rows or more.
        """
        estimator = pipeline.named_steps["estimator"]
        encoder = pipeline.named_steps["columns"].named_transformers_["categorical"]
        boosted = isinstance(estimator, HistGradientBoostingClassifier) and estimator.n_trees_per_iteration_ == 1
        if not (boosted and isinstance(encoder, OrdinalEncoder)):  # a multiclass model too: onnx_trees is binary
            return cls(pipeline, tuple(categorical), tuple(numeric))
        fitted = getattr(encoder, "categories_", ())  # none when the problem has no categorical feature
        codes = tuple({value: float(code) for code, value in enumerate(known) if _known(value)} for known in fitted)
        return cls(pipeline, tuple(categorical), tuple(numeric), codes, CompiledTrees.of(estimator, threads))

    @property
    def features(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    def score(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """The probability of each row, and how many categorical values the model never saw (scored as missing)."""
        if self.codes is None or self.trees is None:
            return self._score_by_pipeline(columns)
        matrix, unseen = self.encode(columns)
        return self.trees.proba(matrix), unseen

    def encode(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        """The matrix the column transformer would give the estimator, and the count of unseen categories."""
        assert self.codes is not None
        rows = len(columns[self.features[0]])
        matrix = np.empty((rows, len(self.features)), dtype=np.float64)
        unseen = 0
        for j, (column, codes) in enumerate(zip(self.categorical, self.codes, strict=True)):
            for i, value in enumerate(columns[column]):
                code = codes.get(value)
                if code is None:
                    code = np.nan
                    unseen += _known(value)
                matrix[i, j] = code
        for j, column in enumerate(self.numeric, start=len(self.categorical)):
            matrix[:, j] = columns[column]
        return matrix, unseen

    def _score_by_pipeline(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
        frame = pd.DataFrame({column: columns[column] for column in self.features})
        proba = np.asarray(self.pipeline.predict_proba(frame)[:, 1], dtype=float)
        encoder = self.pipeline.named_steps["columns"].named_transformers_["categorical"]
        if hasattr(encoder, "steps"):  # logistic regression: impute, then one-hot
            encoder = encoder.steps[-1][1]
        unseen = 0
        for column, known in zip(self.categorical, getattr(encoder, "categories_", ()), strict=False):
            values = frame[column].dropna()
            unseen += int((~values.isin(known)).sum())
        return proba, unseen
