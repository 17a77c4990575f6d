"""High-level operations behind the CLI commands, callable from tests and notebooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .data import Panel, load_panel
from .data.cache import Cache
from .data.sources import PORTFOLIOS_KEY
from .dataset import Dataset, build_dataset
from .errors import RegimeError, StaleInputError, StoreUnavailable
from .experiment import Experiment, load_experiment
from .features.build import FeatureSpec, build_features, load_feature_spec
from .features.rotation import rotation_status
from .urls import redact_url
from .values import Forecast, History, ModelChoice

if TYPE_CHECKING:
    from .evaluation.backtest import BacktestResult
    from .tracking.train import TrainResult

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
        raise RegimeError(f"as_of {as_of!r} is not a date like 2016-06-30 or 2016-06") from None
    if len(as_of.strip()) <= 7:  # a month ("2016-06"): its month end
        month_end = when + pd.offsets.MonthEnd(0)
    else:  # a day: the last month end on or before it
        month_end = when if when.is_month_end else when - pd.offsets.MonthEnd(1)
    if month_end < index[0] or month_end > index[-1]:
        raise RegimeError(f"as_of {as_of} is outside the data ({index[0].date()}..{index[-1].date()})")
    return month_end


def default_experiment(home: Path) -> str:
    """``live`` when live data has been pulled into this home, else ``quickstart`` (the offline sample)."""
    return "live" if default_source(home) == "live" else "quickstart"


def champion(home: Path, experiment: str | None = None, version: str | None = None) -> ModelChoice:
    """The registered model an experiment serves: ``[registry] model_name`` at alias champion (or ``version``).

    Raises
    ------
    RegimeError
        No champion under the experiment's model name (the message says how to make one), or no such version.
    """
    from .tracking.serving import served_model

    exp = load_experiment(experiment or default_experiment(home))
    return served_model(home, exp.model_name, version=version)


def resolve_forecast(home: Path, *, experiment: str | None = None, version: str | None = None,
                     as_of: str | None = None) -> tuple[ModelChoice, Dataset, pd.Timestamp]:
    """The model that answers, the dataset its feature row comes from and the forecast month end: the experiment
    given, else the home's default one; a champion trained under another experiment brings its own (so the
    features are built as that model expects)."""
    from .tracking.serving import choose_model

    exp = load_experiment(experiment or default_experiment(home))
    choice = choose_model(home, exp.model_name, version=version)
    if experiment is None and choice.experiment and choice.experiment != exp.name:
        exp = load_experiment(choice.experiment)
    data = build_dataset(exp, home=home)
    when = data.features.index[-1] if as_of is None else as_of_month_end(data.features.index, as_of)
    return choice, data, when


def forecast(home: Path, *, as_of: str | None = None, server: str | None = None, version: str | None = None,
             experiment: str | None = None, today: date | None = None) -> Forecast:
    """Build the feature row exactly as the model's experiment was trained on, and ask the model.

    Parameters
    ----------
    home : home dir (data cache, MLflow store).
    as_of : month (``2016-06``) or date; default the latest month end the data covers.
    server : URL of a running ``regime serve``; default: load the model in this process.
    version : model version; default the champion of the experiment's ``[registry] model_name``.
    experiment : experiment whose data, features and model name to use; default: the one the model was trained on
        (the model's ``experiment`` tag), else ``live`` when pulled, else ``quickstart``.
    today : the date staleness is judged against (default: today).

    Raises
    ------
    StaleInputError
        The model refuses the feature row because a feature it needs is missing: the message names the input
        series past their maximum age and how to refresh them.
    """
    from mlflow.exceptions import MlflowException

    from .data.freshness import data_behind, stale_inputs
    from .evaluation.drift import drift_warnings
    from .evaluation.record import forecast_window
    from .features.valuation import valuation_lines
    from .tracking.serving import predict_local, predict_remote

    choice, data, when = resolve_forecast(home, experiment=experiment, version=version, as_of=as_of)
    # [options] smooth_k: the model averages each row with the rows before it, so it gets the k - 1 months before
    rows = data.features.loc[:when].tail(data.experiment.options.smooth_k)
    row = rows.tail(1)
    h = data.experiment.horizon
    in_sample = bool(data.target("relative").notna().loc[when])
    warnings = []
    if in_sample:
        warnings.append(f"{when.date()} is in-sample: the model was fitted on data through "
                        f"{data.features.index[-1].date()}, including the {h} months after {when.date()}, so this is "
                        "not what it would have said then; the out-of-sample call made at that origin: "
                        f"`regime history --from {when:%Y-%m} --to {when:%Y-%m}`")
    elif as_of is None and (behind := data_behind(when, today or date.today())):
        warnings.append(behind)
    stale = stale_inputs(home, data.panel, when)
    warnings += [s.warning(data.panel, when) for s in stale]
    warnings += drift_warnings(data.features, data.target("relative"), data.spec.family_of(), when)
    try:
        output = (predict_remote(server, rows) if server else predict_local(choice.uri, rows)).tail(1)
    except StoreUnavailable:  # the server could not be asked: not the model refusing the row
        raise
    except (MlflowException, RegimeError) as exc:  # the request validation, in process or the server's HTTP 400
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        if stale:
            raise StaleInputError(
                f"the model cannot forecast from {when.date()} ({message}); stale input series: "
                + "; ".join(s.describe(when) for s in stale) + ". Refresh them with `regime data pull`") from None
        raise RegimeError(f"the model refused the feature row of {when.date()}: {message}") from None
    # the server says which version answered: it need not be the registry's champion of now
    model = (f"version {output['model_version'].iloc[0]} (loaded by the server) via server {redact_url(server)}"
             if server
             else f"{choice.uri} [{choice.note}] via in-process")
    valuation = valuation_lines(data.panel.frame, when, start=data.experiment.validation.oos_start, horizon_months=h)
    return Forecast(when, output.iloc[0], row.iloc[0], model, data.panel.source, list(data.panel.notes), h,
                    forecast_window(when, h), in_sample, warnings, data.experiment.no_call_band,
                    rotation_status(data.panel.frame, data.target("relative"), when, h), *valuation)


def backtest(experiment: str | Path | Experiment, home: Path, *, on_fold: Callable[[int, int], None] | None = None,
             jobs: int | None = None) -> tuple[BacktestResult, Path]:
    """Run an experiment's backtest and write it under ``<home>/runs/<experiment>/<time>/``, with ``report.html``.

    The report's forecast card and drivers come from the four models fitted on every realised origin, as
    training would fit them (nothing is registered).

    ``jobs`` worker processes fit the folds (default: the cores; the result does not depend on it).

    Returns
    -------
    (result, directory written to)
    """
    from .evaluation.backtest import run_backtest
    from .evaluation.html_report import write_report
    from .evaluation.record import backtest_skill
    from .evaluation.report import run_dir, save_backtest
    from .models.bundle import fit_regime_model

    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    result = run_backtest(exp, home, on_fold=on_fold, jobs=jobs)
    out = run_dir(home, exp.name)
    figures = save_backtest(result, out)
    model = fit_regime_model(result.features, result.targets, exp.estimators(), result.final_maps, exp.horizon,
                             exp.no_call_band, {"experiment": exp.name, "options": exp.options.model_dump()},
                             skill=backtest_skill(result))
    write_report(result, model, out, label="fitted on every realised origin by `regime backtest` (not registered)",
                 figures=figures)
    return result, out


def train_experiment(experiment: str | Path, home: Path, *, force: bool = False,
                     params_from_study: str | None = None, storage: str | None = None,
                     on_fold: Callable[[int, int], None] | None = None,
                     on_step: Callable[[str], None] | None = None) -> TrainResult:
    """Train an experiment, optionally with the best parameters of an Optuna study.

    Parameters
    ----------
    experiment : name in ``experiments/`` or a TOML path.
    home : home dir.
    force : make the new model champion even if the registry gate says no (recorded).
    params_from_study : name of a ``regime tune`` study whose best trial's parameters override the model spec.
    storage : that study's storage URL; default the home's journal file.
    on_fold, on_step : progress callbacks (folds done/total; a description of the current step).
    """
    from .tracking.train import train
    from .tuning import best_trial

    best = best_trial(home, params_from_study, storage) if params_from_study else None
    exp = load_experiment(experiment, model_overrides=best.overrides if best else None)
    # the tuned values are params (model.*) and tags of the run, never part of its name
    source = f"optuna study {params_from_study}, trial {best.number}" if best else None
    return train(exp, home, force=force, params_source=source, on_fold=on_fold, on_step=on_step,
                 tuned=(best.study, best.number) if best else None)


def history(home: Path, *, experiment: str | None = None, version: str | None = None, target: str = "relative",
            start: str | None = None, end: str | None = None) -> History:
    """The calls the walk-forward made at each out-of-sample origin of the model's backtest, as logged by training.

    Parameters
    ----------
    home : home dir (MLflow store).
    experiment : whose ``[registry] model_name`` to use; default ``live`` when pulled, else ``quickstart``.
    version : model version; default the champion.
    target : ``relative`` or ``absolute``.
    start, end : first and last origin to list (months like ``2008-01``); the running hit rate counts from the
        first out-of-sample origin regardless.

    Raises
    ------
    RegimeError
        Unknown target, no such model, or its training run has no backtest predictions.
    """
    from .evaluation.record import past_calls
    from .names import TARGETS
    from .tracking.artifacts import backtest_predictions
    from .tracking.serving import choose_model

    if target not in TARGETS:
        raise RegimeError(f"target {target!r} is not one of {', '.join(TARGETS)}")
    exp = load_experiment(experiment or default_experiment(home))
    choice = choose_model(home, exp.model_name, version=version)
    if experiment is None and choice.experiment and choice.experiment != exp.name:
        exp = load_experiment(choice.experiment)
    first, last = (_month_end(text, name) if text else None for text, name in ((start, "--from"), (end, "--to")))
    calls = past_calls(backtest_predictions(home, choice), target, exp.horizon)
    return History(calls.loc[first:last], f"{choice.uri} [{choice.note}]", target, exp.horizon)


def _month_end(text: str, name: str) -> pd.Timestamp:
    """The month end of ``text`` (``2008-01`` or a date), or a clear error naming the option."""
    try:
        return pd.Timestamp(text) + pd.offsets.MonthEnd(0)
    except ValueError:
        raise RegimeError(f"{name} {text!r} is not a month like 2008-01") from None
