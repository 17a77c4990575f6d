"""Run named variants (experiment overlays) through the purged walk-forward on several windows and compare them.

A variant is a small TOML overlay (``benchmarks/variants/<name>.toml``): a ``description`` and the experiment
tables it changes, usually ``[options]`` (the model options: what a variant measures is what training ships).
Each window is a base experiment (``quickstart``: offline sample, OOS
1975-2017; ``live``: live files, OOS 1990-2018); the overlay is merged on top of it through the experiment loader's
``extends``, so it is validated like any experiment and runs on the base's identical folds. Every run is logged to
the MLflow experiment ``research`` (one run per variant x window) and appended to ``<home>/research/log.jsonl``,
whose distinct non-base overlays are the "variants tried so far".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from smallcap_regime import build_dataset, load_experiment, run_backtest
from smallcap_regime.configs import load_toml
from smallcap_regime.errors import ConfigError
from smallcap_regime.evaluation.backtest import BacktestResult
from smallcap_regime.experiment import Experiment
from smallcap_regime.names import TARGETS

#: Window label -> base experiment.
WINDOWS = {"sample": "quickstart", "live": "live"}
#: Sub-windows of a run, scored on its predictions: label -> (window, first origin, last origin). Options the offline
#: sample cannot express (e.g. valuation: no book-to-market) are judged on the two halves of the live window.
HALVES = {"live 1990-2004": ("live", "1990-01-01", "2004-12-31"),
          "live 2005-2018": ("live", "2005-01-01", "2018-12-31")}
#: The variant every other is compared with (an empty overlay).
BASE = "base"
MLFLOW_EXPERIMENT = "research"
#: Metric columns of the tables (metrics frame name -> printed name).
COLUMNS = {"r2_oos": "R2_OS", "cw_pvalue": "CW p", "auc": "AUC", "brier_skill": "Brier skill", "sharpe": "Sharpe",
           "buy_and_hold_sharpe": "B&H Sharpe"}


@dataclass(frozen=True)
class Variant:
    """A named overlay: TOML text merged on top of each window's base experiment."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_variant(path: Path) -> Variant:
    """Read an overlay file; it may not name its own base (``extends``): the windows decide that.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML or an ``extends`` key.
    """
    raw = load_toml(path)
    if "extends" in raw:
        raise ConfigError(f"{path}: a variant overlay may not set 'extends'; the window's experiment is its base")
    return Variant(path.stem, path.read_text())


def variant_experiment(variant: Variant, window: str, base: str | Path, workdir: Path) -> Experiment:
    """The window's base experiment with the overlay on top, named ``<window>-<variant>``."""
    path = workdir / f"{window}-{variant.name}.toml"
    path.write_text(f"extends = {json.dumps(str(base))}\n{variant.text}")
    return load_experiment(path)


@dataclass
class RunSummary:
    """One variant on one window.

    Attributes
    ----------
    variant, window : names.
    status : ``"ok"`` or ``"n/a: <reason>"`` when the variant changes nothing on this window's data.
    rows : DataFrame indexed by (target, model): the :data:`COLUMNS` metrics and ``auc_<decade>`` columns.
    seconds : wall time of the backtest.
    """

    variant: str
    window: str
    status: str
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0


def focus_models(variant: str) -> list[str]:
    """The models a table shows for a run: lgbm_cal and the raw lgbm it calibrates (calibration must keep its
    ranking), and for the base run the linear and prevailing-mean baselines."""
    return ["lgbm_cal", "lgbm"] + (["linear_cal", "hist_mean"] if variant == BASE else [])


def not_applicable(exp: Experiment, features: pd.DataFrame) -> str | None:
    """Why a variant's ``[options]`` cannot change anything on this window's features (None: they can)."""
    opts = exp.options
    usable = {c for c in features.columns if features[c].notna().any()}
    family = exp.features().family_of()
    if opts.valuation and not any(family.get(c) == "valuation" for c in usable):
        return f"feature set {exp.feature_spec!r} has no data for family valuation"
    empty = [f for f in opts.drop_families if not any(family.get(c) == f for c in usable)]
    if opts.drop_families and len(empty) == len(opts.drop_families):
        return f"feature set {exp.feature_spec!r} has no data for family {', '.join(empty)}"
    if opts.monotone and not set(opts.monotone) & usable:
        return f"feature set {exp.feature_spec!r} has none of {', '.join(sorted(opts.monotone))}"
    return None


def summarise(result: BacktestResult, variant: str) -> pd.DataFrame:
    """Overall metrics, strategy Sharpe and per-decade AUC of a run's focus models, indexed by (target, model)."""
    rows = []
    decades = result.decade_metrics.sort_index()
    for target in TARGETS:
        strategies = result.strategy_metrics.loc[target, "sharpe"]
        for model in focus_models(variant):
            row = {"target": target, "model": model,
                   **{k: float(result.metrics.loc[(target, model), k]) for k in ("r2_oos", "cw_pvalue", "auc",
                                                                                  "brier_skill")},
                   "sharpe": float(strategies.get(model, np.nan)),
                   "buy_and_hold_sharpe": float(strategies["buy_and_hold"])}
            decade = decades.loc[(target, model)]
            row.update({f"auc_{d}": float(v) for d, v in decade["auc"].items()})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["target", "model"])


def summarise_period(result: BacktestResult, variant: str, first: str, last: str) -> pd.DataFrame:
    """:func:`summarise` on the out-of-sample origins ``first``..``last`` only (no strategy Sharpe)."""
    from smallcap_regime.evaluation import metrics as M
    from smallcap_regime.evaluation.backtest import model_report

    pred = result.predictions
    frame = pred[pred["oos"].astype(bool) & (pred.index >= first) & (pred.index <= last)]
    rows = []
    for target in TARGETS:
        for model in focus_models(variant):
            report = model_report(frame, target, model, result.experiment.horizon)
            row = {"target": target, "model": model,
                   **{k: float(report[k]) for k in ("r2_oos", "cw_pvalue", "auc", "brier_skill")},
                   "sharpe": np.nan, "buy_and_hold_sharpe": np.nan}
            realised = frame[frame[f"{target}.up"].notna()]
            for decade, part in realised.groupby(realised.index.year // 10 * 10):
                row[f"auc_{decade}s"] = M.auc(part[f"{target}.up"], part[f"{target}.{model}.p"])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["target", "model"])


def tried(home: Path) -> int:
    """Distinct non-base overlays ever run under this home (name and content)."""
    log = home / "research" / "log.jsonl"
    if not log.is_file():
        return 0
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return len({(e["variant"], e["sha256"]) for e in entries if e["variant"] != BASE})


def _results_file(home: Path, variant: str, window: str) -> Path:
    return home / "research" / "results" / window / f"{variant}.json"


def saved_summary(home: Path, variant: str, window: str) -> RunSummary | None:
    """The latest run of a variant on a window under this home (None if it never ran)."""
    path = _results_file(home, variant, window)
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    rows = pd.DataFrame(saved["rows"])
    if len(rows):
        rows = rows.set_index(["target", "model"])
    return RunSummary(variant, window, saved["status"], rows, saved["seconds"])


def _log_run(home: Path, variant: Variant, summary: RunSummary, exp: Experiment) -> None:
    """Save the run's summary (for ``--report``) and append it to the log that counts the variants tried."""
    directory = home / "research"
    path = _results_file(home, variant.name, summary.window)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = summary.rows.reset_index().to_dict(orient="records") if len(summary.rows) else []
    path.write_text(json.dumps({"status": summary.status, "seconds": summary.seconds, "rows": rows}))
    entry = {"at": pd.Timestamp.now(tz="UTC").isoformat(), "variant": variant.name, "window": summary.window,
             "sha256": variant.sha256, "status": summary.status, "seconds": round(summary.seconds, 1),
             "experiment": exp.name}
    with (directory / "log.jsonl").open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def _mlflow_run(home: Path, variant: Variant, summary: RunSummary, exp: Experiment, base: str | Path) -> None:
    import mlflow

    from smallcap_regime.tracking.store import experiment_id, git_commit

    with mlflow.start_run(experiment_id=experiment_id(home, MLFLOW_EXPERIMENT),
                          run_name=f"{variant.name} @ {summary.window}"):
        mlflow.set_tags({"variant": variant.name, "window": summary.window, "status": summary.status,
                         "variant_sha256": variant.sha256, "git_commit": git_commit() or "unknown"})
        params = {f"options.{k}": str(v) for k, v in exp.options.model_dump().items()}
        mlflow.log_params({"variant": variant.name, "window": summary.window, "base_experiment": str(base),
                           **params})
        mlflow.log_text(variant.text, "variant.toml")
        metrics = {}
        for (target, model), row in summary.rows.iterrows():
            for key, value in row.items():
                if np.isfinite(value):
                    metrics[f"{target}.{model}.{key}"] = float(value)
        mlflow.log_metrics(metrics)
        mlflow.log_metric("seconds", summary.seconds)


def run_research(chosen: Sequence[Variant], home: Path, *, windows: Mapping[str, str | Path] | None = None,
                 data_home: Path | None = None, workdir: Path | None = None, mlflow: bool = True,
                 echo: Callable[[str], None] = print) -> list[RunSummary]:
    """Backtest every variant on every window; log each run; return the summaries.

    Parameters
    ----------
    chosen : the variants, in the order to run them (include :data:`BASE` to compare against).
    home : home dir of the MLflow store and the research log.
    windows : window label -> base experiment (name or path); default :data:`WINDOWS`.
    data_home : home dir whose cache holds live data (default ``home``).
    workdir : where the merged experiment files are written (default ``<home>/research/experiments``).
    mlflow : log each run to the MLflow experiment ``research``.
    echo : progress output.
    """
    windows = dict(windows or WINDOWS)
    workdir = workdir or home / "research" / "experiments"
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for window, base in windows.items():
        datasets = {}
        for variant in chosen:
            exp = variant_experiment(variant, window, base, workdir)
            # the dataset depends on the data and feature tables only: build it once per window and feature set
            key = (exp.data_source, exp.small_column, exp.large_column, exp.feature_spec, exp.options.valuation,
                   exp.options.train_start, exp.horizon)
            result, reason = None, None
            try:
                if key not in datasets:
                    datasets[key] = build_dataset(exp, home=data_home or home)
                data = datasets[key]
                reason = not_applicable(exp, data.features)
            except ConfigError as exc:  # e.g. a family the window's feature set does not hold
                reason = str(exc).splitlines()[0]
            if reason:
                summary = RunSummary(variant.name, window, f"n/a: {reason}")
            else:
                start = time.perf_counter()
                result = run_backtest(exp, data_home or home, dataset=data)
                summary = RunSummary(variant.name, window, "ok", summarise(result, variant.name),
                                     time.perf_counter() - start)
            echo(f"{variant.name} @ {window}: {summary.status} ({summary.seconds:.0f} s)")
            summaries = [summary]
            for label, (parent, first, last) in HALVES.items():
                if parent == window:
                    summaries.append(RunSummary(variant.name, label, summary.status,
                                                summarise_period(result, variant.name, first, last)
                                                if result is not None else pd.DataFrame()))
            for part in summaries:
                _log_run(home, variant, part, exp)
                if mlflow:
                    _mlflow_run(home, variant, part, exp, base)
            out.extend(summaries)
    return out


def tables(summaries: Sequence[RunSummary]) -> dict[str, pd.DataFrame]:
    """One table per target: rows (variant, window, model), columns the metrics then AUC per decade."""
    out = {}
    for target in TARGETS:
        parts = []
        for s in summaries:
            if s.status != "ok":
                parts.append(pd.DataFrame({"status": [s.status]},
                                          index=pd.MultiIndex.from_tuples([(s.variant, s.window, "-")])))
                continue
            rows = s.rows.loc[target].rename(columns=COLUMNS)
            rows.index = pd.MultiIndex.from_tuples([(s.variant, s.window, m) for m in rows.index])
            parts.append(rows.assign(status="ok"))
        frame = pd.concat(parts)
        frame.index.names = ["variant", "window", "model"]
        decades = sorted(c for c in frame.columns if c.startswith("auc_"))
        out[target] = frame[[*COLUMNS.values(), *decades, "status"]]
    return out


def candidate_model(summary: RunSummary) -> str:
    """The calibrated relative model a variant proposes as the default."""
    return "lgbm_cal"


def adoption(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """The README's adoption rule applied to every variant against :data:`BASE`.

    A variant passes when its calibrated relative model beats the base ``lgbm_cal`` on Brier skill AND AUC on
    every window (the halves aside), and no decade whose base AUC was above 0.5 falls below 0.5. A variant the
    offline sample cannot express (n/a there) is judged on the two halves of the live window (:data:`HALVES`)
    instead; a variant not applicable on a window it is judged on cannot pass.

    Returns
    -------
    DataFrame indexed by variant: ``model``, per window ``<window> dBrier`` / ``<window> dAUC``, ``decades lost``
    (comma-separated ``window:decade``) and ``adopt`` (bool).
    """
    base = {s.window: s for s in summaries if s.variant == BASE and s.status == "ok"}
    present = {s.window for s in summaries}
    rows = []
    for name in dict.fromkeys(s.variant for s in summaries if s.variant != BASE):
        runs = {s.window: s for s in summaries if s.variant == name}
        sample = runs.get("sample")
        halves = sample is not None and sample.status.startswith("n/a") and all(h in runs for h in HALVES)
        windows = list(HALVES) if halves else sorted(present - set(HALVES))
        row: dict[str, object] = {"variant": name, "model": "-", "judged on": ", ".join(windows)}
        ok, lost = True, []
        for window in windows:
            run = runs.get(window)
            if run is None or run.status != "ok" or window not in base:
                row[f"{window} dBrier"] = row[f"{window} dAUC"] = np.nan
                ok = False
                continue
            model = candidate_model(run)
            row["model"] = model
            new, old = run.rows.loc[("relative", model)], base[window].rows.loc[("relative", "lgbm_cal")]
            d_brier, d_auc = new["brier_skill"] - old["brier_skill"], new["auc"] - old["auc"]
            row[f"{window} dBrier"], row[f"{window} dAUC"] = d_brier, d_auc
            ok &= bool(d_brier > 0 and d_auc > 0)
            for key in [k for k in old.index if k.startswith("auc_")]:
                if old[key] > 0.5 and not new.get(key, np.nan) >= 0.5:
                    lost.append(f"{window}:{key.removeprefix('auc_')}")
        row["decades lost"] = ", ".join(lost)
        row["adopt"] = ok and not lost
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def absolute_verdict(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """Absolute-target models that beat the prevailing mean / base rate (R2_OS > 0 and Brier skill > 0) on
    every window they ran on; empty when none does."""
    windows = {s.window for s in summaries if s.window not in HALVES}
    wins: dict[tuple[str, str], set[str]] = {}
    for s in summaries:
        if s.status != "ok" or s.window in HALVES:
            continue
        for model, row in s.rows.loc["absolute"].iterrows():
            if model != "hist_mean" and row["r2_oos"] > 0 and row["brier_skill"] > 0:
                wins.setdefault((s.variant, model), set()).add(s.window)
    both = [key for key, won in wins.items() if won == windows]
    return pd.DataFrame(both, columns=["variant", "model"])
