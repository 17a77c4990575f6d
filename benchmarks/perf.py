"""Speed as ratios measured in one run: forecasts, serving, tuning, CLI start and backtest against their references.

    python benchmarks/perf.py [--only cli forecast serve tune backtest] [--seconds 60] [--clients 20]
                              [--rounds 2] [--out benchmarks/results]

On a shared machine absolute timings drift with the neighbours' load, so every comparison here runs its two sides
interleaved (A B, B A, ...) in the same process and reports the ratio next to the absolute figures:

- forecast: `regime quickstart` in a fresh home (wall time, once); then, in that home, `regime predict` (in process,
  offline sample, champion trained) and `regime history --from 2008-01 --to 2009-12` vs the import floor
  `python -c "import pandas, lightgbm, mlflow.pyfunc"`, interleaved ``--forecast-reps`` times (medians).
- serve: the registered regime model (four boosters, calibration, TreeSHAP drivers) under what `regime serve` runs
  (MLflow's scoring app behind the request guard) vs the stock server of one plain LightGBM model (the same relative
  classifier, logged with mlflow.lightgbm, under `mlflow models serve --env-manager local`), both on 127.0.0.1. A
  bounded loopback load test (one client, then ``--clients`` concurrent clients for ``--seconds``, each capped by a
  request count) and a 1,000-row request as sent by default (no drivers above 100 rows: the batch case compared
  with stock) and with three drivers per row asked (``"params": {"drivers": 3}``, reported).
- tune: `tune` (what `regime tune` runs: journal storage, MLflow runs) of the quickstart study vs the floor: plain
  Optuna (the same per-trial seeded TPE sampler, fold-median pruner and search space, in-memory storage) with
  plain LightGBM on the same inner folds, checked to reproduce the project's trial values; trials per second.
- cli: cold start of `regime --help` vs a bare interpreter.
- backtest: `run_backtest` of the live experiment (real files to 2018-12 from tests/data/realdata, served from a
  loopback server), with its default worker processes and serially (``jobs=1``), vs the floor: a minimal
  plain-LightGBM + scikit-learn loop over the same folds and parameters, checked to reproduce the project's raw
  predictions; and, per LightGBM fit, vs Nixtla mlforecast and skforecast running the same expanding walk-forward
  when they are installed (``pip install '.[bench]'``).

Targets (issues 15 and 24) are reported as PASS/MISS; they are not asserted in tests. Results go to
``benchmarks/results/perf-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

JSON = {"Content-Type": "application/json"}
# (what, target ratio or seconds, True if higher is better)
TARGETS = {
    "forecast.predict_vs_floor": (1.2, False),
    "forecast.history_vs_floor": (1.2, False),
    "forecast.quickstart_s": (17.7, False),  # issue 24: not slower than 17.7 s after the install
    "serve.one_client.throughput_ratio": (0.95, True),
    "serve.many_clients.throughput_ratio": (0.95, True),
    "serve.many_clients.errors": (0, False),
    "serve.rows_1000.ratio": (1.5, False),
    "serve.rows_1000.latency_s": (0.2, False),
    "tune.vs_floor_ratio": (0.9, True),
    "cli.help.median_s": (0.2, False),
    "backtest.vs_floor_ratio": (1.3, False),
    "backtest.per_fit_vs_mlforecast": (1.0, False),
    "backtest.per_fit_vs_skforecast": (1.0, False),
}


# ---------------------------------------------------------------------------------------------------- cold start
def cold_start(reps: int) -> dict[str, float]:
    """Median wall time of `regime --help` and of a bare interpreter, interleaved ``reps`` times each (seconds)."""
    commands = {"python": [sys.executable, "-c", "pass"], "help": _regime("--help")}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=60)
            times[name].append(time.perf_counter() - start)
    help_s, python_s = statistics.median(times["help"]), statistics.median(times["python"])
    return {"cli.help.median_s": help_s, "cli.python.median_s": python_s, "cli.help_vs_python": help_s / python_s}


# ------------------------------------------------------------------------------------------------------ forecast
def _regime(*args: str) -> list[str]:
    # the console script is exactly this line; -c keeps PYTHONPATH in charge of which checkout is measured
    return [sys.executable, "-c", "from smallcap_regime.cli import main; main()", *args]


def forecast(home: Path, reps: int) -> dict[str, float]:
    """`regime quickstart` once in a fresh home, then predict and history vs the import floor, interleaved."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "REGIME_HOME")}
    start = time.perf_counter()
    subprocess.run(_regime("quickstart", "--home", str(home)), stdout=subprocess.DEVNULL, env=env, check=True,
                   timeout=900)
    out = {"forecast.quickstart_s": time.perf_counter() - start}
    commands = {"floor": [sys.executable, "-c", "import pandas, lightgbm, mlflow.pyfunc"],
                "predict": _regime("predict", "--home", str(home)),
                "history": _regime("history", "--from", "2008-01", "--to", "2009-12", "--home", str(home))}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(reps + 1):  # the first round warms the page cache and is not counted
        names = list(commands) if r % 2 == 0 else list(commands)[::-1]
        for name in names:
            start = time.perf_counter()
            subprocess.run(commands[name], stdout=subprocess.DEVNULL, env=env, check=True, timeout=300)
            if r:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    out |= {f"forecast.{name}_s": value for name, value in median.items()}
    out["forecast.predict_vs_floor"] = median["predict"] / median["floor"]
    out["forecast.history_vs_floor"] = median["history"] / median["floor"]
    return out


# ------------------------------------------------------------------------------------------------------- serving
@dataclass
class Load:
    """Outcome of one bounded load run: successful request latencies (s), failures and wall time (s)."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def add(self, other: Load) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.elapsed += other.elapsed

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else float("nan")


async def _load(url: str, body: bytes, clients: int, seconds: float, max_requests: int) -> Load:
    """``clients`` concurrent keep-alive clients POST ``body`` until ``seconds`` pass or ``max_requests`` are sent."""
    import httpx

    out = Load()
    sent = 0
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                t = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=JSON)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    out.latencies.append(time.perf_counter() - t)
                else:
                    out.errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        out.elapsed = time.perf_counter() - start
    return out


def interleaved_load(urls: dict[str, str], body: bytes, clients: int, seconds: float, rounds: int,
                     max_requests: int) -> dict[str, Load]:
    """Alternate the servers round by round (A B, B A, ...), each round ``seconds / rounds`` long."""
    totals = {name: Load() for name in urls}
    names = list(urls)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            totals[name].add(asyncio.run(_load(urls[name], body, clients, seconds / rounds,
                                               max_requests // rounds)))
    return totals


def _payload(frame, params: dict | None = None) -> bytes:
    split = json.loads(frame.to_json(orient="split", date_format="iso"))
    split.pop("index")
    return json.dumps({"dataframe_split": split, **({"params": params} if params else {})}).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """A model server on a free loopback port, in its own process group: what `regime serve` runs (``guarded``)
    or `mlflow models serve --env-manager local` (stock)."""

    def __init__(self, home: Path, model_uri: str, guarded: bool = False):
        from smallcap_regime.home import mlflow_uri
        from smallcap_regime.tracking.serving import serve_command

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri(home), "MLFLOW_REGISTRY_URI": mlflow_uri(home),
               # mlflow starts `uvicorn` by name: this interpreter's scripts dir first
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        # the server's log goes to a file: a pipe nobody reads would fill up and stall it under load
        self.log = tempfile.TemporaryFile()
        command = (serve_command(home, model_uri, "127.0.0.1", self.port) if guarded else
                   [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
                    "--host", "127.0.0.1", "--port", str(self.port)])
        self.proc = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout_s: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError(f"server on {self.url} not up within {timeout_s} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: mlflow's CLI and the uvicorn it started
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()


def _models(home: Path) -> tuple[str, str, pd.DataFrame, list[str]]:
    """Train and register the quickstart model; log its relative classifier alone as the stock LightGBM model.

    Returns the regime model URI, the stock model URI, the feature frame and the features a request needs.
    """
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    from smallcap_regime.experiment import load_experiment
    from smallcap_regime.home import mlflow_uri
    from smallcap_regime.tracking.train import train

    result = train(load_experiment("quickstart"), home, force=True)
    features = result.backtest.features
    booster = result.model.boosters["relative_classifier"]
    example = features.tail(1)
    mlflow.set_tracking_uri(mlflow_uri(home))
    with mlflow.start_run(run_name="stock lightgbm") as run:
        mlflow.lightgbm.log_model(booster, name="stock", input_example=example,
                                  signature=infer_signature(example, booster.predict(example.to_numpy())))
    return result.model_uri, f"runs:/{run.info.run_id}/stock", features, result.model.required


def serving(home: Path, seconds: float, clients: int, rounds: int, big_reps: int) -> dict[str, float]:
    """Throughput and latency of the regime server vs the stock LightGBM server (see the module docstring)."""
    ours_uri, stock_uri, features, required = _models(home)
    one = _payload(features.tail(1))
    # 1,000 real feature rows that pass the request validation (required features present), drawn with a seed
    valid = features.dropna(subset=required)
    rows = valid.sample(1000, replace=True, random_state=0).reset_index(drop=True)
    big, big_drivers = _payload(rows), _payload(rows, {"drivers": 3})  # default: no drivers above 100 rows
    servers = {"ours": ModelServer(home, ours_uri, guarded=True), "stock": ModelServer(home, stock_uri)}
    try:
        for server in servers.values():
            server.wait_ready()
        urls = {name: f"{s.url}/invocations" for name, s in servers.items()}
        for url in urls.values():  # warm-up: first requests load lazily initialised code paths
            asyncio.run(_load(url, one, 1, 5, 20))
            asyncio.run(_load(url, big, 1, 30, 2))
        single = interleaved_load(urls, one, 1, min(seconds, 20), rounds, max_requests=20_000)
        many = interleaved_load(urls, one, clients, seconds, rounds, max_requests=200_000)
        large = {name: Load() for name in [*urls, "ours_drivers"]}
        for r in range(big_reps):
            for name in list(large) if r % 2 == 0 else list(large)[::-1]:
                url, body = (urls["ours"], big_drivers) if name == "ours_drivers" else (urls[name], big)
                large[name].add(asyncio.run(_load(url, body, 1, 60, 1)))
    finally:
        for server in servers.values():
            server.stop()
    out = {}
    for label, runs in (("one_client", single), ("many_clients", many)):
        for name, load in runs.items():
            out[f"serve.{label}.{name}.rps"] = load.throughput
            out[f"serve.{label}.{name}.p50_ms"] = (statistics.median(load.latencies) * 1e3
                                                   if load.latencies else float("nan"))
            out[f"serve.{label}.{name}.errors"] = load.errors
        out[f"serve.{label}.throughput_ratio"] = runs["ours"].throughput / runs["stock"].throughput
    out["serve.many_clients.errors"] = many["ours"].errors + many["stock"].errors
    out["serve.clients"], out["serve.seconds"] = clients, seconds
    for name, load in large.items():
        out[f"serve.rows_1000.{name}.latency_s"] = statistics.median(load.latencies) if load.latencies else float("nan")
        out[f"serve.rows_1000.{name}.errors"] = load.errors
    out["serve.rows_1000.drivers_ratio"] = (out["serve.rows_1000.ours_drivers.latency_s"]
                                            / out["serve.rows_1000.stock.latency_s"])
    out["serve.rows_1000.latency_s"] = out["serve.rows_1000.ours.latency_s"]
    out["serve.rows_1000.ratio"] = out["serve.rows_1000.ours.latency_s"] / out["serve.rows_1000.stock.latency_s"]
    return out


# -------------------------------------------------------------------------------------------------------- tuning
def tuning_floor(data, settings, fixed: dict, trials: int, storage=None) -> list[float | None]:
    """The floor of `regime tune`: plain Optuna and plain LightGBM on the project's inner folds.

    The same sampler (TPE seeded per trial number, as the project seeds it), pruner (the project's fold-median
    pruner: Optuna has none for folds) and search space; an in-memory study; each fold a LightGBM fit on numpy
    arrays and its loss. ``storage``: an Optuna storage instead of memory. Returns each trial's value (None:
    pruned).
    """
    import lightgbm as lgb
    import numpy as np
    import optuna
    from sklearn.metrics import log_loss

    from smallcap_regime.models.lgbm import DETERMINISTIC
    from smallcap_regime.tuning.objective import FoldMedianPruner
    from smallcap_regime.tuning.space import PARAMS

    x_all, y_all = data.features.to_numpy(dtype="float64"), data.y.to_numpy(dtype="float64")
    folds = []
    for fold in data.folds:
        keep = ~np.isnan(y_all[fold.train])
        realised = ~np.isnan(y_all[fold.test])
        folds.append((x_all[fold.train][keep], y_all[fold.train][keep], x_all[fold.test][realised],
                      y_all[fold.test][realised]))
    classifier = settings.model == "classifier"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=FoldMedianPruner(n_startup_trials=3, n_warmup_steps=1),
                                storage=storage)
    values: list[float | None] = []
    for number in range(trials):
        study.sampler = optuna.samplers.TPESampler(
            seed=int(np.random.SeedSequence([settings.seed, number]).generate_state(1)[0]))
        trial = study.ask()
        params = dict(fixed)
        for name, (low, high) in settings.space.items():
            params[name] = (trial.suggest_int(name, int(low), int(high)) if PARAMS[name].kind is int
                            else trial.suggest_float(name, low, high, log=PARAMS[name].log))
        scores, pruned = [], False
        for step, (x, y, x_test, y_test) in enumerate(folds):
            if classifier:
                model = lgb.LGBMClassifier(**{"objective": "binary", **params, **DETERMINISTIC}).fit(x, y.astype(int))
                scores.append(float(log_loss(y_test.astype(int), model.predict_proba(x_test)[:, 1], labels=[0, 1])))
            else:
                model = lgb.LGBMRegressor(**{"objective": "regression", **params, **DETERMINISTIC}).fit(x, y)
                scores.append(float(np.mean((y_test - model.predict(x_test)) ** 2)))
            trial.report(scores[-1], step)
            if step < len(folds) - 1 and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            values.append(None)
        else:
            study.tell(trial, float(np.mean(scores)))
            values.append(float(np.mean(scores)))
    return values


def tuning(home: Path, trials: int, rounds: int) -> dict[str, float]:
    """`tune` of the quickstart study (fresh study per round) vs :func:`tuning_floor`, interleaved."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from threadpoolctl import threadpool_limits

    from smallcap_regime.dataset import build_dataset
    from smallcap_regime.experiment import load_experiment
    from smallcap_regime.tuning import search_space, tune
    from smallcap_regime.tuning.objective import inner_data

    exp = load_experiment("quickstart")
    settings = search_space(exp)
    data = inner_data(build_dataset(exp, home=home, before=exp.validation.oos_start), settings)
    fixed = getattr(exp.models[settings.target], settings.model)
    # warm-up, not counted: the first study creates the MLflow database and both sides load their libraries
    tune(exp, home, trials=2, study="perf-warm-up")
    tuning_floor(data, settings, fixed, 2)
    sides = ["project", "floor", "floor_journal"]
    times: dict[str, list[float]] = {side: [] for side in sides}
    ours: list[float | None] = []
    floor: list[float | None] = []
    for r in range(rounds):
        for side in sides[r % len(sides):] + sides[:r % len(sides)]:  # rotate the order round by round
            start = time.perf_counter()
            if side == "project":
                study = tune(exp, home, trials=trials, study=f"perf-{r}")
                ours = [t.value if t.state.name == "COMPLETE" else None
                        for t in sorted(study.trials, key=lambda t: t.number)]
            elif side == "floor":
                with threadpool_limits(limits=1):  # as the project's fits
                    floor = tuning_floor(data, settings, fixed, trials)
            else:  # the floor on the project's default storage: what the journal file costs
                journal = JournalStorage(JournalFileBackend(str(home / f"floor-journal-{r}.log")))
                with threadpool_limits(limits=1):
                    tuning_floor(data, settings, fixed, trials, storage=journal)
            times[side].append(time.perf_counter() - start)
    same_pruning = [a is None for a in ours] == [b is None for b in floor]
    worst = max((abs(a - b) for a, b in zip(ours, floor) if a is not None and b is not None), default=0.0)
    if not same_pruning or worst > 1e-9:
        raise AssertionError(f"the tuning floor does not reproduce the project's trials (max diff {worst:g}, "
                             f"same pruned trials: {same_pruning})")
    median = {side: statistics.median(values) for side, values in times.items()}
    return {"tune.trials": trials, "tune.project_trials_per_s": trials / median["project"],
            "tune.floor_trials_per_s": trials / median["floor"],
            "tune.floor_journal_trials_per_s": trials / median["floor_journal"],
            "tune.vs_floor_ratio": median["floor"] / median["project"],
            "tune.vs_floor_journal_ratio": median["floor_journal"] / median["project"],
            "tune.floor_max_abs_diff": worst}


# ------------------------------------------------------------------------------------------------------ backtest
def floor_loop(features, targets, folds, exp) -> dict[str, np.ndarray]:
    """The floor: plain LightGBM and scikit-learn fits over the project's folds and parameters, nothing else.

    Returns the raw test predictions ``{"<target>.<lgbm|linear>.<f|p>": array over all origins}``.
    """
    import lightgbm as lgb
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from smallcap_regime.models.lgbm import DETERMINISTIC, TARGETS

    x_all = features.to_numpy(dtype="float64")
    out = {f"{t}.{m}.{k}": np.full(len(x_all), np.nan) for t in TARGETS for m in ("lgbm", "linear") for k in "fp"}
    for fold in folds:
        for target in TARGETS:
            column = f"{target}_{exp.horizon}m"
            y = targets[column].to_numpy()[fold.train]
            keep = ~np.isnan(y)
            x = x_all[fold.train][keep]
            usable = ~np.isnan(x).all(axis=0)
            x, x_test, y = x[:, usable], x_all[fold.test][:, usable], y[keep]
            up = targets[f"{column}_up"].to_numpy()[fold.train][keep].astype(int)
            spec = exp.models[target]
            reg = lgb.LGBMRegressor(**{"objective": "regression", **spec.regressor, **DETERMINISTIC}).fit(x, y)
            ridge = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                  Ridge(alpha=exp.ridge_alpha)).fit(x, y)
            out[f"{target}.lgbm.f"][fold.test] = reg.predict(x_test)
            out[f"{target}.linear.f"][fold.test] = ridge.predict(x_test)
            if len(np.unique(up)) == 2:
                clf = lgb.LGBMClassifier(**{"objective": "binary", **spec.classifier, **DETERMINISTIC}).fit(x, up)
                logistic = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                         StandardScaler(), LogisticRegression(C=exp.logistic_c, max_iter=2000))
                out[f"{target}.lgbm.p"][fold.test] = clf.predict_proba(x_test)[:, 1]
                out[f"{target}.linear.p"][fold.test] = logistic.fit(x, up).predict_proba(x_test)[:, 1]
            else:
                out[f"{target}.lgbm.p"][fold.test] = out[f"{target}.linear.p"][fold.test] = float(up[0])
    return out


def peer_loops(features, targets, folds, exp) -> dict[str, tuple[Callable[[], object], int]]:
    """The same walk-forward in mlforecast and skforecast, where installed (``pip install '.[bench]'``).

    Each refits the relative target's LightGBM regressor (the project's parameters, the features as exogenous
    regressors) every ``refit_every_months`` over expanding windows starting where the project's first fold
    starts. Returns ``{name: (run, number of LightGBM fits)}``.
    """
    import importlib.util
    import warnings

    import lightgbm as lgb

    from smallcap_regime.models.lgbm import DETERMINISTIC

    column = f"relative_{exp.horizon}m"
    labelled = targets[column].notna()
    x, y = features[labelled], targets.loc[labelled, column]
    step = exp.validation.refit_every_months
    n_windows = (len(y) - int(folds[0].test[0])) // step
    params = {"objective": "regression", **exp.models["relative"].regressor, **DETERMINISTIC}
    loops: dict[str, tuple[Callable[[], object], int]] = {}
    if importlib.util.find_spec("mlforecast"):
        from mlforecast import MLForecast

        frame = x.assign(unique_id="relative", ds=x.index, y=y.to_numpy()).reset_index(drop=True)
        loops["mlforecast"] = (lambda: MLForecast(models={"lgbm": lgb.LGBMRegressor(**params)}, freq="ME")
                               .cross_validation(frame, n_windows=n_windows, h=step, step_size=step, refit=True,
                                                 static_features=[]), n_windows)
    if importlib.util.find_spec("skforecast"):
        from skforecast.model_selection import TimeSeriesFold, backtesting_forecaster
        from skforecast.recursive import ForecasterRecursive

        def skforecast_run() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NaN in early exogenous columns: LightGBM handles them
                cv = TimeSeriesFold(steps=step, initial_train_size=len(y) - n_windows * step, refit=True,
                                    fixed_train_size=False, verbose=False)
                # one lag of the target: skforecast needs at least one autoregressive input
                return backtesting_forecaster(ForecasterRecursive(estimator=lgb.LGBMRegressor(**params), lags=1),
                                              y.asfreq("ME"), cv, "mean_squared_error", exog=x.asfreq("ME"),
                                              n_jobs=1, show_progress=False, suppress_warnings=True)

        loops["skforecast"] = (skforecast_run, n_windows)
    return loops


def backtest(home: Path, rounds: int) -> dict[str, float]:
    """The live backtest vs the floor loop, interleaved ``rounds`` times; the floor must match the raw predictions."""
    import numpy as np
    import pandas as pd
    from run import pull_realdata  # benchmarks/ is this script's directory, first on sys.path
    from threadpoolctl import threadpool_limits

    from smallcap_regime.data import load_panel
    from smallcap_regime.evaluation.backtest import run_backtest
    from smallcap_regime.evaluation.walkforward import make_folds
    from smallcap_regime.experiment import load_experiment
    from smallcap_regime.features.build import build_features, load_feature_spec
    from smallcap_regime.features.targets import build_targets

    pull_realdata(home)  # tests/data/realdata through a loopback server
    exp = load_experiment("live")
    panel = load_panel(home, exp.data_source, small_column=exp.small_column, large_column=exp.large_column)
    # the floor gets the project's features, targets and folds for free: building them is not its work
    features = build_features(panel.frame, load_feature_spec(exp.feature_spec))
    targets = build_targets(panel.frame, exp.horizon)
    val = exp.validation
    folds = make_folds(features.index, horizon=exp.horizon, first_test=val.oos_start,
                       refit_every=val.refit_every_months, min_train=val.min_train_months, embargo=val.embargo_months)
    peers = peer_loops(features, targets, folds, exp)
    sides = ["project", "project_serial", "floor", *peers]
    times: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(rounds):
        for side in sides[r % len(sides):] + sides[:r % len(sides)]:  # rotate the order round by round
            start = time.perf_counter()
            if side == "project":  # default: folds in parallel processes, one per core
                result = run_backtest(exp, home, panel=panel)
            elif side == "project_serial":
                run_backtest(exp, home, panel=panel, jobs=1)
            elif side == "floor":
                with threadpool_limits(limits=1):  # as the project: BLAS threads cost more than they give here
                    floor = floor_loop(features, targets, folds, exp)
            else:
                peers[side][0]()
            times[side].append(time.perf_counter() - start)
    pred = result.predictions
    worst = 0.0
    for name, values in floor.items():
        ours, theirs = pred[name].to_numpy(), pd.Series(values, index=features.index).loc[pred.index].to_numpy()
        same_gaps = np.array_equal(np.isnan(ours), np.isnan(theirs))
        worst = max(worst, float(np.nanmax(np.abs(ours - theirs))) if same_gaps else float("inf"))
    if worst > 1e-9:
        raise AssertionError(f"the floor loop does not reproduce the project's raw predictions (max diff {worst:g})")
    median = {side: statistics.median(values) for side, values in times.items()}
    # unit of fitting work: one LightGBM fit (the project and the floor fit 2 targets x regressor + classifier);
    # the peers run in one process, so the project is compared serially
    per_fit = {side: median[side] / (peers[side][1] if side in peers else 4 * len(folds)) for side in sides}
    out = {"backtest.project_s": median["project"], "backtest.floor_s": median["floor"],
           "backtest.vs_floor_ratio": median["project"] / median["floor"], "backtest.folds": len(folds),
           "backtest.project_serial_s": median["project_serial"],
           "backtest.serial_vs_floor_ratio": median["project_serial"] / median["floor"],
           "backtest.floor_max_abs_diff": worst}
    for side in sides:
        out[f"backtest.{side}.per_fit_ms"] = per_fit[side] * 1e3
    for name in peers:
        out[f"backtest.{name}_s"] = median[name]
        out[f"backtest.per_fit_vs_{name}"] = per_fit["project_serial"] / per_fit[name]
    return out


# ---------------------------------------------------------------------------------------------------------- main
def verdicts(results: dict[str, float]) -> dict[str, str]:
    out = {}
    for key, (target, higher) in TARGETS.items():
        if key in results:
            out[key] = "PASS" if (results[key] >= target if higher else results[key] <= target) else "MISS"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["cli", "forecast", "serve", "tune", "backtest"],
                        default=["cli", "forecast", "serve", "tune", "backtest"])
    parser.add_argument("--seconds", type=float, default=60.0, help="many-client load test length per server")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per comparison")
    parser.add_argument("--cli-reps", type=int, default=15)
    parser.add_argument("--big-reps", type=int, default=10, help="1,000-row requests per server")
    parser.add_argument("--forecast-reps", type=int, default=5, help="predict/history/floor runs each")
    parser.add_argument("--tune-trials", type=int, default=20, help="trials per tuning study")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    results: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if "cli" in args.only:
            results.update(cold_start(args.cli_reps))
        if "forecast" in args.only:
            results.update(forecast(Path(tmp) / "forecast", args.forecast_reps))
        if "serve" in args.only:
            (Path(tmp) / "serve").mkdir()
            results.update(serving(Path(tmp) / "serve", args.seconds, args.clients, args.rounds, args.big_reps))
        if "tune" in args.only:
            (Path(tmp) / "tune").mkdir()
            results.update(tuning(Path(tmp) / "tune", args.tune_trials, args.rounds))
        if "backtest" in args.only:
            (Path(tmp) / "backtest").mkdir()
            results.update(backtest(Path(tmp) / "backtest", args.rounds))
    import pandas as pd

    stamp = pd.Timestamp.now(tz="UTC")
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    checks = verdicts(results)
    print(f"\n=== perf {stamp:%Y-%m-%d %H:%M} UTC on {machine} ({time.perf_counter() - started:.0f} s)")
    for key, value in results.items():
        print(f"{key:42s} {value:12.4g}  {checks.get(key, '')}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"perf-{stamp:%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(
        {"date": stamp.isoformat(), "machine": machine, "results": results, "targets": checks}, indent=2))


if __name__ == "__main__":
    main()
