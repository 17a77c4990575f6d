"""One target's forecaster, the scikit-learn way: the one ``fit`` behind every model the project trains.

:class:`TargetEstimator` holds a target's LightGBM regressor (point forecast) and classifier (P(target > 0)),
built from the model spec and the experiment's :class:`~smallcap_regime.models.options.ModelOptions`. The backtest
folds, the tuning inner folds and the final (registered) model all call :meth:`TargetEstimator.fit`, so what the
backtest measures is what ships. Calibration, conformal intervals and drivers act on its raw outputs
(:mod:`~smallcap_regime.models.calibration`, :class:`~smallcap_regime.models.bundle.RegimeModel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .lgbm import DETERMINISTIC, ModelSpec
from .options import ModelOptions

if TYPE_CHECKING:
    import lightgbm as lgb

# Parameters that only steer boosting, not how LightGBM bins the features into its Dataset. Models on the same rows
# that differ in nothing else (a target's regressor and classifier, and the two targets of a fold) share one binned
# Dataset. (Their seeds differ, but a seed reaches the binning only through the row sample for bin bounds, which is
# taken only above ``bin_construct_sample_cnt`` rows: monthly data are far below it, and larger data are binned
# per model.)
BOOSTING_ONLY = frozenset({"objective", "seed", "n_estimators", "learning_rate", "num_leaves", "max_depth",
                           "feature_fraction", "bagging_fraction", "bagging_freq", "lambda_l1", "lambda_l2"})
BIN_SAMPLE_ROWS = 200_000  # LightGBM's default bin_construct_sample_cnt


class TargetEstimator:
    """A target's LightGBM regressor and classifier with the model options applied.

    Parameters
    ----------
    regressor, classifier : LightGBM parameters (a model spec's ``[regressor]`` / ``[classifier]``); the
        deterministic settings go on top.
    options : the experiment's model options.
    families : feature name -> family (:meth:`~smallcap_regime.features.build.FeatureSpec.family_of`), needed
        when ``options.drop_families`` is set.

    Attributes (after :meth:`fit`)
    ----------
    columns_ : int array, the positions of the input columns the models use: those with data in the training
        window, minus dropped families (a column absent from the window would only perturb feature sampling).
    feature_names_in_ : input column names (``Column_<i>`` when none were given).
    regressor_, classifier_ : the fitted boosters (None when not fitted; ``classifier_`` is None when the window
        holds one class only, and :meth:`predict_proba` then gives that class: the honest answer).
    """

    def __init__(self, regressor: Mapping[str, Any], classifier: Mapping[str, Any],
                 options: ModelOptions | None = None, families: Mapping[str, str] | None = None):
        self.regressor = dict(regressor)
        self.classifier = dict(classifier)
        self.options = options or ModelOptions()
        self.families = dict(families or {})

    @classmethod
    def from_spec(cls, spec: ModelSpec, options: ModelOptions | None = None,
                  families: Mapping[str, str] | None = None) -> TargetEstimator:
        return cls(spec.regressor, spec.classifier, options, families)

    def _keep(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        keep = ~np.isnan(x).all(axis=0)
        if self.options.drop_families:
            if not self.families:
                raise ValueError("options.drop_families needs families (feature name -> family) to drop by")
            dropped = set(self.options.drop_families)
            keep &= np.array([self.families.get(name) not in dropped for name in names], dtype=bool)
        return keep

    def _params(self, params: dict[str, Any], objective: str, names: list[str]) -> tuple[dict[str, Any], int]:
        full = {"objective": objective, **params, **DETERMINISTIC}
        monotone = [self.options.monotone.get(name, 0) for name in names]
        if any(monotone):
            full["monotone_constraints"] = monotone
        return full, full.pop("n_estimators", 100)  # 100: the scikit-learn wrapper's default too

    def fit(self, x: Any, y: Any = None, y_up: Any = None, *, feature_names: Sequence[str] | None = None,
            binned: dict[tuple, lgb.Dataset] | None = None) -> TargetEstimator:
        """Fit the regressor on ``y`` and the classifier on ``y_up`` (either may be None: that model is skipped).

        Parameters
        ----------
        x : training features, shape (n, n_features) (array or DataFrame, whose columns name the features), NaN
            allowed.
        y : target (decimal return), shape (n,).
        y_up : 0/1 labels, shape (n,).
        feature_names : names of ``x``'s columns (default: a DataFrame's columns).
        binned : Datasets binned from this same ``x`` by earlier fits (filled here): pass one dict to the fits of
            every target on the same rows and each binning is done once. The boosters then keep their training
            Dataset, whose labels a later fit may replace: predict with them, do not continue training them.
        """
        import lightgbm as lgb

        if feature_names is None:
            columns = getattr(x, "columns", None)
            feature_names = ([str(c) for c in columns] if columns is not None
                             else [f"Column_{i}" for i in range(np.shape(x)[1])])
        values = np.asarray(x, dtype="float64")
        self.feature_names_in_ = list(feature_names)
        self.n_features_in_ = values.shape[1]
        self._mask = self._keep(values, self.feature_names_in_)
        self.columns_ = np.flatnonzero(self._mask)
        names = [self.feature_names_in_[i] for i in self.columns_]
        used = self.inputs(values)
        cache: dict[tuple, lgb.Dataset] = {} if binned is None else binned

        def dataset(params: dict[str, Any], label: np.ndarray) -> lgb.Dataset:
            if len(used) > BIN_SAMPLE_ROWS:
                return lgb.Dataset(used, label=label, params=params, feature_name=names)
            key = (self.columns_.tobytes(), *sorted((k, repr(v)) for k, v in params.items() if k not in BOOSTING_ONLY))
            if key in cache:
                cache[key].set_label(label)  # boosters fitted on it earlier keep their trees: only training reads it
            else:
                cache[key] = lgb.Dataset(used, label=label, params=params, feature_name=names, free_raw_data=False)
            return cache[key]

        # keep_training_booster: skip lgb.train's closing text round trip (model_to_string, then parse), which
        # frees the binned data at a cost of ~10 % of a fit here; the trees and their predictions are the same
        self.regressor_: lgb.Booster | None = None
        self.classifier_: lgb.Booster | None = None
        self.constant_p_ = float("nan")
        if y is not None:
            params, rounds = self._params(self.regressor, "regression", names)
            self.regressor_ = lgb.train(params, dataset(params, np.asarray(y, dtype="float64")),
                                        num_boost_round=rounds, keep_training_booster=True)
        if y_up is not None:
            labels = np.asarray(y_up, dtype="float64")
            if len(np.unique(labels)) == 2:
                params, rounds = self._params(self.classifier, "binary", names)
                self.classifier_ = lgb.train(params, dataset(params, labels), num_boost_round=rounds,
                                             keep_training_booster=True)
            else:  # one class only in the window: no classifier can be fitted
                self.constant_p_ = float(labels[0])
        return self

    def inputs(self, x: Any) -> np.ndarray:
        """The columns of ``x`` (shape (n, n_features_in_)) the models read, as a new float64 array.

        Always a copy by a boolean mask, even when every column is kept: the linear baselines' floating-point sums
        depend on the memory layout, and this is the layout their numbers were first recorded with.
        """
        return np.asarray(x, dtype="float64")[:, self._mask]

    def predict(self, x: Any) -> np.ndarray:
        """Raw point forecasts, shape (n,), from features shaped like the training ones."""
        if self.regressor_ is None:
            raise ValueError("the regressor is not fitted: call fit with y")
        return np.asarray(self.regressor_.predict(self.inputs(x)))

    def predict_proba(self, x: Any) -> np.ndarray:
        """Raw probabilities of (down, up), shape (n, 2), as scikit-learn classifiers return them."""
        if self.classifier_ is None:
            if np.isnan(self.constant_p_):
                raise ValueError("the classifier is not fitted: call fit with y_up")
            up = np.full(len(x), self.constant_p_)
        else:
            up = np.asarray(self.classifier_.predict(self.inputs(x)))
        return np.column_stack([1.0 - up, up])
