"""Point-in-time alignment of raw series onto the month-end panel, and the features built on it.

The look-ahead tests use real history: the full files in tests/data/realdata (French monthly and daily size
portfolios and factors, every FRED series of the catalogue that is there: daily, weekly and monthly) parsed with
the project's parsers. Two inputs have no real file and are SYNTHETIC (made-up random walks, labelled as such):
a quarterly series standing in for `mmf_assets` (MMMFFAQ027S) and semi-monthly FINRA short interest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data import fred, french
from smallcap_regime.data.catalog import fred_specs, load_catalog
from smallcap_regime.data.panel import RawSeries, align_point_in_time, assemble_panel, monthly_from_daily
from smallcap_regime.features.build import build_features, load_feature_spec

FACTOR_NAMES = {"Mkt-RF": "mkt_excess_ret", "SMB": "smb", "HML": "hml", "RF": "rf"}


@dataclass(frozen=True)
class Inputs:
    """Everything the panel is built from, each observation stamped as its source stamps it.

    ``returns`` holds the month-end market data (size-portfolio legs, factors, and the realised variance of the
    daily returns, computed from the real daily file once per module, see
    ``test_realised_variance_at_t_uses_only_days_up_to_t``); ``raws`` the series aligned by publication lag.
    """

    returns: pd.DataFrame
    raws: tuple[RawSeries, ...]

    def map(self, fn) -> Inputs:
        """Apply ``fn`` to the returns frame and to every raw series' values."""
        return Inputs(fn(self.returns), tuple(dataclasses.replace(r, values=fn(r.values)) for r in self.raws))


def build_panel(inputs: Inputs) -> pd.DataFrame:
    return assemble_panel(inputs.returns, list(inputs.raws))


def _legs() -> tuple[str, str]:
    return load_catalog()["french"]["small_column"], load_catalog()["french"]["large_column"]


def _synthetic_walk(index: pd.DatetimeIndex, start: float, scale: float, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(start * np.exp(np.cumsum(rng.normal(0, scale, len(index)))), index=index, dtype="float64")


@pytest.fixture(scope="module")
def inputs(realdata_dir) -> Inputs:
    french_dir, fred_dir = realdata_dir / "french", realdata_dir / "fred"
    ports = french.parse_portfolios_me((french_dir / "Portfolios_Formed_on_ME_CSV.zip").read_bytes(), "ME")
    daily = french.parse_portfolios_me((french_dir / "Portfolios_Formed_on_ME_Daily_CSV.zip").read_bytes(), "ME daily",
                                       daily=True)
    factors = french.parse_factors((french_dir / "F-F_Research_Data_Factors_CSV.zip").read_bytes(), "FF")
    raws = []
    for spec in fred_specs():
        path = fred_dir / f"{spec.series_id}.csv"
        if path.exists():
            values = fred.parse_fred_csv(path.read_bytes(), spec.series_id, path.name, valid_range=spec.valid_range)
            raws.append(RawSeries(spec.name, values, spec.freq, spec.lag, spec.max_age, spec.priority,
                                  f"fred/{spec.series_id}"))
    assert {r.freq for r in raws} == {"daily", "weekly", "monthly"}
    # SYNTHETIC quarterly series, stamped on the first day of the quarter like FRED's Z.1 series
    quarters = pd.date_range("1952-01-01", "2018-10-01", freq="QS", name="date")
    raws.append(RawSeries("mmf_assets", _synthetic_walk(quarters, 1e5, 0.05, 1), "quarterly", "3m", "100d",
                          origin="SYNTHETIC/MMMFFAQ027S"))
    # SYNTHETIC FINRA short interest: mid-month and month-end settlement dates, 12-day lag like the catalogue
    finra = load_catalog()["finra"]
    mid_months = pd.date_range("2010-01-01", "2018-12-01", freq="MS") + pd.Timedelta(days=14)
    settlements = mid_months.union(pd.date_range("2010-01-31", "2018-12-31", freq="ME"))
    for i, (symbol, column) in enumerate([(s, c) for s in ("iwm", "spy") for c in ("days_to_cover", "short_shares")]):
        start = 3.0 if column == "days_to_cover" else 1e8
        raws.append(RawSeries(f"si_{symbol}_{column}", _synthetic_walk(settlements, start, 0.1, 10 + i), "daily",
                              finra["lag"], finra["max_age"], origin="SYNTHETIC/finra"))
    small, large = _legs()
    returns = pd.DataFrame({"small_ret": ports[small], "large_ret": ports[large]})
    returns = returns.join(factors.rename(columns=FACTOR_NAMES), how="left")
    rvar = monthly_from_daily(daily[small], "small").join(
        monthly_from_daily(daily[large], "large").drop(columns="n_days"), how="outer")
    return Inputs(returns.join(rvar, how="left"), tuple(raws))


@pytest.fixture(scope="module")
def daily_small(realdata_dir) -> pd.Series:
    raw = (realdata_dir / "french" / "Portfolios_Formed_on_ME_Daily_CSV.zip").read_bytes()
    return french.parse_portfolios_me(raw, "ME daily", daily=True)[_legs()[0]]


@pytest.fixture(scope="module")
def spec():
    return load_feature_spec("default")


@pytest.fixture(scope="module")
def full(inputs, spec):
    panel = build_panel(inputs)
    return panel, build_features(panel, spec)


def _month_ends() -> list[str]:
    """Random month ends (fixed seed) plus edge cases: the first month, DGS10's first month, the 2008 crash."""
    grid = pd.date_range("1926-07-31", "2018-11-30", freq="ME")
    rng = np.random.default_rng(20181231)
    picked = set(rng.choice(grid[grid >= "1959-01-31"], 5, replace=False)) | set(rng.choice(grid, 2, replace=False))
    picked |= {pd.Timestamp(d) for d in ("1926-07-31", "1999-01-31", "2008-10-31", "2018-11-30")}
    return [pd.Timestamp(d).strftime("%Y-%m-%d") for d in sorted(picked)]


MONTH_ENDS = _month_ends()


def _through(t: pd.Timestamp):
    return lambda obj: obj[obj.index <= t]


def _changed_after(t: pd.Timestamp, seed: int):
    """Replace every value dated after t by a random transformation of it (NaN stays NaN)."""
    rng = np.random.default_rng(seed)

    def change(obj):
        out = obj.copy()
        later = obj.index > t
        shape = obj.loc[later].shape
        out.loc[later] = obj.loc[later] * rng.uniform(-3, 3, shape) + rng.normal(0, 1, shape)
        return out

    return change


def test_the_inputs_cover_every_panel_and_feature_input(full, spec):
    panel, features = full
    # the look-ahead tests below are only as good as their coverage: every input column is fed from raw data
    assert {"yield_10y", "yield_2y", "yield_1y", "yield_3m", "fed_funds", "baa", "aaa", "baa_10y_spread", "hy_oas",
            "vix", "unrate", "umcsent", "usd_broad", "nfci", "cpi", "mmf_assets", "si_iwm_days_to_cover",
            "si_spy_short_shares", "small_rvar", "large_rvar", "smb", "hml", "mkt_excess_ret", "rf"} <= set(panel)
    recent = features.loc["2017-01-31":"2018-11-30"]
    assert recent.notna().all().all(), recent.columns[recent.isna().any()].tolist()
    assert list(features.columns) == spec.names


@pytest.mark.parametrize("t", MONTH_ENDS)
@pytest.mark.parametrize("how", ["deleted", "changed"])
def test_observations_after_t_do_not_move_the_panel_or_features_at_t(inputs, spec, full, t, how):
    t = pd.Timestamp(t)
    panel, features = full
    if how == "deleted":
        modified = inputs.map(_through(t))
    else:
        modified = inputs.map(_changed_after(t, seed=t.year * 100 + t.month))

    panel_t = build_panel(modified)
    features_t = build_features(panel_t, spec)

    pd.testing.assert_frame_equal(panel_t.loc[:t], panel.loc[:t], check_freq=False)
    pd.testing.assert_frame_equal(features_t.loc[:t], features.loc[:t], check_freq=False)
    if how == "changed" and t < panel.index[-1]:
        later = panel.index[panel.index > t]
        assert not panel_t.loc[later].equals(panel.loc[later]), "the perturbation must reach the panel after t"


@pytest.mark.parametrize("t", MONTH_ENDS[1::2])
def test_observations_known_by_t_do_move_the_panel_at_t(inputs, full, t):
    """The converse, so the look-ahead test cannot pass vacuously: what is published by t shows up at t."""
    t = pd.Timestamp(t)
    panel, _ = full

    def double_through_t(obj):
        out = obj.copy()
        out.loc[obj.index <= t] = obj.loc[obj.index <= t] * 2 + 0.01
        return out

    moved = build_panel(inputs.map(double_through_t))

    known = panel.loc[t].dropna().index.drop("n_days")
    assert len(known) >= 5
    unchanged = [c for c in known if moved.loc[t, c] == panel.loc[t, c]]
    assert unchanged == []


def _raw(inputs: Inputs, origin: str) -> RawSeries:
    return next(r for r in inputs.raws if r.origin == origin)


def _replace_values(inputs: Inputs, origin: str, fn) -> Inputs:
    raws = tuple(dataclasses.replace(r, values=fn(r.values)) if r.origin == origin else r for r in inputs.raws)
    return Inputs(inputs.returns, raws)


@pytest.mark.parametrize("t", [t for t in MONTH_ENDS if t >= "1960"])
def test_release_lags_on_real_series(inputs, full, t):
    """Each series' latest period is invisible at t when its publication comes after t."""
    t = pd.Timestamp(t)
    panel, _ = full
    grid = panel.index
    month_start = t - pd.offsets.MonthBegin(1)
    quarter_start = pd.Timestamp(t.year, 3 * ((t.month - 1) // 3) + 1, 1)
    friday = t - pd.Timedelta(days=(t.weekday() - 4) % 7)  # the last Friday on or before t
    cases = [
        # origin, stamp dated on or before t but published after it, panel column
        ("fred/UNRATE", month_start, "unrate"),  # monthly, 1 month: this month's figure comes next month
        ("fred/CPIAUCSL", month_start, "cpi"),
        ("fred/GS10", month_start, "yield_10y"),
        ("SYNTHETIC/MMMFFAQ027S", quarter_start, "mmf_assets"),  # quarterly, 3 months after the quarter end
        ("fred/DGS10", t, "yield_10y"),  # daily, 1 day: the close of t is known the next day
        ("fred/DGS2", t, "yield_2y"),
        ("fred/NFCI", friday if (t - friday).days < 5 else None, "nfci"),  # weekly (Friday), out 5 days later
    ]
    checked = 0
    for origin, stamp, column in cases:
        raw = _raw(inputs, origin)
        if stamp is None or stamp not in raw.values.index:
            continue
        bumped = lambda s, stamp=stamp: s.where(s.index != stamp, s + 100.0)  # noqa: E731
        moved = build_panel(_replace_values(inputs, origin, bumped))
        assert moved.loc[t, column] == panel.loc[t, column] or np.isnan(panel.loc[t, column]), (origin, stamp)
        checked += 1
        # ... and visible once published: monthly figures at the next month end
        if origin in ("fred/UNRATE", "fred/CPIAUCSL") and t + pd.offsets.MonthEnd(1) in grid:
            assert moved.loc[t + pd.offsets.MonthEnd(1), column] == raw.values[stamp] + 100.0
    assert checked >= 3
    # VIX has no lag: the close of t is in the panel at t
    vix = _raw(inputs, "fred/VIXCLS")
    if t in vix.values.index:
        assert panel.loc[t, "vix"] == vix.values[t]


@pytest.mark.parametrize("t", ["1932-06-30", "1987-10-31", "2018-11-30"])
def test_realised_variance_at_t_uses_only_days_up_to_t(daily_small, t):
    t = pd.Timestamp(t)
    full = monthly_from_daily(daily_small, "small")

    truncated = monthly_from_daily(daily_small[daily_small.index <= t], "small")
    changed = monthly_from_daily(_changed_after(t, seed=7)(daily_small), "small")

    pd.testing.assert_frame_equal(truncated, full.loc[:t])
    pd.testing.assert_frame_equal(changed.loc[:t], full.loc[:t])
    assert not changed.loc[t:].iloc[1:].equals(full.loc[t:].iloc[1:])
    in_month = daily_small[(daily_small.index >= t - pd.offsets.MonthBegin(1)) & (daily_small.index <= t)]
    assert full.loc[t, "small_rvar"] == pytest.approx(float((in_month**2).sum()))
    assert full.loc[t, "n_days"] == in_month.notna().sum()


# --- synthetic, hand-checked cases ----------------------------------------------------------------------------------


def _grid(first: str, last: str) -> pd.DatetimeIndex:
    return pd.date_range(first, last, freq="ME", name="date")


def _series(mapping: dict[str, float]) -> pd.Series:
    return pd.Series(mapping, dtype="float64").set_axis(pd.DatetimeIndex(list(mapping), name="date"))


def test_monthly_series_is_visible_one_month_after_its_period():
    raw = RawSeries("unrate", _series({f"2020-{m:02d}-01": float(m) for m in range(1, 7)}), "monthly", "1m")

    aligned = align_point_in_time(raw, _grid("2020-01-31", "2020-08-31"))

    assert aligned.tolist()[:7] == pytest.approx([np.nan, 1, 2, 3, 4, 5, 6], nan_ok=True)
    assert aligned.loc["2020-08-31"] == 6.0  # no max_age: the last value is carried forward


def test_quarterly_and_weekly_and_daily_lags():
    grid = _grid("2019-01-31", "2019-12-31")
    quarterly = RawSeries("mmf", _series({"2019-01-01": 1.0, "2019-04-01": 2.0}), "quarterly", "3m", "100d")
    # Q1 ends 03-31 -> known 06-30; Q2 ends 06-30 -> known 09-30 and shown until 100 days later (2020-01-08)
    assert align_point_in_time(quarterly, grid).tolist() == pytest.approx(
        [np.nan] * 5 + [1, 1, 1, 2, 2, 2, 2], nan_ok=True)

    # weekly, stamped on Fridays, lag 5 days: the week ending Fri 2020-01-24 is out Wed 01-29, that of 01-31 on 02-05
    weekly = RawSeries("nfci", _series({"2020-01-17": -0.5, "2020-01-24": -0.6, "2020-01-31": -0.7}), "weekly", "5d")
    assert align_point_in_time(weekly, _grid("2020-01-31", "2020-02-29")).tolist() == [-0.6, -0.7]

    # daily with a 1-day lag: the close of the month's last day is not known at that month end
    daily = RawSeries("yield_10y", _series({"2020-03-30": 0.7, "2020-03-31": 0.67}), "daily", "1d")
    assert align_point_in_time(daily, _grid("2020-03-31", "2020-04-30")).tolist() == [0.7, 0.67]
    same_day = RawSeries("vix", _series({"2020-03-30": 57.1, "2020-03-31": 53.5}), "daily", "0d")
    assert align_point_in_time(same_day, _grid("2020-03-31", "2020-03-31")).tolist() == [53.5]


def test_missing_observations_do_not_hide_older_values():
    values = _series({"2020-12-23": 0.95, "2020-12-24": 0.94, "2020-12-25": np.nan, "2020-12-31": np.nan})
    raw = RawSeries("yield_10y", values, "daily", "1d", "10d")

    assert align_point_in_time(raw, _grid("2020-12-31", "2020-12-31")).tolist() == [0.94]


def test_max_age_drops_stale_values():
    values = _series({"2020-03-16": 0.73, "2020-03-20": 0.92})
    grid = _grid("2020-03-31", "2020-04-30")

    fresh = RawSeries("yield_10y", values, "daily", "1d", "10d")
    # known 03-21; 03-21 + 10 days = 03-31: still shown at 03-31, dropped by 04-30
    assert align_point_in_time(fresh, grid).tolist() == pytest.approx([0.92, np.nan], nan_ok=True)
    only_early = RawSeries("yield_10y", values.iloc[:1], "daily", "1d", "10d")
    # known 03-17, too old (> 10 days) at 03-31
    assert align_point_in_time(only_early, grid).isna().all()
    without_limit = dataclasses.replace(only_early, max_age=None)
    assert align_point_in_time(without_limit, grid).tolist() == [0.73, 0.73]


def test_priority_merge_daily_over_monthly_with_gap_filling():
    grid = _grid("2019-12-31", "2020-04-30")
    returns = pd.DataFrame({"small_ret": 0.01, "large_ret": 0.02}, index=grid)
    # DGS10 starts 2020-01-02, pauses through February (a gap), resumes in March
    dgs10 = _series({"2020-01-02": 1.88, "2020-01-30": 1.59, "2020-01-31": 1.51, "2020-03-02": 1.16,
                     "2020-03-30": 0.70, "2020-03-31": 0.70, "2020-04-29": 0.63})
    gs10 = _series({"2019-11-01": 1.81, "2019-12-01": 1.86, "2020-01-01": 1.76, "2020-02-01": 1.50,
                    "2020-03-01": 0.87})
    raws = [RawSeries("yield_10y", gs10, "monthly", "1m", "40d", priority=2, origin="fred/GS10"),
            RawSeries("yield_10y", dgs10, "daily", "1d", "10d", priority=1, origin="fred/DGS10")]

    panel = assemble_panel(returns, raws)

    assert panel["yield_10y"].tolist() == [
        1.81,  # 2019-12-31: no DGS10 yet -> GS10 November average (December's is not out yet)
        1.59,  # 2020-01-31: DGS10 of 01-30 (01-31 is known only the next day), GS10 loses
        1.76,  # 2020-02-29: DGS10 last known 02-01, stale after 10 days -> GS10 January average fills the gap
        0.70,  # 2020-03-31: DGS10 of 03-30 again
        0.63,  # 2020-04-30: DGS10 of 04-29
    ]
    assert assemble_panel(returns, raws[::-1])["yield_10y"].equals(panel["yield_10y"]), "order of raws is irrelevant"


def test_panel_grid_is_where_both_legs_have_returns():
    grid = _grid("2020-01-31", "2020-06-30")
    returns = pd.DataFrame({"small_ret": [np.nan, 0.01, 0.02, 0.03, 0.04, np.nan],
                            "large_ret": [0.01, 0.01, np.nan, 0.02, 0.03, 0.02]}, index=grid)

    panel = assemble_panel(returns, [])

    assert panel.index.equals(_grid("2020-02-29", "2020-05-31"))
    assert panel.index.name == "date"
    assert np.isnan(panel.loc["2020-03-31", "large_ret"])
    with pytest.raises(ValueError, match="no month has both small_ret and large_ret"):
        assemble_panel(returns.assign(large_ret=np.nan), [])


def test_monthly_from_daily_realised_variance_by_hand():
    daily = _series({"2020-01-02": 0.01, "2020-01-03": -0.02, "2020-01-31": 0.03, "2020-02-03": np.nan,
                     "2020-02-04": 0.05, "2020-04-01": -0.01, "2020-04-02": 0.0})

    out = monthly_from_daily(daily, "small")

    assert list(out.columns) == ["small_rvar", "n_days"]
    assert out.index.name == "date"
    assert out.index.equals(pd.DatetimeIndex(["2020-01-31", "2020-02-29", "2020-04-30"], name="date"))
    # January: 0.01^2 + 0.02^2 + 0.03^2; February: the NaN day does not count; March had no day at all
    assert out["small_rvar"].tolist() == pytest.approx([0.0014, 0.0025, 0.0001])
    assert out["n_days"].tolist() == [3.0, 1.0, 2.0]
