"""Plausible feature ranges derived from the lag table, features rounded at the source, and full-precision JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data import load_panel
from smallcap_regime.errors import RegimeError
from smallcap_regime.features.build import build_features, load_feature_spec, round_significant
from smallcap_regime.features.families import Feature
from smallcap_regime.features.ranges import feature_range, formula_range, input_ranges, plausible_ranges
from smallcap_regime.tracking import serving


def _feature(formula: str, unit: str = "basis points") -> Feature:
    return Feature("x", unit, formula, (), lambda panel: panel.iloc[:, 0])


def test_ranges_follow_from_the_lag_table_and_the_formula():
    names = input_ranges()
    assert (names["aaa"].lo, names["aaa"].hi) == (0, 30)  # [fred.AAA] range
    assert (names["yield_10y"].lo, names["yield_10y"].hi) == (-5, 30)  # DGS10 and GS10
    assert feature_range(_feature("aaa", "percent p.a."), names) == (0, 30)
    assert feature_range(_feature("100 * (baa - aaa)"), names) == (-3000, 3000)
    assert feature_range(_feature("x[t] - x[t-3], x = 100 * hy_oas"), names) == (-4000, 4000)
    assert feature_range(_feature("100 * (fed_funds - yield_1y) / 25", "number"), names) == (-140, 140)
    lo, hi = feature_range(_feature("100 * (cpi[t] / cpi[t-12] - 1)", "percent"), names)
    assert lo == pytest.approx(-99.99) and hi == pytest.approx(999900)
    # not plain arithmetic: the unit's bounds; unknown unit and formula: no range
    assert feature_range(_feature("prod(1 + small_ret[t-j], j=0..11) - 1", "decimal"), names) == (-1, math.inf)
    assert feature_range(_feature("1 if RS[t] > max(RS[t-j], j=1..12)", "flag 0/1"), names) == (0, 1)
    assert feature_range(_feature("consecutive months", "months (signed)"), names) is None
    assert formula_range("open(x)", names) is None


def test_every_sample_feature_has_a_range_its_history_respects(tmp_path):
    spec = load_feature_spec("sample")
    ranges = plausible_ranges(spec)
    assert set(spec.names) - set(ranges) == {"rotation_streak_months"}
    assert ranges["fwd_month"] == (1, 12) and ranges["aaa_pct"] == (0, 30)
    features = build_features(load_panel(tmp_path, "sample").frame, spec)
    for name, (lo, hi) in ranges.items():
        values = features[name].dropna()
        assert values.between(lo, hi).all(), name


def test_features_are_rounded_to_10_significant_digits(tmp_path):
    frame = pd.DataFrame({"a": [3.000000000000025, -1234.56789012345, 1.23456789012345e-7, 0.0, np.nan, np.inf]})
    assert round_significant(frame)["a"].tolist()[:4] == [3.0, -1234.56789, 1.23456789e-07, 0.0]
    assert np.isnan(round_significant(frame)["a"][4]) and np.isinf(round_significant(frame)["a"][5])
    # 100 * (aaa[t] - aaa[t-1]) of yields quoted to 2 decimals is a whole number of bp, without float noise
    features = build_features(load_panel(tmp_path, "sample").frame, load_feature_spec("sample"))
    changes = features["aaa_chg_1m_bp"].dropna()
    assert (changes == changes.round(0)).all()


def test_rest_client_sends_full_precision_and_nan_as_null(monkeypatch):
    sent = {}

    class Reply:
        status_code = 200

        @staticmethod
        def json():
            return {"predictions": [{"p_outperform": 0.5}]}

    def post(url, content, headers, timeout):
        sent.update(url=url, body=json.loads(content))
        return Reply()

    monkeypatch.setattr(serving.httpx, "post", post)
    row = pd.DataFrame({"a": [0.1 + 0.2], "b": [np.nan], "c": [1 / 3]})
    serving.predict_remote("http://127.0.0.1:1/", row)
    assert sent["url"] == "http://127.0.0.1:1/invocations"
    assert sent["body"] == {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.1 + 0.2, None, 1 / 3]]}}
    with pytest.raises(RegimeError, match="infinite feature value: the row cannot be sent"):
        serving.predict_remote("http://127.0.0.1:1", row.assign(a=np.inf))
