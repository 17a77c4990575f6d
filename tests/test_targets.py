"""Targets: forward compounded returns over t+1..t+h, on small SYNTHETIC panels computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.errors import DataFormatError
from smallcap_regime.features.targets import build_targets


def synthetic_panel(small: list[float], large: list[float], rf: list[float] | None = None) -> pd.DataFrame:
    """A synthetic monthly panel (made-up returns, decimal) on consecutive month ends."""
    index = pd.date_range("2001-01-31", periods=len(small), freq="ME", name="date")
    return pd.DataFrame(
        {"small_ret": small, "large_ret": large, "rf": rf if rf is not None else [0.001] * len(small)}, index=index
    )


def test_hand_computed_two_month_targets():
    panel = synthetic_panel([0.10, -0.05, 0.02, 0.03, 0.01], [0.00, 0.01, 0.02, -0.04, 0.05],
                            [0.001, 0.002, 0.003, 0.004, 0.005])
    t = build_targets(panel, horizon=2)
    assert list(t.columns) == ["relative_2m", "absolute_2m", "relative_2m_up", "absolute_2m_up", "tbill_2m"]
    assert (t.dtypes == "float64").all()
    # origin 2001-01: the next two months are Feb and Mar (rows 1 and 2), never the origin month itself
    small, large = 0.95 * 1.02, 1.01 * 1.02
    assert t["absolute_2m"].iloc[0] == pytest.approx(small - 1)  # -0.031
    assert t["relative_2m"].iloc[0] == pytest.approx(small - large)  # -0.0612
    assert t["tbill_2m"].iloc[0] == pytest.approx(1.002 * 1.003 - 1)
    assert t["relative_2m_up"].iloc[0] == 0.0 and t["absolute_2m_up"].iloc[0] == 0.0
    # origin 2001-02: Mar and Apr
    assert t["relative_2m"].iloc[1] == pytest.approx(1.02 * 1.03 - 1.02 * 0.96)
    assert t["relative_2m_up"].iloc[1] == 1.0 and t["absolute_2m_up"].iloc[1] == 1.0
    # the last h rows are the ones being forecast: no target, no label
    assert t.iloc[-2:].isna().all().all()
    assert t.iloc[:-2].notna().all().all()


def test_one_month_horizon_is_next_month_difference():
    panel = synthetic_panel([0.03, 0.01, -0.02], [0.01, 0.04, 0.00])
    t = build_targets(panel, horizon=1)
    np.testing.assert_allclose(t["relative_1m"].iloc[:2], [0.01 - 0.04, -0.02 - 0.00])
    assert t["relative_1m"].isna().tolist() == [False, False, True]


def test_target_at_t_ignores_returns_up_to_t():
    rng = np.random.default_rng(3)
    panel = synthetic_panel(list(rng.normal(0.01, 0.05, 12)), list(rng.normal(0.01, 0.04, 12)))
    changed = panel.copy()
    changed.iloc[:6] = 0.5  # rewrite months up to the origin at row 5
    pd.testing.assert_series_equal(build_targets(panel)["relative_3m"].iloc[5:],
                                   build_targets(changed)["relative_3m"].iloc[5:])


def test_missing_return_inside_window_gives_nan_target():
    panel = synthetic_panel([0.01, 0.02, np.nan, 0.01, 0.02, 0.03], [0.0] * 6)
    t = build_targets(panel, horizon=2)
    assert t["relative_2m"].isna().tolist() == [True, True, False, False, True, True]  # rows 0, 1 contain row 2
    assert t["relative_2m_up"].isna().tolist() == t["relative_2m"].isna().tolist()


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True, "3"])
def test_bad_horizon(horizon):
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1 \(months\), got"):
        build_targets(synthetic_panel([0.01] * 4, [0.01] * 4), horizon=horizon)


def test_missing_columns_are_named():
    panel = synthetic_panel([0.01] * 4, [0.01] * 4).drop(columns=["rf"])
    with pytest.raises(DataFormatError, match=r"monthly panel: build_targets needs column\(s\) .*; missing: rf$"):
        build_targets(panel)


def test_gap_in_months_is_rejected():
    panel = synthetic_panel([0.01] * 4, [0.01] * 4).drop(index=pd.Timestamp("2001-02-28"))
    with pytest.raises(DataFormatError, match="consecutive months .* 2001-01-31 is followed by 2001-03-31"):
        build_targets(panel)
