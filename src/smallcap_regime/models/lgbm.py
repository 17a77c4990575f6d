"""LightGBM model specs (``models/*.toml``) and deterministic estimators built from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from ..configs import Section, load_config, validate

if TYPE_CHECKING:
    import lightgbm as lgb
    import numpy as np

TARGETS = ("relative", "absolute")
# Settings that make a rerun bit-identical; a spec may not switch them off.
DETERMINISTIC = {"deterministic": True, "force_col_wise": True, "num_threads": 1, "verbose": -1}


@dataclass(frozen=True)
class ModelSpec:
    """A target's two LightGBM models: the point forecast (regressor) and P(target > 0) (classifier)."""

    name: str
    target: str
    regressor: dict[str, Any]
    classifier: dict[str, Any]
    path: Path | None = None
    description: str = ""


class ModelSpecFile(Section):
    """The schema of a model spec file; ``[regressor]``/``[classifier]`` hold LightGBM parameters."""

    description: str = ""
    target: Literal["relative", "absolute"]
    regressor: dict[str, Any]
    classifier: dict[str, Any]

    @field_validator("regressor", "classifier")
    @classmethod
    def _seeded(cls, params: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(params.get("seed"), int):
            raise ValueError("needs an integer 'seed' so reruns are identical")
        return params


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    """Load ``models/<name>.toml`` (or a path) as a validated :class:`ModelSpec`."""
    raw, path = load_config("models", name_or_path)
    cfg = validate(ModelSpecFile, raw, path)
    return ModelSpec(name=path.stem, target=cfg.target, regressor=dict(cfg.regressor),
                     classifier=dict(cfg.classifier), path=path, description=cfg.description)


def make_regressor(params: dict[str, Any]) -> lgb.LGBMRegressor:
    """LightGBM regressor with the spec's params and the deterministic settings on top."""
    import lightgbm as lgb

    return lgb.LGBMRegressor(**{"objective": "regression", **params, **DETERMINISTIC})


def make_classifier(params: dict[str, Any]) -> lgb.LGBMClassifier:
    """LightGBM binary classifier with the spec's params and the deterministic settings on top."""
    import lightgbm as lgb

    return lgb.LGBMClassifier(**{"objective": "binary", **params, **DETERMINISTIC})


# Parameters that only steer boosting, not how LightGBM bins the features into its Dataset. Models on the same rows
# that differ in nothing else (a target's regressor and classifier, and the two targets of a fold) share one binned
# Dataset. (Their seeds differ, but a seed reaches the binning only through the row sample for bin bounds, which is
# taken only above ``bin_construct_sample_cnt`` rows: monthly data are far below it, and larger data are binned
# per model.)
BOOSTING_ONLY = frozenset({"objective", "seed", "n_estimators", "learning_rate", "num_leaves", "max_depth",
                           "feature_fraction", "bagging_fraction", "bagging_freq", "lambda_l1", "lambda_l2"})
BIN_SAMPLE_ROWS = 200_000  # LightGBM's default bin_construct_sample_cnt


def fit_boosters(x: np.ndarray, y: np.ndarray, y_up: np.ndarray | None, spec: ModelSpec,
                 binned: dict[tuple, lgb.Dataset] | None = None) -> tuple[lgb.Booster, lgb.Booster | None]:
    """Fit a target's regressor and, given labels, its classifier, binning the features once where possible.

    Gives the same boosters as ``make_regressor(spec.regressor).fit(x, y)`` and
    ``make_classifier(spec.classifier).fit(x, y_up)`` (the scikit-learn defaults are LightGBM's own).

    Parameters
    ----------
    x : training features, shape (n, n_features), float64, NaN allowed.
    y : target, shape (n,).
    y_up : 0/1 labels, shape (n,), or None to fit the regressor only.
    binned : Datasets binned from this same ``x`` by earlier calls, by binning parameters (filled here): pass one
        dict to the calls of every target fitted on the same rows and each binning is done once.

    The boosters keep their training Dataset, whose labels a later call may replace: predict with them, do not
    continue training them.
    """
    import lightgbm as lgb

    def native(params: dict[str, Any], objective: str) -> tuple[dict[str, Any], int]:
        full = {"objective": objective, **params, **DETERMINISTIC}
        return full, full.pop("n_estimators", 100)  # 100: the scikit-learn wrapper's default too

    cache = {} if binned is None else binned

    def dataset(params: dict[str, Any], label: np.ndarray) -> lgb.Dataset:
        if len(x) > BIN_SAMPLE_ROWS:
            return lgb.Dataset(x, label=label, params=params)
        key = tuple(sorted((k, v) for k, v in params.items() if k not in BOOSTING_ONLY))
        if key in cache:
            cache[key].set_label(label)  # boosters fitted on it earlier keep their trees: only training reads it
        else:
            cache[key] = lgb.Dataset(x, label=label, params=params, free_raw_data=False)
        return cache[key]

    # keep_training_booster: skip lgb.train's closing text round trip (model_to_string, then parse), which
    # frees the binned data at a cost of ~10 % of a fit here; the trees and their predictions are the same
    reg_params, reg_rounds = native(spec.regressor, "regression")
    regressor = lgb.train(reg_params, dataset(reg_params, y), num_boost_round=reg_rounds, keep_training_booster=True)
    if y_up is None:
        return regressor, None
    clf_params, clf_rounds = native(spec.classifier, "binary")
    classifier = lgb.train(clf_params, dataset(clf_params, y_up), num_boost_round=clf_rounds,
                           keep_training_booster=True)
    return regressor, classifier
