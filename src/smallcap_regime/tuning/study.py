"""Running a study: workers claim trials until the budget is met, each trial is a nested MLflow run."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from ..data import Panel
from ..dataset import build_dataset
from ..errors import RegimeError
from ..experiment import Experiment
from ..tracking import writer
from ..tracking.stale import WORKER_TAG, dead_here, worker
from .objective import FoldMedianPruner, InnerData, _fold_score, inner_data, make_objective
from .space import TuningSettings, search_space, study_name_for
from .storage import default_storage, log, one_fsync, open_storage, report_stale, storage_label

# Trials that use up the budget: finished ones, and running ones (another worker is evaluating them).
CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_S = 30


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
    with warnings.catch_warnings():  # Optuna expects heartbeats with study.optimize; ours come from _heartbeat
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)
        trial = study.ask()
    if _claimed(study, before=trial.number) < budget:
        return trial
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                   TrialState.WAITING)
    return None


def _trial_id(storage: BaseStorage, study: optuna.Study, number: int) -> int:
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def _fail_stale(study: optuna.Study, storage: BaseStorage) -> None:
    """Mark the running trials of dead workers failed, so that their budget slots go to new trials.

    On a database storage a trial is dead when its heartbeat is older than the grace period (Optuna's heartbeats:
    any machine). The journal file has no heartbeats; it serves processes of one machine, so a trial is dead when
    the process recorded as its worker on this machine is gone (killed, crashed, machine rebooted).
    """
    if isinstance(storage, RDBStorage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if dead_here(trial.user_attrs.get("worker")):
            try:
                storage.set_trial_state_values(_trial_id(storage, study, trial.number), TrialState.FAIL)
            except UpdateFinishedTrialError:  # another worker was faster
                continue
            report_stale(study, trial)


def _watched(study: optuna.Study, storage: BaseStorage) -> bool:
    """Whether another worker's running trial could still fail and need a replacement that we would see.

    Called when the budget is claimed: rather than leave, a worker waits for such trials to finish, so that a
    killed worker's trial is replaced before the study ends. Journal trials of other machines cannot be checked.
    """
    # a worker is named on its trial after the trial's first heartbeat (:func:`tune`): an unnamed running trial
    # may never go stale, and waiting for it could last forever
    running = [t.user_attrs["worker"] for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if "worker" in t.user_attrs]
    if isinstance(storage, RDBStorage) and storage.heartbeat_interval:
        return bool(running)
    return any(worker.rpartition(":")[0] == socket.gethostname() for worker in running)


@contextmanager
def _heartbeat(storage: BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while the block runs (database storage with heartbeats)."""
    interval = storage.heartbeat_interval if isinstance(storage, RDBStorage) else None
    if not interval or not isinstance(storage, RDBStorage):
        yield
        return
    stop = threading.Event()
    storage.record_heartbeat(trial_id)  # the first one before the block starts

    def beat() -> None:
        while not stop.wait(interval):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _open_study(exp: Experiment, storage: BaseStorage, name: str, settings: TuningSettings,
                label: str) -> optuna.Study:
    with one_fsync(storage):  # a new study and its settings: on disk together, with one fsync
        study = optuna.create_study(
            storage=storage, study_name=name, sampler=_sampler(settings.seed, 0), direction="minimize",
            pruner=FoldMedianPruner(n_startup_trials=3, n_warmup_steps=1), load_if_exists=True,
        )
        attrs = study.user_attrs
        ours = {"experiment": exp.name, "objective": settings.objective, "metric": settings.metric,
                "space": settings.space}
        for key in ("experiment", "objective"):  # losses of another experiment or objective are not comparable
            if key in attrs and attrs[key] != ours[key]:
                raise RegimeError(f"study {name!r} in {label} tunes {key} {attrs[key]!r}, not {ours[key]!r} "
                                  f"({exp.path}); give the study another name")
        for key, value in ours.items():
            if key not in attrs:
                study.set_user_attr(key, value)
        if study.metric_names is None:
            with warnings.catch_warnings():  # "experimental" in Optuna since 3.2
                warnings.simplefilter("ignore", ExperimentalWarning)
                study.set_metric_names([settings.metric])
    return study


def _run_params(settings: TuningSettings, data: InnerData, trials: int) -> dict[str, Any]:
    """Parent-run params: the tuning settings and the inner period (which shows it ends before oos_start)."""
    index = data.features.index
    params: dict[str, Any] = {f"tuning.{k}": v for k, v in asdict(settings).items() if k != "space"}
    params |= {f"tuning.space.{k}": f"{lo}..{hi}" for k, (lo, hi) in settings.space.items()}
    params |= {"tuning.trials": trials, "inner.first_origin": f"{index[0]:%Y-%m}",
               "inner.last_origin": f"{index[-1]:%Y-%m}",
               "inner.test_starts": " ".join(f"{index[f.test[0]]:%Y-%m}" for f in data.folds)}
    return params


#: MLflow run status of a finished trial (a pruned trial finished early, as designed; it did not fail).
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "FINISHED", TrialState.FAIL: "FAILED"}


def _ms(when) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _trial_run(runs: writer.Session, frozen: FrozenTrial, metric: str) -> None:
    """The trial's nested run, timed as the trial ran: params, fold scores by step, the objective of a complete
    trial and its state. Params and the objective side by side are what MLflow's parallel-coordinates chart plots."""
    start, end = _ms(frozen.datetime_start), _ms(frozen.datetime_complete)
    # `<metric>_fold` sorts after `<metric>`: MLflow's compare view then plots the objective first
    metrics = [(f"{metric}_fold", score, end or start or 0, step)
               for step, score in sorted(frozen.intermediate_values.items())]
    if frozen.state == TrialState.COMPLETE and frozen.value is not None:
        metrics.append((metric, frozen.value, end or 0, 0))
    tags = {"optuna_trial_number": str(frozen.number), "state": frozen.state.name, WORKER_TAG: worker()}
    runs.child(f"trial {frozen.number}", tags, dict(frozen.params), metrics,
               RUN_STATUS.get(frozen.state, "FAILED"), start, end)


class _DefaultScore(threading.Thread):
    """The default parameters' score, computed while the first trials run (once per study: then it is a study
    attr), and logged on the parent run as ``default_<metric>``."""

    def __init__(self, compute: Callable[[], float], runs: writer.Session, metric: str) -> None:
        super().__init__(name="tune-default-score", daemon=True)
        self.compute, self.runs, self.metric = compute, runs, metric
        self.value: float | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.compute()
            self.runs.log(metrics=[(f"default_{self.metric}", self.value, int(time.time() * 1000), 0)])
        except BaseException as exc:  # raised on the tuning thread (check, or result)
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def result(self) -> float:
        self.join()
        self.check()
        assert self.value is not None
        return self.value


def default_score(data: InnerData, settings: TuningSettings, fixed: dict[str, Any]) -> float:
    """The objective of the model spec's own parameters (no tuning) on the same inner folds: what tuning must beat."""
    return float(np.mean([_fold_score(data, fold, fixed, settings.model) for fold in data.folds]))


def _record_best(study: optuna.Study, storage: BaseStorage, runs: writer.Session, settings: TuningSettings,
                 default: float) -> None:
    """Best trial so far -> study user attrs and the worker's parent MLflow run (its params, score, number, the
    one-line summary and ``best_params.json``)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    best = study.best_trial
    assert best.value is not None
    with one_fsync(storage):
        study.set_user_attr("best_params", best.params)
        study.set_user_attr("best_value", best.value)
        study.set_user_attr("best_trial", best.number)
    note = tune_summary(study.study_name, settings.metric, best.number, float(best.value), default)
    runs.log(params={f"best.{k}": v for k, v in best.params.items()},
             metrics=[(f"best_{settings.metric}", float(best.value), int(time.time() * 1000), 0)],
             tags={"best_trial": str(best.number), "mlflow.note.content": note},  # the run's note in the UI
             dicts={"best_params.json": {"objective": settings.objective, "metric": settings.metric,
                                         "value": best.value, "default_params_value": default,
                                         "trial": best.number, "params": best.params}})


def tune_summary(name: str, metric: str, trial: int, best: float, default: float | None) -> str:
    """One line: the metric, the best trial's score and the default parameters' score (the objective is a loss)."""
    line = f"study {name}: best trial {trial}: {metric} {best:.4f} (lower is better)"
    if default is not None:
        line += f"; default parameters {default:.4f}, best - default = {best - default:+.4f}"
    return line


def tune(exp: Experiment, home: Path, *, trials: int, storage: str | None = None, study: str | None = None,
         timeout: float | None = None, on_trial: Callable[[FrozenTrial], None] | None = None,
         panel: Panel | None = None, heartbeat: int = HEARTBEAT_S) -> optuna.Study:
    """Run (or join) the experiment's tuning study until it holds ``trials`` finished trials.

    Several processes may call this with the same ``study`` and ``storage``: each claims trials until the study's
    finished plus running trials reach ``trials``, so together they complete exactly ``trials`` (a trial claimed
    beyond that in a race is put back as WAITING, unevaluated). Rerunning with a larger ``trials`` resumes.

    A killed worker's running trial is marked failed and replaced: on a database storage by any worker once the
    trial's heartbeat is ``3 * heartbeat`` seconds old, on the journal file by the next worker of the same machine
    that claims a trial (including the next start). While other workers' trials run, a worker that finds the budget
    claimed waits for them instead of leaving, so that such a replacement is not left to a later run.

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
    heartbeat : seconds between the heartbeats of a running trial (database storage only).

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
    if trials < 1:
        raise RegimeError(f"trials must be >= 1, got {trials}")
    deadline = None if timeout is None else time.monotonic() + timeout
    start_ms = int(time.time() * 1000)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = search_space(exp)
    name = study or study_name_for(exp)
    label = storage_label(storage, home)
    if heartbeat < 1:
        raise RegimeError(f"heartbeat must be >= 1 second, got {heartbeat}")
    backend = open_storage(storage, home, heartbeat=heartbeat)
    writer.warm()  # settings and storage are good: the MLflow writer process starts while the data and study load
    data = inner_data(build_dataset(exp, home=home, panel=panel, before=exp.validation.oos_start), settings)
    fixed = getattr(exp.models[settings.target], settings.model)
    objective = make_objective(data, settings, fixed)
    the_study = _open_study(exp, backend, name, settings, label)

    def default() -> float:  # once per study: every worker's parent shows it; on its own copy of the data
        if "default_value" not in the_study.user_attrs:
            own = InnerData(data.features.copy(), data.y.copy(), data.folds, data.estimator)
            the_study.set_user_attr("default_value", default_score(own, settings, fixed))
        return float(the_study.user_attrs["default_value"])

    tags = {"optuna_study": name, "optuna_storage": label, WORKER_TAG: worker()}
    with writer.session(home, exp.name, f"tune {name}", tags, start_ms) as runs:
        runs.log(params=_run_params(settings, data, trials))
        scoring = _DefaultScore(default, runs, settings.metric)
        while deadline is None or time.monotonic() < deadline:
            scoring.check()
            _fail_stale(the_study, backend)
            trial = _claim(the_study, backend, trials)
            if trial is None:
                if not _watched(the_study, backend):
                    break
                time.sleep(1.0)
                continue
            the_study.sampler = _sampler(settings.seed, trial.number)
            try:
                with _heartbeat(backend, _trial_id(backend, the_study, trial.number)):
                    trial.set_user_attr("worker", worker())
                    value = objective(trial)
            except optuna.TrialPruned:
                frozen = the_study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
            except UpdateFinishedTrialError:  # failed meanwhile by another worker (a report refused): told below
                frozen = the_study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            except BaseException:  # errors and Ctrl-C: never leave the trial RUNNING (it would hold the budget)
                _trial_run(runs, the_study.tell(trial, state=TrialState.FAIL, skip_if_finished=True),
                           settings.metric)
                raise
            else:
                frozen = the_study.tell(trial, value, skip_if_finished=True)
            _trial_run(runs, frozen, settings.metric)
            if frozen.state not in FINISHED:  # failed meanwhile by another worker: its result is not counted
                log.warning("study %s: trial %d was marked failed by another worker (its heartbeat was late); "
                            "its result is dropped and a new trial replaces it", name, frozen.number)
            elif on_trial:
                on_trial(frozen)
            runs.check()  # after the first trial (which overlaps the writer's start) it waits for the parent run
        _record_best(the_study, backend, runs, settings, scoring.result())
    return the_study


@dataclass(frozen=True)
class BestTrial:
    """The best trial of a finished study, as training uses it.

    Attributes
    ----------
    study, number, value : its study, trial number and objective value.
    metric : the objective's metric (``log_loss``, ``mse``).
    overrides : ``{target: {"regressor"|"classifier": {param: value}}}`` with only the tuned parameters.
    default_value : the objective of the model spec's own parameters, if recorded.
    """

    study: str
    number: int
    value: float
    metric: str
    overrides: dict[str, dict[str, dict[str, Any]]]
    default_value: float | None = None


def best_trial(home: Path, study: str, storage: str | None = None) -> BestTrial:
    """The best trial of ``study`` (see :func:`best_params`, which returns its ``overrides``)."""
    label = storage_label(storage, home)
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
    best = loaded.best_trial
    return BestTrial(study, best.number, float(loaded.best_value), loaded.user_attrs.get("metric", ""),
                     {target: {model: dict(best.params)}}, loaded.user_attrs.get("default_value"))


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
    return best_trial(home, study, storage).overrides
