"""smallcap-regime: forecast next quarter's small-cap vs large-cap regime of the US stock market.

The library face, for notebooks and scripts (everything the ``regime`` CLI does goes through these)::

    from smallcap_regime import load_experiment, build_dataset, run_backtest, train, tune, forecast

    exp = load_experiment("quickstart")          # validated config (experiments/quickstart.toml)
    data = build_dataset(exp)                    # point-in-time features and targets
    result = run_backtest(exp, dataset=data)     # purged walk-forward vs baselines
    trained = train("quickstart", home)          # backtest + fit + MLflow run + registry gate
    study = tune(exp, home, trials=20)           # Optuna on inner folds before the out-of-sample start
    fc = forecast(home)                          # the champion's forecast for the next quarter

Importing the package is cheap and changes no global state: the heavy modules load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (resolved on first access, PEP 562)
_EXPORTS = {
    "load_experiment": "smallcap_regime.experiment",
    "build_dataset": "smallcap_regime.dataset",
    "run_backtest": "smallcap_regime.evaluation.backtest",
    "tune": "smallcap_regime.tuning",
    "forecast": "smallcap_regime.workflow",
    "backtest": "smallcap_regime.workflow",
}
_ALIASES = {"train": ("smallcap_regime.workflow", "train_experiment")}
__all__ = sorted([*_EXPORTS, *_ALIASES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if name in _ALIASES:
        module, attr = _ALIASES[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'smallcap_regime' has no attribute {name!r}")
