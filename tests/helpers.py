"""Test-only builders shared by several test modules: small experiments, SYNTHETIC panels and FINRA files
(never market data)."""

from __future__ import annotations

import io
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from smallcap_regime.data.panel import Panel

_PARAMS = """n_estimators = {trees}
learning_rate = {learning_rate}
num_leaves = 7
max_depth = 3
min_child_samples = 40
feature_fraction = 0.7
bagging_fraction = 0.8
bagging_freq = 1
lambda_l2 = 5.0
max_bin = 63
"""
MODEL_SPEC = ('target = "{target}"\n[regressor]\n' + _PARAMS + "seed = {seed}\n[classifier]\n" + _PARAMS
              + "seed = {seed_clf}\n")

EXPERIMENT = """description = "{description}"
[data]
source = "sample"
[features]
spec = "sample"
horizon_months = 3
[models]
relative = "{relative}"
absolute = "{absolute}"
[validation]
oos_start = "{oos_start}"
refit_every_months = {refit}
min_train_months = 120
embargo_months = {embargo}
calibration_min_obs = {calibration_min_obs}
interval_coverage = 0.8
[strategy]
cost_bp = 10
relative_short_side = "reverse"
[registry]
primary_metric = "relative.lgbm_cal.brier_skill"
"""


def write_experiment(directory: Path, name: str = "tiny", *, trees: int = 25, learning_rate: float = 0.08,
                     oos_start: str = "1990-01", refit: int = 60, embargo: int = 1, calibration_min_obs: int = 36,
                     seeds: tuple[int, int] = (101, 201),
                     description: str = "small test experiment on the offline sample") -> Path:
    """Write two small model specs and an experiment using them (offline sample data unless a panel is passed)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for target, seed in zip(("relative", "absolute"), seeds):
        paths[target] = directory / f"{name}_{target}.toml"
        paths[target].write_text(MODEL_SPEC.format(target=target, trees=trees, learning_rate=learning_rate,
                                                   seed=seed, seed_clf=seed + 1))
    path = directory / f"{name}.toml"
    path.write_text(EXPERIMENT.format(description=description, relative=paths["relative"].as_posix(),
                                      absolute=paths["absolute"].as_posix(), oos_start=oos_start, refit=refit,
                                      embargo=embargo, calibration_min_obs=calibration_min_obs))
    return path


def synthetic_panel(seed: int, strength: float = 0.0, start: str = "1955-01", end: str = "2014-12",
                    shape: str = "linear") -> Panel:
    """SYNTHETIC month-end panel with the offline sample's columns (features/sample.toml's inputs).

    The Baa-Aaa spread s_t (pp) is a slow AR(1) around 1 pp (persistence 0.97, sd 0.4). The small-minus-large
    return of month t+1 has mean ``strength * (s_t - 1)`` plus N(0, 3%) noise, so the 3-month relative target at t
    has a mean proportional to the spread level at t. With ``strength = 0`` the relative target is pure noise.
    ``shape = "v"`` plants ``strength * (|s_t - 1| - 0.3)`` instead: small caps lead when the spread is far from
    normal either way, a signal trees find and a linear model of the spread cannot.
    Yields and the bill rate are random walks and the rest is white noise: nuisance inputs a model must ignore.
    """
    rng = np.random.default_rng(seed)
    idx = pd.date_range(pd.Timestamp(start) + pd.offsets.MonthEnd(0), pd.Timestamp(end) + pd.offsets.MonthEnd(0),
                        freq="ME", name="date")
    n = len(idx)
    phi = 0.97
    shocks = rng.normal(0, 0.4 * np.sqrt(1 - phi**2), n)
    spread = np.empty(n)
    spread[0] = 1.0
    for t in range(1, n):
        spread[t] = 1.0 + phi * (spread[t - 1] - 1.0) + shocks[t]
    spread = np.clip(spread, 0.2, None)
    aaa = np.clip(6.0 + 0.075 * np.cumsum(rng.normal(0, 1, n)), 1.5, None)
    rf = np.clip(0.003 + 0.0002 * np.cumsum(rng.normal(0, 1, n)), 0.0, None)
    mkt = 0.006 + rng.normal(0, 0.042, n)
    large = rf + mkt + rng.normal(0, 0.005, n)
    signal = spread - 1.0 if shape == "linear" else np.abs(spread - 1.0) - 0.3
    relative_mean = np.r_[0.0, strength * signal[:-1]]  # month t+1's mean is set by the spread at t
    small = large + 0.001 + relative_mean + rng.normal(0, 0.03, n)
    frame = pd.DataFrame(
        {"small_ret": small, "large_ret": large, "mkt_excess_ret": mkt, "smb": small - large + rng.normal(0, 0.005, n),
         "hml": rng.normal(0.003, 0.03, n), "rf": rf, "aaa": aaa, "baa": aaa + spread,
         "cpi": 30 * np.cumprod(1 + 0.003 + rng.normal(0, 0.002, n))},
        index=idx,
    )
    label = f"planted {shape} spread signal, strength {strength}" if strength else "pure noise"
    return Panel(frame=frame, source="synthetic", notes=[f"SYNTHETIC test panel (seed {seed}, {label})"])


FINRA_HEADER = (
    "accountingYearMonthNumber|symbolCode|issueName|issuerServicesGroupExchangeCode|marketClassCode|"
    "currentShortPositionQuantity|previousShortPositionQuantity|stockSplitFlag|averageDailyVolumeQuantity|"
    "daysToCoverQuantity|revisionFlag|changePercent|changePreviousNumber|settlementDate"
)
ISSUES = {"IWM": "ISHARES RUSSELL 2000 ETF", "SPY": "SPDR S&P 500 ETF TRUST", "AAPL": "Apple Inc. Common Stock"}


def finra_file(settlement: date, iwm_days: float, spy_days: float = 1.0) -> bytes:
    """A SYNTHETIC short-interest file for one settlement date (IWM, SPY and an unrequested AAPL row)."""
    rows = []
    for symbol, days in (("AAPL", 1.5), ("IWM", iwm_days), ("SPY", spy_days)):
        volume = 20_000_000
        rows.append(f"{settlement:%Y%m%d}|{symbol}|{ISSUES[symbol]}|A|ARCA|{int(days * volume)}|50000000||"
                    f"{volume}|{days:.2f}||1.25|600000|{settlement:%Y-%m-%d}")
    return ("\n".join([FINRA_HEADER, *rows]) + "\n").encode()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc; one that ends while it is read is left out)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            children = [int(c) for task in Path(f"/proc/{current}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        out.append(current)
        todo += children
    return out


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (not gone, not a zombie waiting to be reaped; Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (FileNotFoundError, IndexError):
        return False


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(proc: subprocess.Popen, url: str, what: str, timeout_s: float = 120, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail with the process' stderr (or ``log``) if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = log.read_text() if log else proc.stderr.read().decode()
            pytest.fail(f"{what} exited: {output[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{what} did not come up within {timeout_s:.0f} s")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (TIME_WAIT leftovers do not count, as for uvicorn)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make_zip(members: dict[str, bytes]) -> bytes:
    """A zip archive (deflated) holding ``members`` (name -> bytes), as the Ken French library serves files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def scoring_json(predictions) -> str:
    """The response body MLflow's scoring server writes for a model's predictions (DataFrame or records)."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    buffer = io.StringIO()
    predictions_to_json(predictions, buffer)
    return buffer.getvalue()


@contextmanager
def scoring_server(home: Path, model_uri: str) -> Iterator[str]:
    """`regime serve`'s server for ``model_uri`` on a free loopback port, started for real; yields its URL."""
    from smallcap_regime.tracking.serving import mlflow_env, serve_command

    port = free_port()
    proc = subprocess.Popen(serve_command(home, model_uri, "127.0.0.1", port), env=mlflow_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/ping", "the scoring server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_cli(monkeypatch, capsys, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the real `regime` entry point in process with ``env`` exported; returns (exit code, stdout, stderr)."""
    from smallcap_regime.cli import main

    for var, value in (env or {}).items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr("sys.argv", ["regime", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def synthetic_predictions(folds, index: pd.DatetimeIndex, horizon: int, *, seed: int, outcome_noise: float,
                          models: tuple[tuple[str, float, float], ...], logit: float) -> pd.DataFrame:
    """SYNTHETIC raw out-of-sample predictions of the relative target on ``index`` (what the backtest's raw step hands
    to post-processing): a signal, an outcome = signal + noise (the last ``horizon`` rows unrealised), and per
    ``(model, scale, noise)`` a forecast ``scale * signal + noise`` with P = logistic(``logit`` * forecast), set only
    inside the test blocks of ``folds``."""
    from smallcap_regime.evaluation import metrics

    rng = np.random.default_rng(seed)
    n = len(index)
    signal = rng.normal(0, 0.03, n)
    y = pd.Series(signal + rng.normal(0, outcome_noise, n), index=index)
    y.iloc[-horizon:] = np.nan
    up = (y > 0).astype("float64").where(y.notna())
    pred = pd.DataFrame(index=index)
    pred["fold"] = np.nan
    for f in folds:
        pred.iloc[f.test, 0] = f.fold_id
    pred["relative.y"], pred["relative.up"] = y, up
    pred["relative.hist_mean.f"] = metrics.prevailing_mean(y, horizon)
    pred["relative.hist_mean.p"] = metrics.prevailing_mean(up, horizon)
    for model, scale, noise in models:
        forecast = scale * signal + rng.normal(0, noise, n)
        pred[f"relative.{model}.f"] = forecast
        pred[f"relative.{model}.p"] = 1 / (1 + np.exp(-logit * forecast))
    fitted = [c for c in pred.columns if c.startswith(tuple(f"relative.{m}." for m, _, _ in models))]
    pred.loc[pred["fold"].isna(), fitted] = np.nan
    return pred
