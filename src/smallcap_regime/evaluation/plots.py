"""Figures people would rather look at than read: strategy wealth, calibration, regime timeline, importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
# Figure objects, not pyplot: no global backend or figure registry is touched (safe in notebooks and servers)
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..models.regime import LARGE_LED_RALLY, NO_CALL, RISK_OFF, SMALL_FALL_LESS, SMALL_LED_RALLY

REGIME_COLOURS = {SMALL_LED_RALLY: "#2ca02c", SMALL_FALL_LESS: "#98df8a", LARGE_LED_RALLY: "#1f77b4",
                  RISK_OFF: "#d62728", NO_CALL: "#bbbbbb"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_strategies(strategy_returns: pd.DataFrame, path: Path) -> Path:
    """Cumulative excess wealth of each timing strategy vs its baselines, one panel per target."""
    fig = Figure(figsize=(13, 4.5))
    axes = fig.subplots(1, 2)
    for ax, (target, block) in zip(axes, strategy_returns.groupby("target", sort=False)):
        for name, rows in block.groupby("strategy", sort=False):
            wealth = (1 + rows.set_index("date")["excess"]).cumprod()
            ax.plot(wealth.index, wealth.values, label=name, lw=2.2 if name == "lgbm_cal" else 1.2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        # label the 2s and 5s between decades too, so a 0.5x or 3x move can be read off
        ax.yaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}x" if f"{v:.0e}"[0] in "25" else ""))
        ax.set_title(f"{target}: growth of 1 in excess of cash (quarterly, net of costs)")
        ax.axhline(1.0, color="black", lw=0.6)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_calibration(predictions: pd.DataFrame, path: Path, bins: int = 10) -> Path:
    """Reliability diagram: realised frequency vs forecast probability, raw and calibrated LightGBM."""
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for ax, target in zip(axes, ("relative", "absolute")):
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--")
        for model in ("lgbm", "lgbm_cal", "linear_cal"):
            frame = predictions[[f"{target}.{model}.p", f"{target}.up"]].dropna()
            if frame.empty:
                continue
            edges = np.linspace(0, 1, bins + 1)
            which = np.clip(np.digitize(frame.iloc[:, 0], edges) - 1, 0, bins - 1)
            grouped = frame.groupby(which).mean()
            counts = frame.groupby(which).size()
            ax.plot(grouped.iloc[:, 0], grouped.iloc[:, 1], marker="o", label=model)
            for x, y, n in zip(grouped.iloc[:, 0], grouped.iloc[:, 1], counts):
                ax.annotate(str(n), (x, y), fontsize=6, alpha=0.6)
        ax.set_xlabel("forecast P(target > 0)")
        ax.set_ylabel("realised share > 0")
        ax.set_title(f"{target}: calibration (out of sample)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_regime_timeline(predictions: pd.DataFrame, path: Path) -> Path:
    """Realised next-quarter returns (top) over a strip of the regime forecast at each origin (bottom)."""
    frame = predictions.dropna(subset=["regime"])
    fig = Figure(figsize=(13, 5))
    ax, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    ax.plot(frame.index, frame["relative.y"], color="black", lw=0.8, label="realised relative (small - large)")
    ax.plot(frame.index, frame["absolute.y"], color="grey", lw=0.6, alpha=0.7, label="realised absolute (small)")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title("Forecast regime at each origin vs the returns realised over the next h months")
    ax.legend(fontsize=8, loc="upper left")
    width = pd.Timedelta(days=31)
    for regime, colour in REGIME_COLOURS.items():
        rows = frame.index[frame["regime"] == regime]
        if len(rows):
            strip.bar(rows, np.ones(len(rows)), width=width, color=colour, label=f"{regime} ({len(rows)})")
    strip.set_yticks([])
    strip.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return _save(fig, path)


def plot_importance(importance: pd.DataFrame, path: Path, top: int = 20) -> Path:
    """Horizontal bars of mean |contribution| per feature, one panel per model."""
    models = list(importance.columns)
    fig = Figure(figsize=(5 * len(models), 0.3 * top + 1.5))
    axes = fig.subplots(1, len(models))
    for ax, model in zip(np.atleast_1d(axes), models):
        top_rows = importance[model].sort_values().tail(top)
        ax.barh(top_rows.index, top_rows.values)
        ax.set_title(model, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)
