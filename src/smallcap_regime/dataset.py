"""The one path from an experiment to model inputs: experiment -> panel -> feature spec -> features + targets.

Backtest, tuning, training, forecasting and serving all call :func:`build_dataset`, so the rows a model is served
are built exactly as the rows it was trained on (same data source, size legs, feature spec and horizon).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import Panel, load_panel
from .errors import ConfigError
from .experiment import Experiment
from .features.build import FeatureSpec, build_features
from .features.targets import build_targets
from .names import target_column


@dataclass(frozen=True)
class Dataset:
    """Model inputs of one experiment.

    Attributes
    ----------
    experiment : the experiment it was built for.
    panel : the point-in-time monthly panel (cut at ``before`` when given).
    spec : the feature spec.
    features : DataFrame, shape (n_months, n_features), float64; row t uses data published by t only.
    targets : DataFrame, shape (n_months, 5): ``<target>_<h>m`` (decimal), ``<target>_<h>m_up`` (0/1) for both
        targets and ``tbill_<h>m``; NaN in the last h rows (not realised yet).
    """

    experiment: Experiment
    panel: Panel
    spec: FeatureSpec
    features: pd.DataFrame
    targets: pd.DataFrame

    def target(self, target: str, label: bool = False) -> pd.Series:
        """The ``relative``/``absolute`` target (decimal return) or, with ``label``, its 0/1 label."""
        return self.targets[target_column(target, self.experiment.horizon, label=label)]


def build_dataset(exp: Experiment, *, home: Path | None = None, panel: Panel | None = None,
                  before: pd.Timestamp | None = None) -> Dataset:
    """Features and targets of an experiment.

    Parameters
    ----------
    exp : the experiment (data source and size legs, feature spec, horizon).
    home : home dir whose cache holds live data; needed unless ``panel`` is given or the source is the sample.
    panel : a prebuilt panel (tests, tuning workers); default: load it as the experiment says.
    before : keep only panel rows strictly before this date, cut before any feature or target is built (tuning
        uses it so the out-of-sample period cannot influence anything it computes).

    Raises
    ------
    ConfigError
        The feature spec's seasonality window differs from the experiment's horizon.
    """
    if panel is None:
        if home is None and exp.data_source == "live":
            raise ConfigError(f"experiment {exp.name!r} reads live data: pass home (the dir holding the cache)")
        panel = load_panel(home or Path("."), exp.data_source, small_column=exp.small_column,
                           large_column=exp.large_column)
    if before is not None:
        panel = Panel(panel.frame[panel.frame.index < before], panel.source, panel.vintages, panel.notes)
    spec = exp.features()
    window = spec.families.get("seasonality", {}).get("window_months")
    if window is not None and window != exp.horizon:
        raise ConfigError(f"{spec.path}: [seasonality] window_months = {window} but experiment {exp.name!r} "
                          f"forecasts {exp.horizon} months; the calendar flags must describe the forecast window")
    features, targets = build_features(panel.frame, spec), build_targets(panel.frame, exp.horizon)
    if exp.options.train_start:  # computed on the whole panel, then rows before the start are left out
        keep = features.index >= pd.Timestamp(exp.options.train_start) + pd.offsets.MonthEnd(0)
        features, targets = features[keep], targets[keep]
    return Dataset(exp, panel, spec, features, targets)
