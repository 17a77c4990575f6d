"""Figures people would rather look at than read: strategy wealth, calibration, regime timeline with each call
marked right or wrong, importance and a SHAP beeswarm of the drivers. Every axis says what it shows and in which
unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Figure objects, not pyplot: no global backend or figure registry is touched (safe in notebooks and servers)
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from ..models import regime as R
from ..names import col
from .record import past_calls

REGIME_COLOURS = {R.SMALL_LED_RALLY: "#2ca02c", R.SMALL_FALL_LESS: "#98df8a", R.LARGE_LED_RALLY: "#1f77b4",
                  R.RISK_OFF: "#d62728", R.SMALL_LEAD: "#2ca02c", R.LARGE_LEAD: "#1f77b4", R.SMALL_RISE: "#98df8a",
                  R.SMALL_FALL: "#d62728", R.NO_CALL: "#bbbbbb"}
TARGET_TITLES = {"relative": "relative (small minus large caps)", "absolute": "absolute (small caps)"}
#: Reliability-diagram bins with fewer forecasts than this are dropped: their realised share is mostly noise.
MIN_BIN_COUNT = 10


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_strategies(strategy_returns: pd.DataFrame, path: Path) -> Path:
    """Growth of 1 (in excess of cash) of each timing strategy vs buy-and-hold, one panel per target."""
    fig = Figure(figsize=(13, 4.5))
    axes = fig.subplots(1, 2)
    for ax, (target, block) in zip(axes, strategy_returns.groupby("target", sort=False)):
        for name, rows in block.groupby("strategy", sort=False):
            wealth = (1 + rows.set_index("date")["excess"]).cumprod()
            ax.plot(wealth.index, wealth.values, label=name, lw=2.2 if name == "lgbm_cal" else 1.2,
                    ls="--" if name == "buy_and_hold" else "-")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        # label the 2s and 5s between decades too, so a 0.5x or 3x move can be read off
        ax.yaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}x" if f"{v:.0e}"[0] in "25" else ""))
        ax.set_title(f"{TARGET_TITLES.get(target, target)}: growth of 1\n"
                     "in excess of cash, quarterly trades, net of costs", fontsize=10)
        ax.set_xlabel("quarter the position is opened")
        ax.set_ylabel("wealth (multiple of 1, log scale)")
        ax.axhline(1.0, color="black", lw=0.6)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_calibration(predictions: pd.DataFrame, path: Path, bins: int = 10,
                     min_count: int = MIN_BIN_COUNT) -> Path:
    """Reliability diagram (scikit-learn's ``calibration_curve``) over a histogram of the forecasts, per target.

    Bins holding fewer than ``min_count`` forecasts are dropped from the curve; the histogram shows every forecast.
    """
    from sklearn.calibration import calibration_curve

    fig = Figure(figsize=(12, 6))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1])
    edges = np.linspace(0, 1, bins + 1)
    for i, target in enumerate(("relative", "absolute")):
        ax = fig.add_subplot(grid[0, i])
        hist = fig.add_subplot(grid[1, i], sharex=ax)
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--", label="perfectly calibrated")
        for model in ("lgbm", "lgbm_cal", "linear_cal"):
            frame = predictions[[col(target, model, "p"), col(target, "up")]].dropna()
            if frame.empty:
                continue
            p, y = frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1].to_numpy()
            counts = np.bincount(np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1), minlength=bins)
            share, mean_p = calibration_curve(y, p, n_bins=bins, strategy="uniform")
            # calibration_curve returns only non-empty bins, in order: keep those with enough forecasts
            keep = counts[counts > 0] >= min_count
            ax.plot(mean_p[keep], share[keep], marker="o", label=model)
            hist.hist(p, bins=list(edges), histtype="step", lw=1.2, label=model)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("realised share > 0")
        ax.set_title(f"{TARGET_TITLES[target]}: calibration out of sample\n"
                     f"(bins with < {min_count} forecasts dropped)", fontsize=10)
        ax.legend(fontsize=8)
        hist.set_xlabel("forecast probability that the target is > 0")
        hist.set_ylabel("forecasts")
    return _save(fig, path)


def plot_regime_timeline(predictions: pd.DataFrame, path: Path, horizon: int = 3) -> Path:
    """Per target, the realised return after each out-of-sample origin with the call made there marked right
    (green) or wrong (red), over a strip of the forecast regime."""
    fig = Figure(figsize=(13, 7.5))
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [4, 4, 1]})
    for ax, target in zip(axes, ("relative", "absolute")):
        calls = past_calls(predictions, target, horizon).dropna(subset=["right"])
        ax.plot(calls.index, calls["realised"] * 100, color="grey", lw=0.6, zorder=1)
        for right, colour, label in ((1.0, "#2ca02c", "call right"), (0.0, "#d62728", "call wrong")):
            rows = calls[calls["right"] == right]
            ax.scatter(rows.index, rows["realised"] * 100, s=9, color=colour, zorder=2,
                       label=f"{label} ({len(rows)} of {len(calls)})")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylabel(f"realised {horizon}-month\nreturn (%)")
        ax.set_title(f"{TARGET_TITLES[target]}: call at each origin (probability above or below the base rate) "
                     f"vs the return over the next {horizon} months", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    strip = axes[2]
    frame = predictions[predictions["oos"].astype(bool)].dropna(subset=["regime"])
    width = pd.Timedelta(days=31)
    for regime, colour in REGIME_COLOURS.items():
        rows = frame.index[frame["regime"] == regime]
        if len(rows):
            strip.bar(rows, np.ones(len(rows)), width=width, color=colour, label=f"{regime} ({len(rows)})")
    strip.set_yticks([])
    strip.set_ylabel("regime")
    strip.set_xlabel("forecast origin (month end)")
    strip.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.6))
    return _save(fig, path)


def plot_importance(importance: pd.DataFrame, path: Path, top: int = 20,
                    unit: str = "mean |contribution|") -> Path:
    """Horizontal bars of an importance measure per feature, one panel per model."""
    models = list(importance.columns)
    fig = Figure(figsize=(5 * len(models), 0.3 * top + 1.5))
    axes = fig.subplots(1, len(models))
    for ax, model in zip(np.atleast_1d(axes), models):
        top_rows = importance[model].sort_values().tail(top)
        ax.barh(top_rows.index, top_rows.values)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel(unit)
        ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def plot_beeswarm(points: dict[str, pd.DataFrame], values: pd.DataFrame, path: Path, top: int = 12) -> Path:
    """SHAP beeswarm per target: one dot per origin and feature, at its contribution in calibrated-probability
    points, coloured by the feature's value (its rank among all origins: blue low, red high).

    Parameters
    ----------
    points : ``{target: DataFrame (origins x features)}`` of contributions in probability points.
    values : the feature values on the same index and columns.
    top : features shown per target, the largest mean |points| on top.
    """
    rng = np.random.default_rng(0)  # jitter only: a fixed seed keeps the figure identical between runs
    fig = Figure(figsize=(13, 0.38 * top + 1.8))
    axes = fig.subplots(1, len(points), gridspec_kw={"wspace": 0.45})  # room for the right panel's feature names
    scatter = None
    for ax, (target, frame) in zip(np.atleast_1d(axes), points.items()):
        order = frame.abs().mean().sort_values(ascending=False).index[:top][::-1]
        for row, feature in enumerate(order):
            x = frame[feature].to_numpy()
            colour = values[feature].rank(pct=True).to_numpy()
            y = row + rng.uniform(-0.3, 0.3, len(x))
            scatter = ax.scatter(x, y, c=colour, cmap="coolwarm", vmin=0, vmax=1, s=5, alpha=0.7)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels(order, fontsize=7)
        ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel("contribution to the calibrated probability (percentage points)")
        ax.set_title(f"{TARGET_TITLES.get(target, target)}: drivers at every origin", fontsize=10)
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=axes, fraction=0.02, pad=0.01)
        bar.set_label("feature value (rank: low to high)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # tight_layout does not know the shared colour bar
    return path
