"""`regime train`: backtest, fit the final models, log everything to MLflow, register, gate the champion alias.

Run layout in the experiment's MLflow experiment: a parent run named after what differs (experiment, tuned-from
study and trial, forced: :func:`review.run_name`) with all params (flattened config with the final hyperparameters,
where they came from, data fingerprint), the headline metrics (:func:`review.headline`, gate metric first), the
panel as a dataset input, a ``vs_champion`` table and a description saying what the headline means; a child
run ``backtest`` with the same params and every
out-of-sample metric plus meaningful deltas to the baselines, predictions, fold and decade metrics and plots; one
child run per target with the final models' parameters, feature importance and SHAP summary. The pyfunc model is
logged on the parent run (the headline metrics are logged against it too), and registered unless an identical
model already is. The parent run also holds ``report.html``: the forecast card, past calls, strategies,
calibration, per-decade metrics and drivers on one self-contained page.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import pandas as pd

from ..data import Panel
from ..evaluation.backtest import BacktestResult, run_backtest
from ..evaluation.compare import compare_forecasts, gate_forecasts
from ..evaluation.headline import backtest_metrics
from ..evaluation.html_report import write_report
from ..evaluation.plots import plot_importance
from ..evaluation.record import backtest_skill, record_metrics
from ..evaluation.report import save_backtest
from ..experiment import Experiment
from ..features.ranges import plausible_ranges
from ..models.bundle import RegimeModel, fit_regime_model
from ..names import BOOSTER_PARTS, TARGETS, booster_name
from . import registry, review, stale, store

#: The packages the served model imports (its code travels in ``code_paths``); MLflow adds itself.
MODEL_REQUIREMENTS = ("lightgbm", "pandas", "numpy", "scipy", "scikit-learn", "pyyaml")


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    version: str
    decision: registry.Decision
    backtest: BacktestResult
    model: RegimeModel
    registered: bool = True




def run_description(exp: Experiment, result: BacktestResult, decision: registry.Decision, version: str,
                    registered: bool, versus: str) -> str:
    """Markdown for the run's description (``mlflow.note.content``): the headline result, the gate decision at
    training time, the ``vs_champion`` table (markdown ``versus``), then what the metrics mean."""
    rel = result.metrics.loc[("relative", "lgbm_cal")]
    sharpe = result.strategy_metrics["sharpe"]
    lines = [f"**{exp.name}** on {result.panel.source} data, out of sample from {exp.validation.oos_start:%Y-%m}.",
             f"Relative target, calibrated LightGBM: R2_OS {rel['r2_oos']:.3f}, Clark-West p {rel['cw_pvalue']:.3f},"
             f" AUC {rel['auc']:.3f}, Brier skill {rel['brier_skill']:.3f}, hit rate {rel['hit_rate']:.3f}; "
             f"strategy Sharpe {sharpe.get(('relative', 'lgbm_cal'), float('nan')):.2f} vs buy-and-hold "
             f"{sharpe.get(('relative', 'buy_and_hold'), float('nan')):.2f}.",
             f"Registry: version {version}{'' if registered else ' (identical model, not registered again)'}; "
             f"gate at training: {'promoted' if decision.promote else 'not promoted'}: {decision.reason} "
             f"(test: {review.gate_test(decision)}). The current champion is the `@champion` alias.", "",
             versus, "", review.HEADLINE_NOTE]
    return "\n".join(lines)


def dataset_name(panel: Panel) -> str:
    """``<source> panel <first>..<last> @ <vintage>``: the latest fetch date (live) or the sample packages."""
    fetched = [v["fetched_at"][:10] for v in panel.vintages.values() if v.get("fetched_at")]
    if fetched:
        vintage = f"fetched {max(fetched)}"
    else:
        packages = {v["file"].split(".")[0]: v.get("package_version", "?") for v in panel.vintages.values()
                    if v.get("file")}
        vintage = ", ".join(f"{k} {v}" for k, v in sorted(packages.items())) or "unknown"
    return f"{panel.source} panel {panel.first:%Y-%m}..{panel.last:%Y-%m} @ {vintage}"


def panel_dataset(panel: Panel):
    """The panel as an MLflow dataset: named by source and vintage, digest = the data fingerprint.

    MLflow stores at most 36 characters of digest, so the fingerprint's first 32 hex digits (128 bits) are used;
    the full fingerprint is the run param ``data.fingerprint``.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

    # built in code from the cache (or the sample packages), not read from one file: a code source says so
    source = CodeDatasetSource(tags={"builder": "smallcap_regime.data.load_panel", "panel_source": panel.source})
    return from_pandas(panel.frame.reset_index(), source=source, name=dataset_name(panel),
                                   digest=panel.fingerprint()[:32])


def model_requirements() -> list[str]:
    """Pinned requirements of the served model (installed versions), without the unpublished package itself."""
    return [f"{name}=={package_version(name)}" for name in MODEL_REQUIREMENTS]


def importance_frames(model: RegimeModel, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gain importance per booster, and mean |TreeSHAP contribution| of each classifier over all origins."""
    # a booster reads only the features with data in its training rows (and not a dropped family): 0 for the rest
    gain = pd.DataFrame({name: pd.Series(b.feature_importance("gain"), index=b.feature_name())
                         for name, b in model.boosters.items()}).reindex(model.features).fillna(0.0)
    gain.index.name = "feature"
    shap = pd.DataFrame({booster_name(t, "classifier"): model.contributions(features, t).abs().mean() for t in TARGETS})
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


def _log_run_params(exp: Experiment, params_source: str | None, force: bool, panel: Panel, n_features: int) -> None:
    """The params a parent and its backtest child share, so either can be compared with any other run."""
    import mlflow

    mlflow.log_params({**exp.flat_params(), "params_source": params_source or "model specs",
                       "forced": str(force), "data.source": panel.source, "data.fingerprint": panel.fingerprint(),
                       "data.first": str(panel.first.date()), "data.last": str(panel.last.date()),
                       "data.n_features": n_features})


def _register(client, exp: Experiment, model: RegimeModel, info) -> tuple[str, bool]:
    """Register the logged model, unless a version with the same bundle digest exists: ``(version, new)``."""
    import mlflow

    digest = model.digest()
    for existing in client.search_model_versions(f"name='{exp.model_name}'"):
        if existing.tags.get("bundle_digest") == digest:
            return str(existing.version), False
    registered = mlflow.register_model(info.model_uri, exp.model_name, tags={"bundle_digest": digest})
    return str(registered.version), True


def train(exp: Experiment, home: Path, *, force: bool = False, params_source: str | None = None,
          on_fold: Callable[[int, int], None] | None = None, on_step: Callable[[str], None] | None = None,
          panel: Panel | None = None, tuned: tuple[str, int] | None = None) -> TrainResult:
    """Backtest, fit, log, register and gate one experiment.

    Parameters
    ----------
    exp : the experiment (its model specs already hold any tuned parameters).
    home : home dir (MLflow store, data cache).
    force : make the model champion even if the gate says no (recorded).
    params_source : where tuned parameters came from (``optuna study <name>, trial <n>``); a param and a tag.
    on_fold, on_step : progress callbacks.
    panel : a prebuilt panel (tests); default: load it as the experiment says.
    tuned : ``(study, trial)`` the parameters came from: named in the run name and tags.

    Returns
    -------
    TrainResult
        ``registered`` is False when an identical model (same bundle digest) was already registered: its version
        is reused (and gated again) instead of piling up a duplicate.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from .pyfunc import AUTO_DRIVERS, SERVED_COLUMNS

    step = on_step or (lambda _msg: None)
    exp_id = store.experiment_id(home, exp.name)
    commit = store.git_commit()
    client = MlflowClient()
    study, trial = tuned or (None, None)
    name = review.run_name(exp.name, study, trial, force)
    with mlflow.start_run(experiment_id=exp_id, run_name=name) as parent:
        mlflow.set_tags({"experiment_config": str(exp.path), "git_commit": commit or "unknown",
                         "params_source": params_source or "model specs", "forced": str(force),
                         "gate_metric": exp.primary_metric, stale.WORKER_TAG: stale.worker(),
                         **({"tuned_study": tuned[0], "tuned_trial": str(tuned[1])} if tuned else {})})
        # two trainings on a shared server may insert this tag at once: the loser's retry finds the row
        store.retry_race(lambda: client.set_experiment_tag(exp_id, review.PRIMARY_TAG, exp.primary_metric))
        step("backtest (purged walk-forward)")
        with mlflow.start_run(experiment_id=exp_id, run_name="backtest", nested=True):
            result = run_backtest(exp, home, panel=panel, on_fold=on_fold)
            panel = result.panel
            _log_run_params(exp, params_source, force, panel, result.features.shape[1])
            dataset = panel_dataset(panel)
            store.retry_race(lambda: mlflow.log_input(dataset, context="training"))
            mlflow.log_metrics(backtest_metrics(result))
            mlflow.log_metrics(record_metrics(backtest_skill(result)))  # the one accuracy figure per target
            with tempfile.TemporaryDirectory() as tmp:
                save_backtest(result, Path(tmp))
                mlflow.log_artifacts(tmp, artifact_path="backtest")
        _log_run_params(exp, params_source, force, panel, result.features.shape[1])
        store.retry_race(lambda: mlflow.log_input(dataset, context="training"))
        mlflow.log_dict(panel.vintages, "data_vintages.json")

        step("fit final models")
        meta = {"experiment": exp.name, "feature_spec": exp.feature_spec, "data_source": panel.source,
                "data_first": str(panel.first.date()), "data_last": str(panel.last.date()),
                "fingerprint": panel.fingerprint(), "git_commit": commit, "options": exp.options.model_dump()}
        model = fit_regime_model(result.features, result.targets, exp.estimators(), result.final_maps, exp.horizon,
                                 exp.no_call_band, meta, plausible_ranges(exp.features()),
                                 skill=backtest_skill(result))
        gain, shap = importance_frames(model, result.features)
        for target in TARGETS:
            with mlflow.start_run(experiment_id=exp_id, run_name=f"{target} models", nested=True):
                spec = exp.models[target]
                mlflow.log_params({**{f"regressor.{k}": v for k, v in spec.regressor.items()},
                                   **{f"classifier.{k}": v for k, v in spec.classifier.items()}})
                maps = model.maps[target]
                record = model.skill[target]
                mlflow.log_metrics({"shrink_weight": maps.shrink_weight, "platt_a": maps.platt_a,
                                    "platt_b": maps.platt_b, "interval_lo": maps.interval_lo,
                                    "interval_hi": maps.interval_hi, "n_train": maps.n_train,
                                    # the skill test: the bootstrap interval of the out-of-sample Brier skill
                                    **{k: v for k, v in (("brier_skill_lo", record.brier_skill_lo),
                                                         ("brier_skill_hi", record.brier_skill_hi))
                                       if math.isfinite(v)}})
                with tempfile.TemporaryDirectory() as tmp:
                    cols = [booster_name(target, part) for part in BOOSTER_PARTS]
                    gain[cols].to_csv(Path(tmp) / "feature_importance_gain.csv")
                    plot_importance(gain[cols], Path(tmp) / "feature_importance_gain.png",
                                    unit="total gain of the feature's splits")
                    shap[[booster_name(target, "classifier")]].to_csv(Path(tmp) / "shap_summary.csv")
                    plot_importance(shap[[booster_name(target, "classifier")]], Path(tmp) / "shap_summary.png",
                                    unit="mean |TreeSHAP contribution| (log-odds, before calibration)")
                    mlflow.log_artifacts(tmp)

        step("log and register the pyfunc model")
        example = result.features.tail(1)
        served = model.predict(example).assign(model_version="1")[SERVED_COLUMNS]
        package = Path(__file__).resolve().parents[1]
        with warnings.catch_warnings():
            # the record's counts are integers by design and never missing: MLflow's hint about NaN does not apply
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            # params: inference options a request may set (drivers per row; 0 skips TreeSHAP for large batches)
            signature = infer_signature(example, served, params={"drivers": AUTO_DRIVERS})
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = model.save(Path(tmp) / "bundle")
            # the model carries its own code (code_paths) and pinned requirements: it loads wherever they are
            # installed, without this (unpublished) package; explicit requirements also skip MLflow's slow inference
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("model_code.py")),
                artifacts={"bundle": str(bundle_dir)}, code_paths=[str(package)],
                pip_requirements=model_requirements(), signature=signature,
                input_example=example)
        # on the parent run and, in the same call, against the logged model and the panel dataset
        headline = review.headline(result, exp.primary_metric)
        store.retry_race(lambda: mlflow.log_metrics(headline, model_id=info.model_id, dataset=dataset))
        # the out-of-sample forecasts a later challenger is compared with, origin by origin
        gate_target, gate_model, _ = registry.split_metric(exp.primary_metric)
        ours = gate_forecasts(result.predictions, gate_target, gate_model)
        mlflow.log_text(ours.to_csv(), registry.GATE_FORECASTS)
        version, registered = _register(client, exp, model, info)
        champion = registry.current_champion(client, exp.model_name)
        comparison = None
        if champion and (champion.get("experiment"), champion.get("primary_metric")) == (exp.name, exp.primary_metric):
            theirs = registry.champion_forecasts(client, champion)
            if theirs is not None:
                comparison = compare_forecasts(theirs, ours, exp.horizon, exp.gate_p_value)
        decision = registry.decide(result.metrics, exp.primary_metric, exp.name, champion, force, comparison)
        versus = review.vs_champion(headline, review.champion_metrics(client, champion), exp.primary_metric)
        mlflow.log_table(versus, "vs_champion.json")
        review.record_version(
            client, exp.model_name, version, registered, parent.info.run_id, decision,
            review.Trained(exp.name, parent.info.run_id, params_source or "the model specs", dataset_name(panel),
                           panel.fingerprint()), versus,
            {"experiment": exp.name, "primary_metric": exp.primary_metric,
             "primary_metric_value": repr(decision.value), "data_source": panel.source, "forced": str(decision.forced),
             **(decision.comparison.tags() if decision.comparison else {})})
        registry.move_aliases(client, exp.model_name, version, decision.promote)
        label = f"champion v{champion['version']}" if champion else "champion"
        # the decision at training time; which version is champion now lives only in the registry's alias
        mlflow.set_tags({"registered_version": version, "registered": str(registered),
                         "gate_promoted": str(decision.promote), "gate": decision.reason,
                         "mlflow.note.content": run_description(exp, result, decision, version, registered,
                                                                review.vs_champion_markdown(versus, label))})
        mlflow.log_text(model_card(exp, result, model, decision, version, commit), "model_card.md")
        step("write the HTML report")
        with tempfile.TemporaryDirectory() as tmp:
            report = write_report(result, model, Path(tmp), label=f"models:/{exp.model_name}/{version}")
            mlflow.log_artifact(str(report))
        mlflow.log_text(json.dumps({"decision": decision.reason, "promoted": decision.promote,
                                    "forced": decision.forced, "registered": registered}, indent=2),
                        "registry_decision.json")
        return TrainResult(parent.info.run_id, f"models:/{exp.model_name}/{version}", version, decision, result,
                           model, registered)
