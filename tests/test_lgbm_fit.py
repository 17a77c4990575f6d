"""The one fit (TargetEstimator): its boosters equal the scikit-learn estimators, also on one shared LightGBM
Dataset, and it leaves out empty columns and one-class windows the way every caller needs (SYNTHETIC)."""

from __future__ import annotations

import numpy as np
import pytest

from smallcap_regime.models.estimator import TargetEstimator
from smallcap_regime.models.lgbm import make_classifier, make_regressor
from smallcap_regime.models.options import ModelOptions

PARAMS = {"n_estimators": 30, "learning_rate": 0.05, "num_leaves": 7, "max_depth": 3, "min_child_samples": 20,
          "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 5.0, "max_bin": 63}


def _data(seed: int, n: int = 400, k: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = 0.5 * np.nan_to_num(x[:, 0]) + rng.normal(size=n)
    return x, y, (y > 0).astype(int)


@pytest.mark.parametrize("classifier_bins", [63, 31], ids=["shared-dataset", "own-dataset"])
def test_estimator_equals_the_scikit_learn_estimators(classifier_bins):
    x, y, up = _data(7)
    regressor, classifier = {**PARAMS, "seed": 1}, {**PARAMS, "seed": 2, "max_bin": classifier_bins}
    model = TargetEstimator(regressor, classifier).fit(x, y, up)
    test = np.random.default_rng(8).normal(size=(50, 12))
    assert np.array_equal(model.predict(test), make_regressor(regressor).fit(x, y).predict(test))
    assert np.array_equal(model.predict_proba(test), make_classifier(classifier).fit(x, up).predict_proba(test))
    assert TargetEstimator(regressor, classifier).fit(x, y).classifier_ is None


def test_two_targets_sharing_one_binning_equal_their_own_fits():
    """One ``binned`` cache across two targets on the same rows (the backtest's folds): each target's boosters equal
    those fitted alone, though the cached Dataset's labels were replaced in between."""
    x, _, _ = _data(11, 300, 8)
    rng = np.random.default_rng(12)
    targets = {name: 0.3 * np.nan_to_num(x[:, k]) + rng.normal(size=300) for k, name in enumerate(("rel", "abs"))}
    params = {name: ({**PARAMS, "seed": 3 + k}, {**PARAMS, "seed": 5 + k}) for k, name in enumerate(targets)}
    binned: dict = {}
    shared = {name: TargetEstimator(*params[name]).fit(x, y, (y > 0).astype(int), binned=binned)
              for name, y in targets.items()}
    assert len(binned) == 1  # binned once for four boosters
    test = rng.normal(size=(40, 8))
    for name, y in targets.items():
        alone = TargetEstimator(*params[name]).fit(x, y, (y > 0).astype(int))
        assert np.array_equal(shared[name].predict(test), alone.predict(test))
        assert np.array_equal(shared[name].predict_proba(test), alone.predict_proba(test))


def test_empty_columns_and_dropped_families_are_left_out_and_predict_takes_every_column():
    x, y, up = _data(3, 300, 6)
    x[:, 2] = np.nan  # no data in this window
    names = [f"f{i}" for i in range(6)]
    families = {"f4": "credit", "f5": "credit"}
    model = TargetEstimator({**PARAMS, "seed": 1}, {**PARAMS, "seed": 2}, ModelOptions(drop_families=["credit"]),
                            families).fit(x, y, up, feature_names=names)
    assert model.columns_.tolist() == [0, 1, 3]
    assert model.regressor_.feature_name() == ["f0", "f1", "f3"]
    reference = make_regressor({**PARAMS, "seed": 1}).fit(x[:, [0, 1, 3]], y)
    assert np.array_equal(model.predict(x[:20]), reference.predict(x[:20, [0, 1, 3]]))


def test_monotone_option_constrains_the_named_feature_only():
    x, y, up = _data(5, 300, 4)
    names = ["a", "b", "c", "d"]
    model = TargetEstimator({**PARAMS, "seed": 1}, {**PARAMS, "seed": 2}, ModelOptions(monotone={"c": -1, "zz": 1})
                            ).fit(x, y, up, feature_names=names)
    assert "[monotone_constraints: 0,0,-1,0]" in model.regressor_.model_to_string()
    grid = np.tile(np.nanmean(x, axis=0), (50, 1))
    grid[:, 2] = np.linspace(-3, 3, 50)
    assert np.all(np.diff(model.predict(grid)) <= 1e-12)
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) <= 1e-12)


def test_a_one_class_window_forecasts_that_class():
    x, y, _ = _data(9, 200, 5)
    model = TargetEstimator({**PARAMS, "seed": 1}, {**PARAMS, "seed": 2}).fit(x, y, np.ones(200))
    assert model.classifier_ is None
    assert model.predict_proba(x[:3]).tolist() == [[0.0, 1.0]] * 3
    with pytest.raises(ValueError, match="the regressor is not fitted: call fit with y"):
        TargetEstimator(PARAMS, PARAMS).fit(x, None, np.ones(200)).predict(x)
