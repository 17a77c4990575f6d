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
