"""`regime train`: backtest, fit the final models, log everything to MLflow, register, gate the champion alias.

Run layout in the experiment's MLflow experiment: a parent run ``train <experiment>`` with the flattened config,
data fingerprint and git commit; a child run ``backtest`` with every out-of-sample metric (and its delta to each
baseline), predictions, fold and decade metrics and plots; one child run per target with the final models'
parameters, feature importance and SHAP summary. The pyfunc model is logged on the parent run and registered.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..evaluation.backtest import BacktestResult, run_backtest
from ..evaluation.plots import plot_importance
from ..evaluation.report import save_backtest
from ..experiment import Experiment
from ..models.bundle import RegimeModel, fit_regime_model
from ..models.lgbm import TARGETS
from . import registry, store

BASELINE_DELTAS = ("hist_mean", "momentum", "linear_cal")


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    version: str
    decision: registry.Decision
    backtest: BacktestResult
    model: RegimeModel


def backtest_metrics(result: BacktestResult) -> dict[str, float]:
    """Flat ``<target>.<model>.<metric>`` metrics plus ``..._minus_<baseline>`` deltas and strategy stats."""
    out: dict[str, float] = {}
    m = result.metrics
    for (target, model), row in m.iterrows():
        for metric, value in row.items():
            out[f"{target}.{model}.{metric}"] = float(value)
            if model in ("lgbm", "lgbm_cal"):
                for base in BASELINE_DELTAS:
                    out[f"{target}.{model}.{metric}_minus_{base}"] = float(value - m.loc[(target, base), metric])
    for (target, strategy), row in result.strategy_metrics.iterrows():
        for metric, value in row.items():
            out[f"{target}.strategy.{strategy}.{metric}"] = float(value)
    return {k: v for k, v in out.items() if not math.isnan(v)}


def importance_frames(model: RegimeModel, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gain importance per booster, and mean |TreeSHAP contribution| of each classifier over all origins."""
    gain = pd.DataFrame({name: b.feature_importance("gain") for name, b in model.boosters.items()},
                        index=pd.Index(model.features, name="feature"))
    shap = pd.DataFrame({f"{t}_classifier": model.contributions(features, t).abs().mean() for t in TARGETS})
    shap.index.name = "feature"
    return gain, shap


def model_card(exp: Experiment, result: BacktestResult, model: RegimeModel, decision: registry.Decision,
               version: str, commit: str | None) -> str:
    """A markdown model card: what it forecasts, data, validation, results vs baselines, limits."""
    lines = [f"# smallcap-regime model card (v{version})", "",
             f"Experiment `{exp.name}`: {exp.description}", "",
             "## What it forecasts",
             f"- relative: small-cap minus large-cap compounded return over the next {exp.horizon} months "
             "(point forecast shrunk toward the historical mean, conformal interval) and P(small outperforms);",
             f"- absolute: small-cap compounded return over the next {exp.horizon} months and P(return > 0);",
             "- regime: quadrant of the two probabilities, 'no confident call' near 0.5.", "",
             "## Data",
             f"- source: {result.panel.source}, {result.panel.first.date()}..{result.panel.last.date()}, "
             f"fingerprint `{result.panel.fingerprint()[:16]}`",
             *[f"- {note}" for note in result.panel.notes],
             f"- {len(model.features)} features (spec `{exp.feature_spec}`)", "",
             "## Validation",
             f"- purged expanding walk-forward, refit every {exp.validation.refit_every_months} months, "
             f"embargo {exp.validation.embargo_months}, out of sample from {exp.validation.oos_start.date()}",
             "- shrinkage, calibration and intervals fitted only on earlier out-of-sample pairs", "",
             "## Out-of-sample results (model vs baselines)", ""]
    cols = ["r2_oos", "cw_pvalue", "hit_rate", "auc", "brier_skill", "n"]
    for target in TARGETS:
        lines += [f"### {target}", "", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for model_name, row in result.metrics.loc[target, cols].iterrows():
            lines.append(f"| {model_name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        lines.append("")
    lines += ["## Registry", f"- gate on `{exp.primary_metric}`: {'promoted' if decision.promote else 'not promoted'}"
              f" ({decision.reason})", f"- git commit: {commit or 'unknown'}", "",
              "## Limits",
              "- quarterly targets are noisy: with ~140 non-overlapping quarters a Sharpe ratio has a standard error "
              "of about 0.17; read per-decade metrics before trusting an overall number;",
              "- the offline sample ends 2017-03 and uses proxies (see the feature catalogue)." if
              result.panel.source == "sample" else "- live data are as fresh as the last `regime data pull`."]
    return "\n".join(lines) + "\n"


def train(exp: Experiment, home: Path, *, force: bool = False, params_source: str | None = None,
          on_fold: Callable[[int, int], None] | None = None, on_step: Callable[[str], None] | None = None) -> TrainResult:
    """Backtest, fit, log, register and gate one experiment. ``params_source`` notes where tuned params came from."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    step = on_step or (lambda _msg: None)
    exp_id = store.experiment_id(home, exp.name)
    commit = store.git_commit()
    client = MlflowClient()
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {exp.name}") as parent:
        mlflow.log_params(exp.flat_params())
        mlflow.set_tags({"experiment_config": str(exp.path), "git_commit": commit or "unknown",
                         "params_source": params_source or "model specs", "forced": str(force)})
        step("backtest (purged walk-forward)")
        with mlflow.start_run(experiment_id=exp_id, run_name="backtest", nested=True):
            result = run_backtest(exp, home, on_fold=on_fold)
            mlflow.log_metrics(backtest_metrics(result))
            with tempfile.TemporaryDirectory() as tmp:
                save_backtest(result, Path(tmp))
                mlflow.log_artifacts(tmp, artifact_path="backtest")
        panel = result.panel
        mlflow.log_params({"data.fingerprint": panel.fingerprint(), "data.first": str(panel.first.date()),
                           "data.last": str(panel.last.date()), "data.n_features": result.features.shape[1]})
        mlflow.log_dict(panel.vintages, "data_vintages.json")

        step("fit final models")
        meta = {"experiment": exp.name, "feature_spec": exp.feature_spec, "data_source": panel.source, "data_first": str(panel.first.date()),
                "data_last": str(panel.last.date()), "fingerprint": panel.fingerprint(), "git_commit": commit}
        model = fit_regime_model(result.features, result.targets, exp.models, result.final_maps, exp.horizon,
                                 exp.no_call_band, meta)
        gain, shap = importance_frames(model, result.features)
        for target in TARGETS:
            with mlflow.start_run(experiment_id=exp_id, run_name=f"{target} models", nested=True):
                spec = exp.models[target]
                mlflow.log_params({**{f"regressor.{k}": v for k, v in spec.regressor.items()},
                                   **{f"classifier.{k}": v for k, v in spec.classifier.items()}})
                maps = model.maps[target]
                mlflow.log_metrics({"shrink_weight": maps.shrink_weight, "platt_a": maps.platt_a,
                                    "platt_b": maps.platt_b, "interval_lo": maps.interval_lo,
                                    "interval_hi": maps.interval_hi, "n_train": maps.n_train})
                with tempfile.TemporaryDirectory() as tmp:
                    cols = [f"{target}_regressor", f"{target}_classifier"]
                    gain[cols].to_csv(Path(tmp) / "feature_importance_gain.csv")
                    plot_importance(gain[cols], Path(tmp) / "feature_importance_gain.png")
                    shap[[f"{target}_classifier"]].to_csv(Path(tmp) / "shap_summary.csv")
                    plot_importance(shap[[f"{target}_classifier"]], Path(tmp) / "shap_summary.png")
                    mlflow.log_artifacts(tmp)

        step("log and register the pyfunc model")
        example = result.features.tail(1)
        signature = infer_signature(example, model.predict(example))
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = model.save(Path(tmp) / "bundle")
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("model_code.py")),
                artifacts={"bundle": str(bundle_dir)},
                signature=signature, input_example=example, registered_model_name=exp.model_name)
        version = str(info.registered_model_version)
        decision = registry.decide(result.metrics, exp.primary_metric, exp.name,
                                   registry.current_champion(client, exp.model_name), force)
        for key, value in {"experiment": exp.name, "primary_metric": exp.primary_metric,
                           "primary_metric_value": repr(decision.value), "run_id": parent.info.run_id,
                           "data_source": panel.source, "forced": str(decision.forced),
                           "gate": decision.reason}.items():
            client.set_model_version_tag(exp.model_name, version, key, value)
        if decision.promote:
            registry.set_champion(client, exp.model_name, version)
        mlflow.set_tags({"registered_version": version, "champion": str(decision.promote),
                         "gate": decision.reason})
        mlflow.log_text(model_card(exp, result, model, decision, version, commit), "model_card.md")
        mlflow.log_text(json.dumps({"decision": decision.reason, "promoted": decision.promote,
                                    "forced": decision.forced}, indent=2), "registry_decision.json")
        return TrainResult(parent.info.run_id, f"models:/{exp.model_name}/{version}", version, decision, result,
                           model)
