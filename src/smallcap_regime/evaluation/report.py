"""Writing a backtest to disk and summarising it for people."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..data.cache import atomic_write_bytes
from ..home import runs_dir
from .backtest import BacktestResult
from .plots import plot_calibration, plot_regime_timeline, plot_strategies

POINT_COLUMNS = {"r2_oos": "R2_OS", "cw_stat": "CW stat", "cw_pvalue": "CW p", "hit_rate_sign": "sign hit",
                 "n": "n"}
PROB_COLUMNS = {"hit_rate": "P>0.5 hit", "balanced_accuracy": "bal acc", "auc": "AUC", "brier_skill": "Brier skill",
                "log_loss": "log loss"}
STRATEGY_COLUMNS = {"sharpe": "Sharpe", "annual_return": "ann ret", "volatility": "vol", "max_drawdown": "max DD",
                    "turnover": "turnover"}


def run_dir(home: Path, experiment: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = runs_dir(home) / experiment / stamp
    path.mkdir(parents=True, exist_ok=True)
    return path


def _csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(path, frame.to_csv().encode())


def save_backtest(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write predictions (Parquet + CSV), metrics, per-decade and per-fold metrics, strategies and plots."""
    files = {
        "predictions": out_dir / "predictions.parquet",
        "predictions_csv": out_dir / "predictions.csv",
        "metrics": out_dir / "metrics.csv",
        "decade_metrics": out_dir / "decade_metrics.csv",
        "fold_metrics": out_dir / "fold_metrics.csv",
        "strategy_returns": out_dir / "strategy_returns.csv",
        "strategy_metrics": out_dir / "strategy_metrics.csv",
        "summary": out_dir / "summary.json",
    }
    result.predictions.to_parquet(files["predictions"])
    _csv(result.predictions, files["predictions_csv"])
    _csv(result.metrics, files["metrics"])
    _csv(result.decade_metrics, files["decade_metrics"])
    _csv(result.fold_metrics.set_index("fold"), files["fold_metrics"])
    _csv(result.strategy_returns.set_index("date"), files["strategy_returns"])
    _csv(result.strategy_metrics, files["strategy_metrics"])
    summary = {
        "experiment": result.experiment.name,
        "data_source": result.panel.source,
        "panel_first": str(result.panel.first.date()),
        "panel_last": str(result.panel.last.date()),
        "panel_fingerprint": result.panel.fingerprint(),
        "oos_start": str(result.experiment.validation.oos_start.date()),
        "n_features": result.features.shape[1],
        "timings": result.timings,
        "notes": result.panel.notes,
    }
    atomic_write_bytes(files["summary"], json.dumps(summary, indent=2).encode())
    files["plot_strategies"] = plot_strategies(result.strategy_returns, out_dir / "strategies.png")
    files["plot_calibration"] = plot_calibration(result.oos, out_dir / "calibration.png")
    files["plot_regimes"] = plot_regime_timeline(result.predictions, out_dir / "regimes.png", result.experiment.horizon)
    return files


def summary_tables(result: BacktestResult, target: str) -> dict[str, pd.DataFrame]:
    """Model vs baselines for one target: point-forecast skill, probability skill, timing strategies."""
    metrics = result.metrics.loc[target]
    return {
        "point forecasts": metrics[list(POINT_COLUMNS)].rename(columns=POINT_COLUMNS),
        "probabilities": metrics[list(PROB_COLUMNS)].rename(columns=PROB_COLUMNS),
        "timing strategy (quarterly, net of costs)":
            result.strategy_metrics.loc[target, list(STRATEGY_COLUMNS)].rename(columns=STRATEGY_COLUMNS),
    }


def identical_strategies(result: BacktestResult, target: str) -> list[str]:
    """Strategies whose positions never differ from buy-and-hold's (a model that always says "long")."""
    returns = result.strategy_returns[result.strategy_returns["target"] == target]
    positions = {name: rows["position"].to_numpy() for name, rows in returns.groupby("strategy", sort=False)}
    hold = positions.get("buy_and_hold")
    return [name for name, pos in positions.items()
            if name != "buy_and_hold" and hold is not None and len(pos) == len(hold) and (pos == hold).all()]
