"""Feature families, specs, point-in-time property and catalogue.

All panels here are SYNTHETIC (made-up numbers on a month-end index), small enough to check by hand; the real
offline sample is exercised by the backtest tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.configs import load_config
from smallcap_regime.data.schema import panel_columns
from smallcap_regime.errors import ConfigError, DataFormatError
from smallcap_regime.features.build import build_features, load_feature_spec, parse_feature_spec
from smallcap_regime.features.catalogue import (
    catalogue_markdown,
    coverage,
    family_coverage,
    feature_catalogue,
    input_lags,
)
from smallcap_regime.features.families import FAMILIES

SAMPLE_COLUMNS = ["small_ret", "large_ret", "rf", "mkt_excess_ret", "smb", "hml", "aaa", "baa", "cpi"]


@pytest.fixture(scope="module")
def default_spec():
    return load_feature_spec("default")


@pytest.fixture(scope="module")
def sample_spec():
    return load_feature_spec("sample")


def synthetic_panel(start: str = "2020-01-31", **columns: list[float]) -> pd.DataFrame:
    """A synthetic panel with the given columns (made-up values) on consecutive month ends."""
    n = len(next(iter(columns.values())))
    index = pd.date_range(start, periods=n, freq="ME", name="date")
    return pd.DataFrame({k: np.asarray(v, dtype="float64") for k, v in columns.items()}, index=index)


def synthetic_rich_panel(n: int = 216, seed: int = 0) -> pd.DataFrame:
    """A synthetic panel with every column the data layer can produce (random walks and noise, 2005-01 on),
    short interest only from 2018-01 as in live data."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2005-01-31", periods=n, freq="ME", name="date")
    frame = {}
    for name in panel_columns():
        if name.endswith("_ret") or name in ("smb", "hml"):
            frame[name] = rng.normal(0.008, 0.05, n)
        elif name == "rf":
            frame[name] = rng.uniform(0.0, 0.004, n)
        elif name.endswith("_rvar"):
            frame[name] = rng.uniform(0.0005, 0.01, n)
        elif name.startswith("yield_") or name in ("fed_funds", "aaa", "baa", "baa_10y_spread", "hy_oas", "unrate",
                                                   "nfci"):
            frame[name] = 3.0 + np.cumsum(rng.normal(0, 0.15, n))
        else:  # positive levels: indexes, counts, days to cover
            frame[name] = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    panel = pd.DataFrame(frame, index=index)
    panel.loc[panel.index < "2018-01-01", [c for c in panel if c.startswith("si_")]] = np.nan
    return panel


def build_one(spec, panel: pd.DataFrame, name: str) -> pd.Series:
    return build_features(panel, spec)[name]


# ---------------------------------------------------------------------------------------------------------------
# Families against hand calculations


def test_yields_changes_levels_and_slopes(default_spec):
    panel = synthetic_panel(yield_10y=[4.00, 4.10, 4.20, 4.35, 4.30], yield_2y=[4.0, 4.0, 3.9, 4.0, 4.1],
                            yield_3m=[5.0] * 5)
    f = build_features(panel, default_spec)
    assert f["yield_10y_chg_3m_bp"].iloc[3] == pytest.approx(35.0)
    assert f["yield_10y_chg_1m_bp"].iloc[4] == pytest.approx(-5.0)
    assert f["yield_10y_chg_3m_bp"].iloc[:3].isna().all()  # window not complete: NaN, not 0
    assert f["yield_10y_pct"].iloc[3] == pytest.approx(4.35)
    assert f["yield_2y_chg_1m_bp"].iloc[2] == pytest.approx(-10.0)
    assert f["slope_10y_2y_bp"].iloc[3] == pytest.approx(35.0)
    assert f["slope_10y_3m_bp"].iloc[0] == pytest.approx(-100.0)
    assert f["slope_10y_3m_chg_3m_bp"].iloc[4] == pytest.approx(20.0)  # 4.30 vs 4.10, bill unchanged


def test_rate_cut_expectations(default_spec):
    panel = synthetic_panel(fed_funds=[5.0, 5.0, 5.0, 5.25], yield_1y=[3.5, 3.25, 3.5, 4.25],
                            yield_3m=[4.8, 4.8, 4.7, 5.2], yield_2y=[3.2] * 4)
    f = build_features(panel, default_spec)
    assert f["implied_cuts_1y_count"].tolist() == pytest.approx([6.0, 7.0, 6.0, 4.0])
    assert f["implied_cuts_1y_chg_1m_count"].iloc[1] == pytest.approx(1.0)
    assert f["implied_cuts_1y_chg_3m_count"].iloc[3] == pytest.approx(-2.0)
    assert f["yield_3m_minus_fed_funds_bp"].iloc[0] == pytest.approx(-20.0)
    assert f["yield_2y_minus_fed_funds_chg_3m_bp"].iloc[3] == pytest.approx(-25.0)


def test_seasonality_describes_the_forecast_window(default_spec):
    # origins: Oct 2023 (window Nov-Jan), Nov 2023 (Dec-Feb), Dec 2023 (Jan-Mar), Jan 2024 (Feb-Apr)
    panel = synthetic_panel(start="2023-10-31", small_ret=[0.0] * 4)
    f = build_features(panel, default_spec)
    assert f["fwd_3m_has_january_flag"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert f["fwd_3m_has_nov_jan_flag"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert f["fwd_3m_has_december_flag"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert f["fwd_month"].tolist() == [11.0, 12.0, 1.0, 2.0]
    assert f["fwd_month_sin"].iloc[1] == pytest.approx(0.0, abs=1e-12)
    assert f["fwd_month_cos"].iloc[1] == pytest.approx(1.0)
    assert f["fwd_month_sin"].iloc[2] == pytest.approx(math.sin(2 * math.pi / 12))
    # the window starting in 2024 (a presidential election year) is code 0; Dec 2023 is pre-election (3)
    assert f["fwd_pres_cycle"].tolist() == [3.0, 3.0, 0.0, 0.0]
    assert f["fwd_pres_election_flag"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert f["fwd_pres_pre_election_flag"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert f[["fwd_pres_post_election_flag", "fwd_pres_midterm_flag"]].eq(0.0).all().all()
    assert default_spec.categorical == ["fwd_month", "fwd_pres_cycle"]


def test_short_interest_is_nan_before_data_not_zero(default_spec):
    nan = np.nan
    panel = synthetic_panel(start="2017-10-31", si_iwm_days_to_cover=[nan, nan, 5.0, 6.0, 6.5, 8.0],
                            si_spy_days_to_cover=[nan, nan, 2.0, 2.0, 2.5, 1.0],
                            si_iwm_short_shares=[nan, nan, 100.0, 110.0, 99.0, 120.0],
                            si_spy_short_shares=[nan, nan, 50.0, 50.0, 50.0, 50.0])
    f = build_features(panel, default_spec)
    si = f[[c for c in f if c.startswith("si_")]]
    assert si.iloc[:2].isna().all().all()
    assert f["si_iwm_dtc_days"].iloc[3] == 6.0
    assert f["si_iwm_dtc_chg_1m_days"].iloc[3] == pytest.approx(1.0)
    assert f["si_iwm_dtc_chg_3m_days"].iloc[5] == pytest.approx(3.0)
    assert np.isnan(f["si_iwm_dtc_chg_3m_days"].iloc[4])  # 3 months back is before the data: unknown
    assert f["si_dtc_iwm_minus_spy_days"].iloc[5] == pytest.approx(7.0)
    assert f["si_dtc_iwm_minus_spy_chg_1m_days"].iloc[5] == pytest.approx(3.0)
    assert f["si_iwm_short_shares_chg_1m_pct"].iloc[3] == pytest.approx(10.0)
    assert f["si_iwm_short_shares_chg_3m_pct"].iloc[5] == pytest.approx(20.0)


def test_credit_spreads_in_bp(default_spec):
    panel = synthetic_panel(baa=[6.0, 6.2, 6.1, 6.5], aaa=[5.0, 5.0, 5.1, 5.0], baa_10y_spread=[2.0, 2.1, 2.3, 2.4],
                            hy_oas=[4.5, 5.0, 4.0, 6.0], nfci=[-0.5, -0.4, -0.2, 0.1])
    f = build_features(panel, default_spec)
    assert f["baa_aaa_spread_bp"].tolist() == pytest.approx([100.0, 120.0, 100.0, 150.0])
    assert f["baa_aaa_spread_chg_3m_bp"].iloc[3] == pytest.approx(50.0)
    assert f["baa_10y_spread_bp"].iloc[0] == pytest.approx(200.0)
    assert f["hy_oas_bp"].iloc[0] == pytest.approx(450.0)
    assert f["hy_oas_chg_1m_bp"].iloc[3] == pytest.approx(200.0)
    assert f["nfci_std"].iloc[3] == pytest.approx(0.1)
    assert f["nfci_chg_3m_std"].iloc[3] == pytest.approx(0.6)


def test_macro(default_spec):
    n = 13
    panel = synthetic_panel(unrate=[4.0] * 10 + [4.2, 4.4, 4.5], cpi=[100.0] + [101.0] * 11 + [103.0],
                            umcsent=[90.0] * 9 + [85, 80, 81, 70.0], usd_broad=[100.0] * 9 + [100, 100, 100, 95.0],
                            mmf_assets=[4e6] * 9 + [4e6, 4e6, 4e6, 5e6], vix=[20.0] * (n - 1) + [35.0])
    f = build_features(panel, default_spec).iloc[-1]
    assert f["unrate_chg_3m_pp"] == pytest.approx(0.5)
    assert f["cpi_yoy_pct"] == pytest.approx(3.0)
    assert f["umcsent_chg_3m_pts"] == pytest.approx(-15.0)
    assert f["usd_broad_chg_3m_pct"] == pytest.approx(-5.0)
    assert f["mmf_assets_chg_3m_pct"] == pytest.approx(25.0)
    assert f["vix_pts"] == 35.0
    assert np.isnan(build_features(panel, default_spec)["cpi_yoy_pct"].iloc[11])  # 12 months back does not exist


def test_rotation_streak_is_signed_and_restarts(default_spec):
    small = [0.02, 0.03, 0.01, -0.01, -0.02, 0.01, 0.01, np.nan, 0.05]
    large = [0.01, 0.01, 0.00, 0.00, 0.00, 0.01, 0.00, 0.00, 0.00]
    streak = build_one(default_spec, synthetic_panel(small_ret=small, large_ret=large), "rotation_streak_months")
    np.testing.assert_array_equal(streak, [1, 2, 3, -1, -2, 0, 1, np.nan, 1])


def test_relative_strength_momentum_trend_drawdown_breakout(default_spec):
    small = [0.10, 0.10, 0.10, -0.10, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    panel = synthetic_panel(small_ret=small, large_ret=[0.0] * len(small))
    f = build_features(panel, default_spec)
    assert f["rs_mom_1m"].iloc[0] == pytest.approx(0.10)
    assert f["rs_mom_3m"].iloc[2] == pytest.approx(1.1**3 - 1)
    assert np.isnan(f["rs_mom_3m"].iloc[1])
    assert f["small_mom_6m"].iloc[5] == pytest.approx(1.1**3 * 0.9 - 1)
    assert f["rs_drawdown"].iloc[3] == pytest.approx(-0.10)  # RS 1.331 -> 1.1979
    assert f["rs_drawdown"].iloc[2] == 0.0
    # RS = 1.1979 from row 3 to 12: ten equal values -> zero distance from the 10-month average at row 12
    assert f["rs_dist_ma_10m"].iloc[12] == pytest.approx(0.0)
    assert f["rs_dist_ma_10m"].iloc[13] == pytest.approx(1.5 / (1.5 + 9) * 10 - 1)
    assert np.isnan(f["rs_dist_ma_10m"].iloc[8])
    # breakout: row 12 is not above the prior 12-month high (1.331); row 13 (x1.5) is
    assert f["rs_breakout_12m_high_flag"].iloc[12] == 0.0
    assert f["rs_breakout_12m_high_flag"].iloc[13] == 1.0
    assert f["rs_breakout_12m_high_flag"].iloc[:12].isna().all()


def test_realized_volatility_from_daily_rvar(default_spec):
    panel = synthetic_panel(small_rvar=[0.001, 0.002, 0.003], large_rvar=[0.0005, 0.0005, 0.0005])
    f = build_features(panel, default_spec)
    assert f["small_rvol_1m_ann"].iloc[0] == pytest.approx(math.sqrt(0.001 * 12))
    assert f["small_rvol_3m_ann"].iloc[2] == pytest.approx(math.sqrt(0.006 * 12 / 3))
    assert f["large_rvol_3m_ann"].iloc[2] == pytest.approx(math.sqrt(0.0005 * 12))
    assert f["rvol_ratio_small_large_3m"].iloc[2] == pytest.approx(2.0)
    assert f["small_rvol_3m_ann"].iloc[:2].isna().all()


def test_monthly_volatility_fallback_has_its_own_name(sample_spec):
    small = [0.01, 0.03, -0.02, 0.05, 0.00, 0.02]
    panel = synthetic_panel(small_ret=small, large_ret=[0.01, -0.01] * 3)
    f = build_features(panel, sample_spec)
    assert not any("rvol" in c for c in f)
    assert f["small_mvol_6m_ann"].iloc[5] == pytest.approx(np.std(small, ddof=1) * math.sqrt(12))
    assert f["mvol_ratio_small_large_6m"].iloc[5] == pytest.approx(np.std(small, ddof=1) / np.std([0.01, -0.01] * 3,
                                                                                                    ddof=1))


def test_factor_momentum_compounds(default_spec):
    panel = synthetic_panel(smb=[0.01, 0.02, -0.01])
    assert build_one(default_spec, panel, "smb_mom_3m").iloc[2] == pytest.approx(1.01 * 1.02 * 0.99 - 1)


# ---------------------------------------------------------------------------------------------------------------
# Point in time, missing inputs


@pytest.mark.parametrize("spec_name", ["default", "sample", "default+valuation"])
def test_feature_at_t_depends_only_on_rows_up_to_t(spec_name):
    name, _, extra = spec_name.partition("+")
    spec = load_feature_spec(name)
    spec = spec.with_families(extra) if extra else spec
    panel = synthetic_rich_panel()
    full = build_features(panel, spec)
    rng = np.random.default_rng(7)
    # origins after the short-interest start (2018-01) and its 3-month changes, so every family is non-trivial
    for pos in rng.choice(np.arange(162, len(panel) - 1), size=4, replace=False):
        t = panel.index[pos]
        truncated = build_features(panel.loc[:t], spec).loc[t]
        garbage = panel.copy()
        garbage.iloc[pos + 1:] = rng.normal(1e3, 1e3, garbage.iloc[pos + 1:].shape)
        garbage.iloc[pos + 1::3] = np.nan
        scrambled = build_features(garbage, spec).loc[t]
        np.testing.assert_array_equal(truncated.to_numpy(), full.loc[t].to_numpy(), err_msg=f"truncated at {t}")
        np.testing.assert_array_equal(scrambled.to_numpy(), full.loc[t].to_numpy(), err_msg=f"garbage after {t}")
        valid = full.loc[t].notna().groupby(spec.family_of()).any()
        assert valid.all(), f"families with no value at {t}: {list(valid[~valid].index)}"


def test_absent_and_all_nan_columns_give_nan_features(default_spec):
    panel = synthetic_panel(small_ret=[0.01, 0.02, -0.01, 0.03] * 6, large_ret=[0.0, 0.01, 0.01, 0.02] * 6,
                            vix=[np.nan] * 24)
    f = build_features(panel, default_spec)
    assert list(f.columns) == default_spec.names
    assert f.index.equals(panel.index)
    assert (f.dtypes == "float64").all()
    inputs = {feat.name: set(feat.inputs) for feat in default_spec.features}
    missing_input = [n for n, cols in inputs.items() if cols and not cols <= {"small_ret", "large_ret"}]
    assert f[missing_input].isna().all().all()  # yields, credit, macro, short interest, rvol, factors: NaN, no 0
    assert f["rs_mom_12m"].iloc[11:].notna().all()
    assert f["fwd_month"].notna().all()


def test_empty_panel_builds_empty_frame(default_spec):
    empty = pd.DataFrame(index=pd.DatetimeIndex([], name="date"))
    f = build_features(empty, default_spec)
    assert f.shape == (0, len(default_spec.features))


def test_non_monthly_index_is_rejected(default_spec):
    panel = synthetic_panel(small_ret=[0.0] * 3)
    panel.index = pd.DatetimeIndex(["2021-01-31", "2021-02-28", "2021-02-28"], name="date")
    with pytest.raises(DataFormatError, match="consecutive months"):
        build_features(panel, default_spec)
    panel.index = pd.DatetimeIndex(["2021-01-31", "2021-02-15", "2021-03-31"], name="date")
    with pytest.raises(DataFormatError, match="month-end dates"):
        build_features(panel, default_spec)


# ---------------------------------------------------------------------------------------------------------------
# Specs and catalogue


def test_both_specs_load_and_list_every_family(default_spec, sample_spec):
    assert set(default_spec.families) == set(FAMILIES) - {"valuation"}
    assert default_spec.disabled == ("valuation",) and set(default_spec.held) == {"valuation"}  # not model input
    assert len(default_spec.features) == 96
    assert len(default_spec.with_families("valuation").features) == 100
    assert len(sample_spec.features) == 50
    assert sample_spec.disabled == ("rate_cuts", "short_interest", "valuation") and not sample_spec.held
    assert set(sample_spec.families) | set(sample_spec.disabled) == set(FAMILIES)
    assert "aaa_chg_3m_bp" in sample_spec.names and "yield_10y_chg_3m_bp" in default_spec.names
    # columns sorted by family (registry order), then name
    order = list(FAMILIES)
    keys = [(order.index(f.family), f.name) for f in default_spec.features]
    assert keys == sorted(keys)


def test_sample_spec_builds_on_sample_columns_with_data_in_every_feature(sample_spec):
    panel = synthetic_rich_panel(n=60)[SAMPLE_COLUMNS]
    f = build_features(panel, sample_spec)
    assert f.notna().any().all()
    first = panel.iloc[0]
    assert f["slope_aaa_tbill_1m_bp"].iloc[0] == pytest.approx(100 * (first["aaa"] - 1200 * first["rf"]))


def test_catalogue_flags_proxies_and_unavailable_families(sample_spec):
    entries = {e["name"]: e for e in feature_catalogue(sample_spec)}
    assert set(entries) == set(sample_spec.names)
    aaa = entries["aaa_chg_3m_bp"]
    assert aaa["proxy"] and aaa["note"].startswith("PROXY aaa: Moody's Aaa")
    assert aaa["source_series"] == ["aaa"] and aaa["publication_lag"] == "1m (AAA)"
    slope = entries["slope_aaa_tbill_1m_bp"]
    assert slope["source_series"] == ["aaa", "rf"] and "PROXY yield_tbill_1m" in slope["note"]
    assert entries["cpi_yoy_pct"]["proxy"] and "core CPI" in entries["cpi_yoy_pct"]["note"]
    assert not entries["rs_mom_3m"]["proxy"]
    assert entries["rs_mom_3m"]["publication_lag"] == "0d, market prices"
    assert entries["fwd_month"]["publication_lag"].startswith("none (calendar")
    assert "fallback estimator" in entries["small_mvol_6m_ann"]["note"]
    md = catalogue_markdown(sample_spec)
    assert "| rate_cuts | 0 | unavailable | no effective fed funds rate" in md
    assert "| short_interest | 0 | unavailable | FINRA short interest starts in 2018" in md
    assert "- `aaa`: Moody's Aaa corporate bond yield" in md
    assert "PROXY (aaa, see Proxies)" in md


def test_catalogue_lags_come_from_the_live_lag_table(default_spec):
    entries = {e["name"]: e for e in feature_catalogue(default_spec)}
    assert entries["yield_10y_chg_3m_bp"]["publication_lag"] == "1d (DGS10) or 1m (GS10, fallback)"
    assert entries["si_iwm_dtc_days"]["publication_lag"].startswith("12d (FINRA")
    assert entries["mmf_assets_chg_3m_pct"]["publication_lag"] == "3m (MMMFFAQ027S)"
    assert "approximation" in entries["implied_cuts_1y_count"]["note"]
    assert not any(e["proxy"] for e in entries.values())
    lags = input_lags()
    assert set(panel_columns()) <= set(lags), "every panel column needs a publication lag"


def test_coverage_per_feature_and_family(default_spec):
    panel = synthetic_rich_panel()
    f = build_features(panel, default_spec)
    cov = coverage(f, default_spec)
    assert cov.loc["si_iwm_dtc_days", "first_valid"] == pd.Timestamp("2018-01-31")
    assert cov.loc["si_iwm_dtc_chg_3m_days", "first_valid"] == pd.Timestamp("2018-04-30")
    assert cov.loc["si_iwm_dtc_days", "share_missing"] == pytest.approx(156 / 216)
    assert cov.loc["fwd_month", "family"] == "seasonality"
    fam = family_coverage(f, default_spec)
    assert fam.loc["short_interest", "n_features"] == 13
    assert fam.loc["short_interest", "all_started"] == pd.Timestamp("2018-04-30")
    md = catalogue_markdown(default_spec, f)
    assert "| `si_iwm_dtc_days` | IWM short interest, days to cover | short_interest |" in md
    assert "| 2018-01 | 72.2 % |" in md


# ---------------------------------------------------------------------------------------------------------------
# Spec validation


@pytest.fixture
def raw_default() -> dict:
    raw, _ = load_config("features", "default")
    return raw


def check(raw: dict) -> None:
    parse_feature_spec(raw, Path("/specs/broken.toml"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(yeilds={"long": "yield_10y"}), r"/specs/broken.toml: unknown family \[yeilds\]; expected"),
        (lambda r: r.update(horizon=3), r"broken.toml: unknown top-level key 'horizon'"),
        (lambda r: r.pop("description"), r"broken.toml: missing required key 'description'"),
        (lambda r: r["yields"].pop("long"), r"broken.toml \[yields\]: missing required key 'long'"),
        (lambda r: r["yields"].update(changes_months=[0, 3]),
         r"\[yields\]: changes_months: must be a non-empty list of distinct integers >= 1 \(months\), got \[0, 3\]"),
        (lambda r: r["yields"].update(changes_months=3), r"\[yields\]: changes_months: must be a non-empty list"),
        (lambda r: r["yields"].update(changes_months=[3, 3]), r"\[yields\]: changes_months: .* got \[3, 3\]"),
        (lambda r: r["technical"].update(ma_months=1), r"\[technical\]: ma_months: must be an integer >= 2"),
        (lambda r: r["yields"].update(chnages_months=[1]), r"\[yields\]: unknown key 'chnages_months'; expected"),
        (lambda r: r["yields"].update(long="yield_30y"), r"\[yields\]: long: unknown panel column 'yield_30y'"),
        (lambda r: r["rate_cuts"].update(cut_size_bp=0), r"\[rate_cuts\]: cut_size_bp: must be a number > 0"),
        (lambda r: r["technical"].update(vol_source="weekly"),
         r"\[technical\]: vol_source: must be one of 'daily', 'monthly', got 'weekly'"),
        (lambda r: r["technical"].pop("small_rvar"),
         r"\[technical\]: vol_source = \"daily\" needs both 'small_rvar' and 'large_rvar'"),
        (lambda r: r["credit"].pop("aaa"), r"\[credit\]: 'baa' and 'aaa' go together"),
        (lambda r: r["short_interest"].update(large="iwm"),
         r"\[short_interest\]: 'small' and 'large' must be different"),
        (lambda r: r["macro"].update(enabled=False), r"\[macro\]: enabled = false needs a 'note'"),
        (lambda r: r.update(proxies={"aaa_yield": "x"}), r"\[proxies\]: unknown panel column 'aaa_yield'"),
        (lambda r: r["valuation"].update(window_months=6),
         r"\[valuation\]: window_months: must be an integer >= 12 \(months\), got 6"),  # held, yet validated
        (lambda r: r["valuation"].update(large_btm="btm_size_q1"),
         r"\[valuation\]: 'small_btm' and 'large_btm' must be different columns"),
        (lambda r: r["credit"].update(hy_oas="baa_10y_spread"),
         r"feature 'baa_10y_spread_bp' is produced by both \[credit\] and \[credit\]"),
    ],
)
def test_spec_validation_messages(raw_default, edit, message):
    edit(raw_default)
    with pytest.raises(ConfigError, match=message):
        check(raw_default)


def test_disabled_family_needs_only_a_note(raw_default):
    raw_default["macro"] = {"enabled": False, "note": "not wanted here"}
    spec = parse_feature_spec(raw_default, Path("x.toml"))
    assert "macro" in spec.disabled and not any(f.family == "macro" for f in spec.features)


def test_spec_file_errors_name_the_file(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('description = "x"\n[technical]\nsmall_ret = "small_ret"\n')
    with pytest.raises(ConfigError, match=rf"{path.name} \[technical\]: missing required key 'large_ret'"):
        load_feature_spec(path)
    path.write_text('description = "nothing"\n')
    with pytest.raises(ConfigError, match="no enabled family"):
        load_feature_spec(path)


def test_offline_sample_features_have_the_coverage_the_catalogue_states(sample_spec):
    """Real offline sample: every feature has data, and the catalogue's coverage columns are the measured ones."""
    from smallcap_regime.data.sample import load_sample_panel

    panel = load_sample_panel()
    features = build_features(panel.frame, sample_spec)
    cov = coverage(features, sample_spec)
    assert cov["first_valid"].notna().all(), "no all-NaN feature on the offline sample"
    # warm-ups: 12-month windows start by 1950-01; inflation YoY needs core CPI (from 1957) plus a year
    assert cov["first_valid"].max() == pd.Timestamp("1958-02-28")
    assert (cov.drop(index="cpi_yoy_pct")["first_valid"] <= pd.Timestamp("1950-01-31")).all()
    assert (cov["last_valid"] == pd.Timestamp("2017-03-31")).all()
    md = catalogue_markdown(sample_spec, features)
    for name, row in cov.iterrows():
        stated = f"| {row['first_valid']:%Y-%m} | {100 * row['share_missing']:.1f} % |"
        line = next(line for line in md.splitlines() if line.startswith(f"| `{name}` |"))
        assert line.endswith(stated), (name, line, stated)


def test_a_series_added_to_the_series_table_is_a_panel_column_specs_may_use(tmp_path, monkeypatch):
    from smallcap_regime.data.catalog import CATALOG_PATH

    spec = tmp_path / "move.toml"
    spec.write_text('description = "MOVE index as the volatility input"\n'
                    '[macro]\nvix = "move_index"\nchanges_months = [1]\n')
    with pytest.raises(ConfigError, match=r"\[macro\]: vix: unknown panel column 'move_index'"):
        load_feature_spec(spec)
    table = tmp_path / "series.toml"
    table.write_text(CATALOG_PATH.read_text() + '\n[fred.MOVE]\nname = "move_index"\nunit = "index points"\n'
                     'freq = "daily"\nlag = "1d"\nmax_age = "10d"\nrange = [0, 500]\n')
    monkeypatch.setenv("REGIME_SERIES_FILE", str(table))
    assert panel_columns()["move_index"] == "index points (FRED MOVE)"
    assert any("move_index" in f.inputs for f in load_feature_spec(spec).features)
