"""Folds fitted in worker processes give exactly the serial backtest (SYNTHETIC panel)."""

from __future__ import annotations

import pandas as pd
import pytest

from smallcap_regime.evaluation.backtest import run_backtest
from smallcap_regime.experiment import load_experiment

from helpers import synthetic_panel, write_experiment

pytestmark = pytest.mark.slow  # two full backtests


def test_parallel_folds_equal_the_serial_run(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, "parallel", trees=8, oos_start="1975-01", refit=24))
    panel = synthetic_panel(5, 0.5, end="1995-12")
    done: list[tuple[int, int]] = []
    serial = run_backtest(exp, tmp_path / "home", panel=panel, jobs=1)
    parallel = run_backtest(exp, tmp_path / "home", panel=panel, jobs=3,
                            on_fold=lambda d, total: done.append((d, total)))
    folds = int(serial.timings["folds"])
    assert folds >= 6 and done == [(d, folds) for d in range(1, folds + 1)]
    assert serial.predictions["relative.lgbm.p"].notna().sum() > 100
    for name in ("predictions", "metrics", "decade_metrics", "fold_metrics", "strategy_returns", "strategy_metrics"):
        pd.testing.assert_frame_equal(getattr(serial, name), getattr(parallel, name), check_exact=True, obj=name)
    assert serial.final_maps == parallel.final_maps
