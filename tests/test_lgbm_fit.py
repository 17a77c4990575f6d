"""Regressor and classifier fitted on one shared LightGBM Dataset equal the scikit-learn estimators (SYNTHETIC)."""

from __future__ import annotations

import numpy as np
import pytest

from smallcap_regime.models.lgbm import ModelSpec, fit_boosters, make_classifier, make_regressor

PARAMS = {"n_estimators": 30, "learning_rate": 0.05, "num_leaves": 7, "max_depth": 3, "min_child_samples": 20,
          "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 5.0, "max_bin": 63}


@pytest.mark.parametrize("classifier_bins", [63, 31], ids=["shared-dataset", "own-dataset"])
def test_fit_boosters_equals_the_scikit_learn_estimators(classifier_bins):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 12))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = 0.5 * np.nan_to_num(x[:, 0]) + rng.normal(size=400)
    up = (y > 0).astype(int)
    spec = ModelSpec("synthetic", "relative", {**PARAMS, "seed": 1},
                     {**PARAMS, "seed": 2, "max_bin": classifier_bins})
    regressor, classifier = fit_boosters(x, y, up, spec)
    test = rng.normal(size=(50, 12))
    assert np.array_equal(regressor.predict(test), make_regressor(spec.regressor).fit(x, y).predict(test))
    assert np.array_equal(classifier.predict(test),
                          make_classifier(spec.classifier).fit(x, up).predict_proba(test)[:, 1])
    assert fit_boosters(x, y, None, spec)[1] is None


def test_two_targets_sharing_one_binning_equal_their_own_fits():
    """One ``binned`` cache across two targets on the same rows (the backtest's folds): each target's boosters equal
    those fitted alone, though the cached Dataset's labels were replaced in between."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 8))
    x[rng.random(x.shape) < 0.1] = np.nan
    targets = {name: 0.3 * np.nan_to_num(x[:, k]) + rng.normal(size=300) for k, name in enumerate(("rel", "abs"))}
    specs = {name: ModelSpec("synthetic", "relative", {**PARAMS, "seed": 3 + k}, {**PARAMS, "seed": 5 + k})
             for k, name in enumerate(targets)}
    binned: dict = {}
    shared = {name: fit_boosters(x, y, (y > 0).astype(int), specs[name], binned) for name, y in targets.items()}
    assert len(binned) == 1  # binned once for four boosters
    test = rng.normal(size=(40, 8))
    for name, y in targets.items():
        alone = fit_boosters(x, y, (y > 0).astype(int), specs[name])
        for mine, reference in zip(shared[name], alone):
            assert np.array_equal(mine.predict(test), reference.predict(test))
