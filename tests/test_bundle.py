"""The deployable bundle's batch predictions equal the per-row implementation they replaced, and its records (the
serving path) equal the frame."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd

from smallcap_regime.features.labels import feature_text
from smallcap_regime.models.bundle import OUTPUT_COLUMNS, PROB_COLUMN, RegimeModel, as_records
from smallcap_regime.models.calibration import Platt, probability_points
from smallcap_regime.models.lgbm import TARGETS
from smallcap_regime.models.regime import regime_labels
from smallcap_regime.models.skill import record_columns

from helpers import scoring_json


def _reference_predict(model: RegimeModel, x: pd.DataFrame, n_drivers: int = 3) -> pd.DataFrame:
    """The former implementation (pandas frames into LightGBM, drivers ranked row by row), kept as the oracle."""
    values = x[model.features].astype("float64")
    out = pd.DataFrame(index=x.index)
    for target in TARGETS:
        m = model.maps[target]
        raw_f = model.boosters[f"{target}_regressor"].predict(values)
        f = (m.prevailing_mean + m.shrink_weight * (raw_f - m.prevailing_mean) if model.has_skill(target)
             else np.full(len(values), m.prevailing_mean))  # no skill: the historical mean, no forecast of its own
        raw_p = model.boosters[f"{target}_classifier"].predict(values)
        out[PROB_COLUMN[target]] = (Platt(m.platt_a, m.platt_b)(raw_p) if model.has_skill(target)
                                    else np.full(len(values), m.base_rate))
        out[f"{target}_forecast"] = f
        out[f"{target}_lo"] = f + m.interval_lo
        out[f"{target}_hi"] = f + m.interval_hi
    labels = regime_labels(out["p_outperform"], out["p_positive"], model.no_call_band,
                           model.maps["relative"].base_rate, model.maps["absolute"].base_rate,
                           skilled=(model.has_skill("relative"), model.has_skill("absolute")))
    out["regime"], out["regime_leaning"], out["confidence"] = labels["regime"], labels["leaning"], labels["confidence"]
    for target in TARGETS:
        booster, m = model.boosters[f"{target}_classifier"], model.maps[target]
        raw = booster.predict(values, raw_score=True)
        contrib = booster.predict(values, pred_contrib=True)[:, :-1]
        points = pd.DataFrame(probability_points(contrib, raw, Platt(m.platt_a, m.platt_b)), index=values.index,
                              columns=model.features)
        ups, downs = [], []
        for idx in points.index:
            row = points.loc[idx]
            for side, keep, rows in ((1, row > 0, ups), (-1, row < 0, downs)):
                top = (-side * row[keep]).sort_values(kind="stable").index[:n_drivers]
                rows.append("; ".join(f"{feature_text(name, values.loc[idx, name])}: {row[name]:+.1f} pts"
                                      for name in top))
        out[f"{target}_drivers_up"] = ups if model.has_skill(target) else ""
        out[f"{target}_drivers_down"] = downs if model.has_skill(target) else ""
        for name, column in record_columns(target, out[PROB_COLUMN[target]].to_numpy(), m.base_rate,
                                           model.skill.get(target)).items():
            out[name] = column
    return out[OUTPUT_COLUMNS]


def test_batch_predictions_equal_the_per_row_reference(trained_home):
    _home, result = trained_home
    model = result.model
    # every origin of the real sample (early rows carry NaN features), columns shuffled and one extra column
    batch = result.backtest.features.sample(frac=1.0, axis=1, random_state=3).assign(unused=1.0)
    fast = model.predict(batch)
    pd.testing.assert_frame_equal(fast, _reference_predict(model, batch), check_exact=True)
    assert len(fast) > 500
    for side in ("up", "down"):  # three a side (in words, e.g. "12-month market excess return +19.0 %: -2.5 pts")
        assert fast[f"relative_drivers_{side}"].str.count(";").eq(2).mean() > 0.9
        assert fast[f"relative_drivers_{side}"].str.contains(r" pts$").all()
    small = batch.tail(5)  # below PARALLEL_ROWS: the single-threaded path
    pd.testing.assert_frame_equal(model.predict(small), _reference_predict(model, small), check_exact=True)


def test_contributions_add_up_to_the_raw_log_odds(trained_home):
    _home, result = trained_home
    x = result.backtest.features.tail(50)
    for target in TARGETS:
        contrib = result.model.contributions(x, target)
        assert list(contrib.columns) == result.model.features
        raw = result.model.boosters[f"{target}_classifier"].predict(x.to_numpy(), raw_score=True)
        bias = result.model.boosters[f"{target}_classifier"].predict(x.to_numpy(), pred_contrib=True)[:, -1]
        assert np.allclose(contrib.sum(axis=1).to_numpy() + bias, raw)


def test_records_encode_like_the_frame_with_and_without_a_skill_record(trained_home):
    _home, result = trained_home
    values = result.backtest.features[result.model.features].to_numpy(dtype="float64")
    unrecorded = copy.copy(result.model)
    unrecorded.skill = {}  # a model trained without a backtest record: NaN record columns
    for model in (result.model, unrecorded):
        columns = model.predict_columns(values)
        records = as_records(columns, len(values))
        assert scoring_json(records) == scoring_json(pd.DataFrame(columns))
    assert math.isnan(records[0]["relative_auc"]) and records[0]["relative_base_rate"] > 0
