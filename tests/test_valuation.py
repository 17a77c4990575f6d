"""The valuation family (small-minus-big log book-to-market spread) and the descriptive valuation reading.

Hand calculations use SYNTHETIC panels (made-up book-to-market ratios, labelled so); the reading's record is also
checked on the real files in tests/data/realdata (Ken French, to 2018-12), parsed without the network.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data.book_to_market import size_quintile_book_to_market
from smallcap_regime.data.french import parse_factors, parse_portfolios_25, parse_portfolios_me
from smallcap_regime.errors import ConfigError, NoDataError
from smallcap_regime.features.build import build_features, load_feature_spec
from smallcap_regime.features.catalogue import catalogue_markdown, feature_catalogue
from smallcap_regime.features.families import trailing_z_bound
from smallcap_regime.features.ranges import plausible_ranges
from smallcap_regime.features.valuation import (
    valuation_calls,
    valuation_reading,
    valuation_record,
    valuation_series,
)

NAMES = ["smb_btm_spread_log", "smb_btm_spread_chg_12m_log", "smb_btm_spread_z_120m_std",
         "smb_btm_spread_rank_120m_pct"]


@pytest.fixture(scope="module")
def spec():
    return load_feature_spec("default").with_families("valuation")


def synthetic_btm_panel(n: int = 180, seed: int = 3) -> pd.DataFrame:
    """SYNTHETIC: random-walk book-to-market ratios of the two quintiles and made-up leg returns."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2000-01-31", periods=n, freq="ME", name="date")
    return pd.DataFrame({
        "btm_size_q1": np.exp(0.3 + np.cumsum(rng.normal(0, 0.03, n))),
        "btm_size_q5": np.exp(-0.5 + np.cumsum(rng.normal(0, 0.02, n))),
        "small_ret": rng.normal(0.01, 0.06, n), "large_ret": rng.normal(0.008, 0.04, n),
        "rf": np.full(n, 0.002),
    }, index=index)


@pytest.fixture(scope="module")
def real_panel(realdata_dir) -> pd.DataFrame:
    """Real: Lo 30 / Hi 30 legs, rf, and the size quintiles' book-to-market, 1926-07..2018-12."""
    french = realdata_dir / "french"
    legs = parse_portfolios_me((french / "Portfolios_Formed_on_ME_CSV.zip").read_bytes(), "me")
    rf = parse_factors((french / "F-F_Research_Data_Factors_CSV.zip").read_bytes(), "ff")["RF"]
    btm = size_quintile_book_to_market(parse_portfolios_25((french / "25_Portfolios_5x5_CSV.zip").read_bytes(), "25"))
    return pd.DataFrame({"small_ret": legs["Lo 30"], "large_ret": legs["Hi 30"], "rf": rf}).join(btm)


def test_features_by_hand(spec):
    panel = synthetic_btm_panel()
    f = build_features(panel, spec)[NAMES]
    x = np.log(panel["btm_size_q1"] / panel["btm_size_q5"])
    t = 150
    assert f["smb_btm_spread_log"].iloc[t] == pytest.approx(x.iloc[t], rel=1e-9)
    assert f["smb_btm_spread_chg_12m_log"].iloc[t] == pytest.approx(x.iloc[t] - x.iloc[t - 12], rel=1e-9)
    window = x.iloc[t - 119:t + 1]
    assert f["smb_btm_spread_z_120m_std"].iloc[t] == pytest.approx(
        (x.iloc[t] - window.mean()) / window.std(ddof=1), rel=1e-9)
    assert f["smb_btm_spread_rank_120m_pct"].iloc[t] == pytest.approx(100 * (window <= x.iloc[t]).mean())
    # warm-ups: the stationary forms need a full window, the change 12 months; NaN before, never 0
    z = f["smb_btm_spread_z_120m_std"]
    assert z.iloc[:119].isna().all() and z.iloc[119:].notna().all()
    assert f["smb_btm_spread_chg_12m_log"].first_valid_index() == panel.index[12]


def test_valuation_is_nan_without_book_to_market_and_for_non_positive_ratios(spec):
    panel = synthetic_btm_panel().drop(columns=["btm_size_q5"])
    assert build_features(panel, spec)[NAMES].isna().all().all()
    panel = synthetic_btm_panel()
    panel.iloc[130, panel.columns.get_loc("btm_size_q1")] = -1.0
    f = build_features(panel, spec)
    assert math.isnan(f["smb_btm_spread_log"].iloc[130]) and f["smb_btm_spread_log"].iloc[129] > -5


def test_held_family_is_listed_as_off_and_switched_on_by_name():
    default = load_feature_spec("default")
    assert not any(f.family == "valuation" for f in default.features)
    on = default.with_families("valuation")
    assert on.name == "default+valuation" and "valuation" in on.families and not on.held and not on.disabled
    assert on.names[:96] == default.names and on.names[96:] == sorted(NAMES)  # appended in registry order
    md = catalogue_markdown(default)
    assert "| valuation | 0 | off (held back) | held back from the model until the adoption rule decides" in md
    with pytest.raises(ConfigError, match=r"\[short_interest\] is not a held \(switched-off, configured\) family; "
                                          r"held: valuation"):
        default.with_families("short_interest")
    sample = load_feature_spec("sample")
    assert "| valuation | 0 | unavailable | no book-to-market in the offline sample" in catalogue_markdown(sample)
    with pytest.raises(ConfigError, match="held: none"):
        sample.with_families("valuation")


def test_catalogue_and_serving_ranges(spec):
    entries = {e["name"]: e for e in feature_catalogue(spec)}
    spread = entries["smb_btm_spread_log"]
    assert spread["source_series"] == ["btm_size_q1", "btm_size_q5"]
    assert spread["publication_lag"].startswith("0d, market prices; book equity of fiscal year t-1 from the June t")
    assert "positive = small caps cheaper" in spread["note"]
    ranges = plausible_ranges(spec)
    assert ranges["smb_btm_spread_rank_120m_pct"] == (0.0, 100.0)
    assert ranges["smb_btm_spread_z_120m_std"] == (-trailing_z_bound(120), trailing_z_bound(120))
    low, high = ranges["smb_btm_spread_log"]
    assert low == pytest.approx(math.log(0.01 / 500)) and high == pytest.approx(math.log(500 / 0.01))
    # the z-score bound is attained: one jump after a flat window
    x = pd.Series([0.0] * 119 + [1.0])
    assert ((x.iloc[-1] - x.mean()) / x.std()) == pytest.approx(trailing_z_bound(120))


def test_reading_matches_the_features_and_says_which_side(spec):
    panel = synthetic_btm_panel()
    series = valuation_series(panel)
    f = build_features(panel, spec)
    np.testing.assert_allclose(series["z_std"].dropna(), f["smb_btm_spread_z_120m_std"].dropna(), rtol=1e-9)
    np.testing.assert_allclose(series["rank_pct"].dropna(), f["smb_btm_spread_rank_120m_pct"].dropna(), rtol=1e-9)
    reading = valuation_reading(panel, "2012-06-30")
    assert reading.as_of == pd.Timestamp("2012-06-30")
    row = series.loc["2012-06-30"]
    assert reading.deviation_log == pytest.approx(row["spread_log"] - row["mean_log"])
    side = "cheaper" if reading.deviation_log > 0 else "dearer"
    assert reading.sentence().startswith(f"small caps are {abs(reading.deviation_log):.2f} log points {side} "
                                         "relative to large caps than their 10-year average")
    # point in time: the reading at t does not move when later months are appended
    assert valuation_reading(panel.loc[:"2012-06-30"]) == reading


def test_reading_needs_book_to_market_and_a_full_window():
    with pytest.raises(NoDataError, match=r"no book-to-market data \(btm_size_q1\).*25_Portfolios_5x5"):
        valuation_reading(synthetic_btm_panel().drop(columns=["btm_size_q1"]))
    with pytest.raises(NoDataError, match="needs 120 months of book-to-market spreads"):
        valuation_reading(synthetic_btm_panel(n=100))


def test_record_on_real_history_matches_an_independent_count(real_panel):
    record = valuation_record(real_panel, start="1990-01")
    # independently: trailing 120-month mean of the log spread, next-quarter Lo 30 minus Hi 30 compounded return
    x = np.log(real_panel["btm_size_q1"] / real_panel["btm_size_q5"])
    cheap = x > x.rolling(120).mean()
    gross = lambda r: (1 + r).rolling(3).apply(np.prod, raw=True).shift(-3)  # noqa: E731
    won = (gross(real_panel["small_ret"]) - gross(real_panel["large_ret"])) > 0
    origins = real_panel.loc["1990-01-31":"2018-09-30"].index
    assert (record.first, record.last, record.n) == (origins[0], origins[-1], len(origins))
    assert record.n_cheap == int(cheap[origins].sum())
    assert record.hit_rate_cheap == pytest.approx(won[origins][cheap[origins]].mean())
    assert record.hit_rate_dear == pytest.approx(won[origins][~cheap[origins]].mean())
    assert record.base_rate == pytest.approx(won[origins].mean())
    assert 0 < record.se_gap < 0.2
    assert record.sentence().startswith(f"1990-01..2018-09: when small caps were cheaper than their 10-year average "
                                        f"({record.n_cheap} of {record.n} months)")
    # the record is point in time: calls at origins before a cut do not change when later data is dropped
    cut = valuation_calls(real_panel.loc[:"2005-12-31"])
    full = valuation_calls(real_panel).loc[cut.index]
    pd.testing.assert_frame_equal(cut, full)
    # every history since the first full window has a reading; the whole real record is there from 1936
    assert valuation_record(real_panel).first == pd.Timestamp("1936-06-30")
    # months mean whole months; a stretch that was cheap throughout says so instead of printing NaN
    nineties = valuation_record(real_panel, start="1990-01", end="1999-12")
    assert (nineties.first, nineties.last) == (pd.Timestamp("1990-01-31"), pd.Timestamp("1999-12-31"))
    assert nineties.n_dear == int((~cheap["1990-01-31":"1999-12-31"]).sum()) == 0  # cheap all decade
    assert nineties.sentence().endswith("(never dearer in this stretch)") and "nan" not in nineties.sentence()


def test_the_card_shows_the_reading_and_its_record_known_at_the_forecast_origin(real_panel):
    from smallcap_regime.card import forecast_lines
    from smallcap_regime.features.valuation import valuation_lines
    from smallcap_regime.values import Forecast

    when = pd.Timestamp("2018-12-31")
    reading, record = valuation_lines(real_panel, when, start="1990-01", horizon_months=3)
    assert reading == valuation_reading(real_panel, when).sentence()
    # only calls whose quarter was over by the origin: the last one was made at 2018-09-30
    assert record == valuation_record(real_panel, start="1990-01", end="2018-09").sentence()
    assert record.startswith("1990-01..2018-09: ")
    assert valuation_lines(real_panel.drop(columns=["btm_size_q1", "btm_size_q5"]), when) == ("", "")
    output = pd.Series({"regime": "no confident call", "regime_leaning": "-", "p_outperform": 0.5, "p_positive": 0.6,
                        "relative_has_skill": False, "absolute_has_skill": False,
                        "relative_base_rate": 0.5, "absolute_base_rate": 0.6})
    fc = Forecast(when, output, pd.Series(dtype=float), "m", "live", [], valuation=reading, valuation_record=record)
    lines = forecast_lines(fc)
    assert lines[-2] == f"valuation (descriptive): {reading}"
    assert lines[-1] == f"  record of this reading, out of sample {record}"
