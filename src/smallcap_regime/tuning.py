"""Hyperparameter tuning: an Optuna study per experiment objective, scored by a nested purged walk-forward.

The objective of a trial is the mean loss over ``inner_folds`` purged walk-forward folds that use only data from
before the experiment's out-of-sample start, so the reported out-of-sample period never influences the chosen
hyperparameters. The panel is cut at ``oos_start`` before any feature or target is built (the no-look-ahead
guarantee is structural), and the usable origins stop where the first out-of-sample fold's training window stops
(``oos_start - h - embargo``), so every inner target was realised before ``oos_start``.

Studies live in an Optuna storage: by default a journal file under ``<home>/tuning`` (safe for several local
processes), or a PostgreSQL (any SQLAlchemy RDB) URL shared by workers on several machines. Each worker process
runs :func:`tune` on the same study name and storage; together they finish exactly the requested number of trials.
Every trial is also a nested MLflow run under one parent run per worker.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState
from sklearn.metrics import log_loss

from .data import Panel, load_panel
from .errors import ConfigError, RegimeError
from .evaluation.walkforward import Fold, make_folds
from .experiment import Experiment
from .features.build import build_features, load_feature_spec
from .features.targets import build_targets
from .home import tuning_dir
from .models.lgbm import TARGETS, make_classifier, make_regressor
from .tracking import store

METRICS = {"regressor": "mse", "classifier": "log_loss"}
SETTINGS = ("objective", "metric", "inner_folds", "seed")
DEFAULT_SEED = 42
# Trials that use up the budget: finished ones, and running ones (another worker is evaluating them).
CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class _Param:
    """A tunable LightGBM hyperparameter: value type, what a bound must satisfy, log-scale sampling."""

    kind: type
    valid: Callable[[float], bool]
    rule: str
    log: bool = False


PARAMS: dict[str, _Param] = {
    "n_estimators": _Param(int, lambda v: v >= 1, ">= 1"),
    "num_leaves": _Param(int, lambda v: v >= 2, ">= 2"),
    "max_depth": _Param(int, lambda v: v >= 1, ">= 1"),
    "min_child_samples": _Param(int, lambda v: v >= 1, ">= 1"),
    "bagging_freq": _Param(int, lambda v: v >= 0, ">= 0"),
    "learning_rate": _Param(float, lambda v: v > 0, "> 0", log=True),
    "feature_fraction": _Param(float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "bagging_fraction": _Param(float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "lambda_l1": _Param(float, lambda v: v >= 0, ">= 0"),
    "lambda_l2": _Param(float, lambda v: v >= 0, ">= 0"),
}


# ----------------------------------------------------------------------------------------------- search space


def _range(value: Any, name: str, where: str) -> tuple[float, float]:
    param = PARAMS[name]
    numeric = (int,) if param.kind is int else (int, float)
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, numeric) and not isinstance(v, bool) for v in value))
    if not ok:
        kind = "integers" if param.kind is int else "numbers"
        raise ConfigError(f"{where}: {name} must be a [low, high] pair of {kind}, got {value!r}")
    low, high = value
    if not (param.valid(low) and param.valid(high)):
        raise ConfigError(f"{where}: {name} bounds must be {param.rule}, got {value!r}")
    if low > high:
        raise ConfigError(f"{where}: {name} low must be <= high, got {value!r}")
    return (param.kind(low), param.kind(high))


def _ranges(section: dict[str, Any], where: str, extra: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    allowed = (*extra, *PARAMS)
    for key in section:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; expected one of: {', '.join(allowed)}")
    return {name: _range(section[name], name, where) for name in PARAMS if name in section}


def search_space(exp: Experiment) -> dict[str, Any]:
    """The experiment's validated ``[tuning]`` section.

    Ranges are ``param = [low, high]`` (integers for integer parameters; ``learning_rate`` is sampled on a log
    scale). The top-level ranges apply to every target; a ``[tuning.<target>]`` table overrides them for that
    target, so each target can have its own search space.

    Parameters
    ----------
    exp : Experiment
        A loaded experiment.

    Returns
    -------
    dict
        ``objective`` ("relative.regressor"), ``target``, ``model`` ("regressor" or "classifier"), ``metric``
        ("mse" or "log_loss", minimised), ``inner_folds``, ``seed`` and ``space`` (param -> (low, high)) for the
        objective's target.

    Raises
    ------
    ConfigError
        No ``[tuning]`` section, or a key is unknown, of the wrong type or out of range; the message names the file
        and the key.
    """
    where = f"{exp.path} [tuning]"
    raw = exp.tuning
    if not raw:
        raise ConfigError(f"{exp.path}: no [tuning] section; add one with an objective and parameter ranges")
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    for name in tables:
        if name not in TARGETS:
            raise ConfigError(f"{where}: unknown table [tuning.{name}]; per-target tables: {', '.join(TARGETS)}")
    space = _ranges({k: v for k, v in raw.items() if k not in tables}, where, SETTINGS)
    overrides = {name: _ranges(table, f"{exp.path} [tuning.{name}]", ()) for name, table in tables.items()}

    objective = raw.get("objective")
    target, _, model = objective.partition(".") if isinstance(objective, str) else ("", "", "")
    if target not in TARGETS or model not in METRICS:
        choices = ", ".join(f"{t}.{m}" for t in TARGETS for m in METRICS)
        raise ConfigError(f"{where}: objective must be one of {choices}, got {objective!r}")
    metric = raw.get("metric", METRICS[model])
    if metric != METRICS[model]:
        raise ConfigError(f"{where}: metric for a {model} objective must be {METRICS[model]!r}, got {metric!r}")
    folds, seed = raw.get("inner_folds", 4), raw.get("seed", DEFAULT_SEED)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"{where}: inner_folds must be an integer >= 2, got {folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}: seed must be an integer >= 0, got {seed!r}")

    space |= overrides.get(target, {})
    if not space:
        raise ConfigError(f"{where}: no parameter ranges; give at least one of: {', '.join(PARAMS)}")
    fixed = getattr(exp.models[target], model)
    if "bagging_fraction" in space and "bagging_freq" not in space and not fixed.get("bagging_freq"):
        raise ConfigError(f"{where}: bagging_fraction has no effect: the {target} {model} spec has no "
                          "bagging_freq > 0 (set it there or add a bagging_freq range)")
    return {"objective": objective, "target": target, "model": model, "metric": metric, "inner_folds": folds,
            "seed": seed, "space": space}


def study_name_for(exp: Experiment) -> str:
    """Default study name: ``<experiment>-<objective>``, e.g. ``quickstart-relative.regressor``."""
    return f"{exp.name}-{search_space(exp)['objective']}"


# ----------------------------------------------------------------------------------------------------- storage


def default_storage(home: Path) -> str:
    """The default journal file, ``<home>/tuning/journal.log``."""
    return str(tuning_dir(home) / "journal.log")


def _redacted(url: str) -> str:
    """The database URL without its password (for messages and MLflow tags)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # unparsable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def open_storage(url: str | None, home: Path) -> BaseStorage:
    """Open the Optuna storage holding the studies.

    Parameters
    ----------
    url : str or None
        None: the default journal file under ``<home>/tuning``. A path without ``://``: a journal file there (for
        example on a shared file system). ``postgresql://user:pass@host/db`` (or another SQLAlchemy database URL):
        a database that workers on several machines share.
    home : Path
        Home dir.

    Raises
    ------
    RegimeError
        A SQLite URL (not safe for parallel workers), or the database cannot be opened.
    """
    if url is None or "://" not in url:
        path = Path(url).expanduser().resolve() if url else Path(default_storage(home))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.split("://", 1)[0].split("+", 1)[0] == "sqlite":
        raise RegimeError(
            f"--storage {url}: SQLite is not supported for tuning: it locks the whole database on every write, so "
            "parallel workers fail with 'database is locked' (and its locking is unreliable on network file "
            "systems). Omit --storage to use the journal file under $REGIME_HOME/tuning (safe for several local "
            "processes), or use postgresql://... to share a study between machines."
        )
    from sqlalchemy.exc import SQLAlchemyError

    try:
        # pool_pre_ping: long trials leave connections idle; the server may have closed them in the meantime
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:
        raise RegimeError(f"--storage {_redacted(url)}: the database driver is not installed ({exc})") from None
    except (SQLAlchemyError, ValueError) as exc:  # bad URL or unreachable server: report without the password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RegimeError(f"--storage {_redacted(url)}: cannot open ({type(exc).__name__}: {first})") from None


def _storage_label(url: str | None, home: Path) -> str:
    """Where the studies are, for messages and MLflow tags (passwords removed)."""
    if url is None:
        return default_storage(home)
    return _redacted(url) if "://" in url else str(Path(url).expanduser().resolve())


# ------------------------------------------------------------------------------------------- inner walk-forward


@dataclass(frozen=True)
class InnerData:
    """Pre-out-of-sample data of a tuning objective.

    Attributes
    ----------
    features : feature matrix on the usable origins (targets realised before ``oos_start``), consecutive months.
    y : the objective's target (return or 0/1 label) on the same origins.
    folds : purged walk-forward folds over those origins (positions), ``inner_folds`` equal test blocks at the end.
    """

    features: pd.DataFrame
    y: pd.Series
    folds: list[Fold]


def inner_data(exp: Experiment, frame: pd.DataFrame, settings: dict[str, Any]) -> InnerData:
    """Build the inner walk-forward from the panel rows strictly before ``exp.validation.oos_start``.

    Parameters
    ----------
    exp : the experiment.
    frame : the monthly panel frame; rows at or after ``oos_start`` are dropped before anything reads them.
    settings : :func:`search_space` output.

    Raises
    ------
    RegimeError
        Too few pre-out-of-sample origins for ``min_train_months`` plus ``inner_folds`` test blocks.
    """
    val, h = exp.validation, exp.horizon
    before = frame[frame.index < val.oos_start]
    features = build_features(before, load_feature_spec(exp.feature_spec))
    targets = build_targets(before, h)
    column = f"{settings['target']}_{h}m" + ("_up" if settings["model"] == "classifier" else "")
    # purge at the outer boundary too: the same origins the first out-of-sample fold trains on
    usable = len(before) - h - val.embargo_months + 1
    gap, k = h + val.embargo_months, settings["inner_folds"]
    block = (usable - val.min_train_months - gap + 1) // k
    if block < 1:
        raise RegimeError(
            f"{exp.path}: {max(usable, 0)} origins before oos_start {val.oos_start:%Y-%m} are too few for "
            f"min_train_months={val.min_train_months} plus {k} inner folds; lower [tuning] inner_folds or "
            "[validation] min_train_months, or move oos_start later"
        )
    index = features.index[:usable]
    first_test = index[usable - k * block]
    folds = make_folds(index, horizon=h, first_test=first_test, refit_every=block, min_train=val.min_train_months,
                       embargo=val.embargo_months, start=first_test)
    return InnerData(features.iloc[:usable], targets[column].iloc[:usable], folds)


def _fold_score(data: InnerData, fold: Fold, params: dict[str, Any], model: str) -> float:
    x_train, y_train = data.features.iloc[fold.train], data.y.iloc[fold.train]
    keep = y_train.notna().to_numpy()
    x_train, y_train = x_train[keep], y_train[keep]
    cols = x_train.columns[x_train.notna().any()]  # as the backtest: drop inputs absent from the window
    x_test, y_test = data.features.iloc[fold.test], data.y.iloc[fold.test]
    realised = y_test.notna().to_numpy()
    x_test, y_test = x_test.loc[realised, cols], y_test[realised].to_numpy()
    if model == "regressor":
        pred = make_regressor(params).fit(x_train[cols], y_train).predict(x_test)
        return float(np.mean((y_test - pred) ** 2))
    proba = make_classifier(params).fit(x_train[cols], y_train.astype(int)).predict_proba(x_test)[:, 1]
    return float(log_loss(y_test.astype(int), proba, labels=[0, 1]))


def _suggest(trial: Trial, space: dict[str, tuple[float, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high) in space.items():
        param = PARAMS[name]
        if param.kind is int:
            out[name] = trial.suggest_int(name, int(low), int(high))
        else:
            out[name] = trial.suggest_float(name, low, high, log=param.log)
    return out


class FoldMedianPruner(optuna.pruners.BasePruner):
    """Median pruning over walk-forward folds (intermediate value at step k = loss of fold k; minimised).

    A trial is pruned after fold k (k >= ``n_warmup_steps``) when its mean loss over folds 0..k is above the median
    of the completed trials' mean loss over the same folds, once ``n_startup_trials`` trials have completed.
    Optuna's ``MedianPruner`` compares a trial's *best* value over steps with the others' values at the current
    step, which suits learning curves but not folds: fold losses differ by period, so the best fold is usually just
    the easiest one and a trial that is bad on the later folds would never be pruned.
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 1) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False

        def mean_to_step(t: FrozenTrial) -> float | None:
            values = [t.intermediate_values.get(s) for s in range(step + 1)]
            return None if None in values else float(np.mean(values))

        done = [m for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if (m := mean_to_step(t)) is not None]
        current = mean_to_step(trial)
        if len(done) < self.n_startup_trials or current is None:
            return False
        return current > float(np.median(done))


def _objective(data: InnerData, settings: dict[str, Any], fixed: dict[str, Any]) -> Callable[[Trial], float]:
    def objective(trial: Trial) -> float:
        params = {**fixed, **_suggest(trial, settings["space"])}
        scores = []
        for step, fold in enumerate(data.folds):
            scores.append(_fold_score(data, fold, params, settings["model"]))
            trial.report(scores[-1], step)
            # after the last fold the score is complete: pruning then would save nothing and discard it
            if step < len(data.folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


# ------------------------------------------------------------------------------------------------------- study


def _sampler(seed: int, number: int) -> optuna.samplers.TPESampler:
    """TPE seeded per trial number: a single-process rerun repeats its trials, and parallel workers do not draw
    the same random start-up points (they would with one shared seed)."""
    return optuna.samplers.TPESampler(seed=int(np.random.SeedSequence([seed, number]).generate_state(1)[0]))


def _claimed(study: optuna.Study, before: int | None = None) -> int:
    """Trials counting against the budget (finished or running), among those numbered below ``before``."""
    trials = study.get_trials(deepcopy=False, states=CLAIMED)
    return sum(1 for t in trials if before is None or t.number < before)


def _claim(study: optuna.Study, storage: BaseStorage, budget: int) -> Trial | None:
    """The next trial to evaluate, or None once finished plus running trials reach ``budget``.

    Workers check the count, then ask for a trial: two of them may both see one free slot. Trial numbers are
    handed out atomically by the storage, so the count of claimed trials numbered below ours decides without a
    race; a trial claimed beyond the budget goes back to the queue (WAITING), unevaluated, for a later run.
    """
    if _claimed(study) >= budget:
        return None
    trial = study.ask()
    if _claimed(study, before=trial.number) < budget:
        return trial
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                   TrialState.WAITING)
    return None


def _open_study(exp: Experiment, storage: BaseStorage, name: str, settings: dict[str, Any],
                label: str) -> optuna.Study:
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=_sampler(settings["seed"], 0), direction="minimize",
        pruner=FoldMedianPruner(n_startup_trials=3, n_warmup_steps=1), load_if_exists=True,
    )
    attrs = study.user_attrs
    ours = {"experiment": exp.name, "objective": settings["objective"], "metric": settings["metric"],
            "space": settings["space"]}
    for key in ("experiment", "objective"):  # losses of another experiment or objective are not comparable
        if key in attrs and attrs[key] != ours[key]:
            raise RegimeError(f"study {name!r} in {label} tunes {key} {attrs[key]!r}, not {ours[key]!r} "
                              f"({exp.path}); pass another --study name")
    for key, value in ours.items():
        if key not in attrs:
            study.set_user_attr(key, value)
    return study


def _run_params(settings: dict[str, Any], data: InnerData, trials: int) -> dict[str, Any]:
    """Parent-run params: the tuning settings and the inner period (which shows it ends before oos_start)."""
    index = data.features.index
    params: dict[str, Any] = {f"tuning.{k}": v for k, v in settings.items() if k != "space"}
    params |= {f"tuning.space.{k}": f"{lo}..{hi}" for k, (lo, hi) in settings["space"].items()}
    params |= {"tuning.trials": trials, "inner.first_origin": f"{index[0]:%Y-%m}",
               "inner.last_origin": f"{index[-1]:%Y-%m}",
               "inner.test_starts": " ".join(f"{index[f.test[0]]:%Y-%m}" for f in data.folds)}
    return params


def _worker() -> str:
    """This process, as recorded on its trials and runs (which worker ran what)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _log_trial(frozen: FrozenTrial, metric: str, experiment: str) -> None:
    """One nested MLflow run per trial: params, objective (complete trials), fold scores by step, state."""
    import mlflow

    tags = {"optuna_trial_number": str(frozen.number), "state": frozen.state.name, "worker": _worker()}
    with mlflow.start_run(experiment_id=experiment, run_name=f"trial {frozen.number}", nested=True, tags=tags):
        mlflow.log_params(frozen.params)
        for step, score in sorted(frozen.intermediate_values.items()):
            mlflow.log_metric(f"fold_{metric}", score, step=step)
        if frozen.state == TrialState.COMPLETE:
            mlflow.log_metric(metric, float(frozen.value))


def _record_best(study: optuna.Study, settings: dict[str, Any]) -> None:
    """Best trial so far -> study user attrs and the active (parent) MLflow run."""
    import mlflow

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    best = study.best_trial
    study.set_user_attr("best_params", best.params)
    study.set_user_attr("best_value", best.value)
    study.set_user_attr("best_trial", best.number)
    mlflow.log_dict({"objective": settings["objective"], "metric": settings["metric"], "value": best.value,
                     "trial": best.number, "params": best.params}, "best_params.json")
    mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
    mlflow.log_metric(f"best_{settings['metric']}", float(best.value))
    mlflow.set_tag("best_trial", str(best.number))


def tune(exp: Experiment, home: Path, *, trials: int, storage: str | None = None, study: str | None = None,
         timeout: float | None = None, on_trial: Callable[[FrozenTrial], None] | None = None,
         panel: Panel | None = None) -> optuna.Study:
    """Run (or join) the experiment's tuning study until it holds ``trials`` finished trials.

    Several processes may call this with the same ``study`` and ``storage``: each claims trials until the study's
    finished plus running trials reach ``trials``, so together they complete exactly ``trials`` (a trial claimed
    beyond that in a race is put back as WAITING, unevaluated). Rerunning with a larger ``trials`` resumes.

    Parameters
    ----------
    exp : the experiment; its ``[tuning]`` section gives the objective, metric, inner folds, seed and ranges.
    home : home dir (MLflow store, default journal storage, live data cache).
    trials : total finished (complete or pruned) trials the study should hold.
    storage : see :func:`open_storage`; default the journal file under ``<home>/tuning``.
    study : study name; default :func:`study_name_for`.
    timeout : seconds (from the call) after which this process starts no new trial.
    on_trial : called with each trial this process finishes (complete or pruned), e.g. to advance a progress bar.
    panel : a prebuilt panel; default: load it as the experiment says. Only rows before ``oos_start`` are read.

    Returns
    -------
    optuna.Study
        The study, best parameters recorded as user attrs ``best_params``/``best_value``/``best_trial``.

    Raises
    ------
    ConfigError, RegimeError
        Invalid ``[tuning]`` section, unusable storage, a study name used for another experiment/objective, or
        too little pre-out-of-sample data.
    """
    import mlflow

    if trials < 1:
        raise RegimeError(f"--trials must be >= 1, got {trials}")
    deadline = None if timeout is None else time.monotonic() + timeout
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = search_space(exp)
    name = study or study_name_for(exp)
    label = _storage_label(storage, home)
    backend = open_storage(storage, home)
    if panel is None:
        panel = load_panel(home, exp.data_source, small_column=exp.small_column, large_column=exp.large_column)
    data = inner_data(exp, panel.frame, settings)
    fixed = getattr(exp.models[settings["target"]], settings["model"])
    objective = _objective(data, settings, fixed)
    the_study = _open_study(exp, backend, name, settings, label)
    experiment = store.experiment_id(home, exp.name)  # under the home lock that training shares
    tags = {"optuna_study": name, "optuna_storage": label, "worker": _worker()}
    with mlflow.start_run(experiment_id=experiment, run_name=f"tune {name}", tags=tags):
        mlflow.log_params(_run_params(settings, data, trials))
        while deadline is None or time.monotonic() < deadline:
            trial = _claim(the_study, backend, trials)
            if trial is None:
                break
            the_study.sampler = _sampler(settings["seed"], trial.number)
            trial.set_user_attr("worker", _worker())
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                frozen = the_study.tell(trial, state=TrialState.PRUNED)
            except BaseException:  # errors and Ctrl-C: never leave the trial RUNNING (it would hold the budget)
                _log_trial(the_study.tell(trial, state=TrialState.FAIL), settings["metric"], experiment)
                raise
            else:
                frozen = the_study.tell(trial, value)
            _log_trial(frozen, settings["metric"], experiment)
            if on_trial:
                on_trial(frozen)
        _record_best(the_study, settings)
    return the_study


def best_params(home: Path, study: str, storage: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """The best trial's parameters, shaped for ``load_experiment(..., model_overrides=...)``.

    Parameters
    ----------
    home : home dir (default journal storage).
    study : study name.
    storage : see :func:`open_storage`.

    Returns
    -------
    dict
        ``{target: {"regressor"|"classifier": {param: value}}}`` with only the tuned parameters; the model spec's
        other settings (seed, max_bin, ...) stay as they are.

    Raises
    ------
    RegimeError
        No such storage or study, or the study has no completed trial yet.
    """
    label = _storage_label(storage, home)
    if storage is None and not Path(default_storage(home)).is_file():
        raise RegimeError(f"no tuning studies in {home} yet ({label} does not exist); run `regime tune` first")
    backend = open_storage(storage, home)
    try:
        loaded = optuna.load_study(study_name=study, storage=backend)
    except KeyError:
        names = optuna.get_all_study_names(backend)
        raise RegimeError(f"no study {study!r} in {label}; studies: {', '.join(names) or 'none'}") from None
    if not loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise RegimeError(f"study {study!r} in {label} has no completed trial yet; run `regime tune` first")
    if "objective" not in loaded.user_attrs:
        raise RegimeError(f"study {study!r} in {label} was not created by `regime tune` (no objective recorded)")
    target, _, model = loaded.user_attrs["objective"].partition(".")
    return {target: {model: dict(loaded.best_trial.params)}}
