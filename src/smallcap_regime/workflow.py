"""High-level operations behind the CLI commands, callable from tests and notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import Panel, load_panel
from .data.cache import Cache
from .data.sources import PORTFOLIOS_KEY
from .errors import RegimeError
from .features.build import FeatureSpec, build_features, load_feature_spec

def default_source(home: Path) -> str:
    """``live`` when live data has been pulled into this home, else the offline ``sample``."""
    return "live" if Cache(home).has(PORTFOLIOS_KEY) else "sample"


@dataclass
class FeatureSnapshot:
    panel: Panel
    spec: FeatureSpec
    features: pd.DataFrame
    as_of: pd.Timestamp

    @property
    def row(self) -> pd.Series:
        return self.features.loc[self.as_of]


def feature_snapshot(home: Path, *, spec: str | Path | None = None, source: str | None = None,
                     as_of: str | None = None) -> FeatureSnapshot:
    """Build features and pick the latest (or as-of) month end.

    Defaults: live data with ``features/default.toml`` when pulled, else the offline sample with ``sample.toml``.
    """
    source = source or default_source(home)
    panel = load_panel(home, source)
    feature_spec = load_feature_spec(spec or ("default" if source == "live" else "sample"))
    features = build_features(panel.frame, feature_spec)
    when = features.index[-1] if as_of is None else as_of_month_end(features.index, as_of)
    return FeatureSnapshot(panel, feature_spec, features, when)


def as_of_month_end(index: pd.DatetimeIndex, as_of: str) -> pd.Timestamp:
    """The last month end on or before ``as_of`` that the data covers, or a clear error."""
    try:
        when = pd.Timestamp(as_of)
    except ValueError:
        raise RegimeError(f"--as-of {as_of!r} is not a date like 2016-06-30 or 2016-06") from None
    if len(as_of.strip()) <= 7:  # a month ("2016-06"): its month end
        month_end = when + pd.offsets.MonthEnd(0)
    else:  # a day: the last month end on or before it
        month_end = when if when.is_month_end else when - pd.offsets.MonthEnd(1)
    if month_end < index[0] or month_end > index[-1]:
        raise RegimeError(f"--as-of {as_of} is outside the data ({index[0].date()}..{index[-1].date()})")
    return month_end


@dataclass
class Forecast:
    """A forecast for one month end and where it came from."""

    as_of: pd.Timestamp
    output: pd.Series
    features: pd.Series
    model: str
    source: str
    notes: list[str]


def forecast(home: Path, *, as_of: str | None = None, server: str | None = None, version: str | None = None,
             experiment: str | None = None) -> Forecast:
    """Build the feature row the model was trained on (same spec and data source) and ask the model.

    The model is the registry's champion (or ``version``); with ``server`` the request goes over REST to a
    running ``regime serve``, otherwise the model is loaded in process.
    """
    from .experiment import load_experiment
    from .tracking.serving import choose_model, predict_local, predict_remote

    choice = choose_model(home, version=version)
    exp = load_experiment(experiment or choice.experiment or ("live" if default_source(home) == "live" else
                                                              "quickstart"))
    snap = feature_snapshot(home, spec=exp.feature_spec, source=exp.data_source, as_of=as_of)
    row = snap.features.loc[[snap.as_of]]
    if server:  # the server says which version answered: it need not be the registry's champion of now
        output = predict_remote(server, row)
        model = f"version {output['model_version'].iloc[0]} (loaded by the server) via server {server}"
    else:
        output = predict_local(choice.uri, row)
        model = f"{choice.uri} [{choice.note}] via in-process"
    return Forecast(snap.as_of, output.iloc[0], row.iloc[0], model, snap.panel.source, list(snap.panel.notes))
