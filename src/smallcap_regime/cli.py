"""The `regime` command line. Thin: parses arguments, calls library functions, renders results.

Heavy libraries (pandas, MLflow, LightGBM, Rich progress bars) are imported inside the commands that use them,
so that `regime --help` and argument errors answer at interpreter speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .display import console, err_console, feature_value, frame_table
from .errors import RegimeError
from .home import regime_home

app = typer.Typer(
    help=(
        "Forecast next quarter's small-cap vs large-cap regime of the US stock market.\n\n"
        "Two targets, forecast separately: RELATIVE (small minus large return over the next 3 months) and ABSOLUTE "
        "(small-cap return). Together they give the regime: small-cap-led rally, small caps falling less than "
        "large, large-cap-led rally, or risk-off.\n\n"
        "All state lives in one home dir: --home, else $REGIME_HOME, else ./.regime."
    ),
    epilog=(
        "Typical session: `regime quickstart` (offline, ~1 min) -> `regime data pull` -> `regime backtest live` -> "
        "`regime train live` -> `regime serve` and `regime predict --server http://127.0.0.1:5001` -> `regime ui`."
    ),
    no_args_is_help=True,
    # plain Click help: Typer's Rich help formatter imports Markdown and traceback machinery that alone more than
    # doubles the start-up time of `regime --help`
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download, import and inspect market data (live sources or the offline sample).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

HomeOption = Annotated[Optional[Path], typer.Option("--home", help="Home dir (default $REGIME_HOME or ./.regime).")]
TrackingOption = Annotated[Optional[str], typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server shared by a team (http://host:5000) or database; default the home's SQLite store.")]


def _use_tracking(uri: str | None) -> None:
    """Make ``--tracking-uri`` the MLflow store of this process and of the MLflow processes it starts."""
    import os

    if uri:
        os.environ["MLFLOW_TRACKING_URI"] = uri


@data_app.command("pull")
def data_pull(
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Only these sources (repeatable): french, fred, finra. Default: all.")] = None,
    allow_older: Annotated[bool, typer.Option(
        "--allow-older", help="Accept a download that ends before the cached vintage (normally refused as a "
                              "stale copy).")] = False,
    home: HomeOption = None,
) -> None:
    """Download Ken French, FRED and FINRA data into the cache.

    Each dataset is fetched, validated and only then written (atomically). A failed or invalid download keeps the
    previous vintage, is reported with its reason, and the other datasets still update; the exit code is 1 if
    anything failed. Base URLs can point at a mirror: $REGIME_FRENCH_URL, $REGIME_FRED_URL, $REGIME_FINRA_URL.
    Concurrent pulls on one home take turns (waiting up to $REGIME_LOCK_TIMEOUT seconds).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .data.sources import offline_hint, plan_pull, pull

    home_dir = regime_home(home)
    total = len(plan_pull(source))
    with Progress(TextColumn("[bold]pull"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console.get()) as progress:
        task = progress.add_task("", total=total)
        results = pull(home_dir, source, allow_older=allow_older, on_result=lambda r: progress.update(
            task, advance=1, description=f"{r.key} {'ok' if r.ok else '[red]failed'}"),
            on_note=lambda msg: progress.update(task, description=msg),
            on_warning=lambda msg: err_console.print(f"[yellow]{escape(msg)}[/yellow]", soft_wrap=True))
    import pandas as pd

    frame = pd.DataFrame([{"dataset": r.key, "status": "ok" if r.ok else "FAILED", "detail": r.message}
                          for r in results])
    console.print(frame_table(frame, title=f"data pull into {home_dir / 'data'}",
                              styles={"detail": "dim"}))
    failed = [r for r in results if not r.ok]
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(results)} datasets failed; their previous vintage (if any) "
                          "is kept.[/red]")
        hint = offline_hint(results)
        if hint:
            err_console.print(f"[yellow]{escape(hint)}[/yellow]", soft_wrap=True)
        raise typer.Exit(1)


@data_app.command("status")
def data_status(home: HomeOption = None) -> None:
    """Show what is cached: first/last usable date, rows, when fetched, and whether it is stale.

    With nothing pulled yet, shows the offline sample that the product falls back to.
    """
    from .data.sample import SAMPLE_NOTE
    from .data.status import cache_status, sample_status

    home_dir = regime_home(home)
    status = cache_status(home_dir)
    if status.empty:
        console.print(f"[yellow]No live data in {home_dir / 'data'} yet.[/yellow] Using the {SAMPLE_NOTE}.")
        status = sample_status()
    console.print(frame_table(status, title=f"data in {home_dir}"))


@data_app.command("import-short-interest")
def data_import_short_interest(
    files: Annotated[list[Path], typer.Argument(help="FINRA shrtYYYYMMDD.csv files (pipe-delimited).",
                                                exists=True, dir_okay=False)],
    home: HomeOption = None,
) -> None:
    """Ingest FINRA short-interest files you downloaded by hand (keeps the configured symbols only).

    Every file is checked (plausible quantities, no future settlement date) before anything is written; the
    message counts the rows actually added or changed.
    """
    from .data.sources import import_short_interest

    result = import_short_interest(regime_home(home), files)
    console.print(f"[green]imported[/green] {len(files)} file(s): {result.message}")


@app.command("features")
def features_cmd(
    config: Annotated[Optional[str], typer.Option(
        "--config", "-c", help="Feature spec: a name in features/ (default, sample) or a TOML path.")] = None,
    source: Annotated[Optional[str], typer.Option(
        help="Data: 'live' (the pulled cache) or 'sample' (offline). Default: live if pulled, else sample.")] = None,
    as_of: Annotated[Optional[str], typer.Option(
        "--as-of", help="Month (2016-06) or date; default the latest month end.")] = None,
    catalogue: Annotated[Optional[Path], typer.Option(
        "--catalogue", help="Write the feature catalogue (formula, sources, lag, unit, coverage) as markdown.")] = None,
    home: HomeOption = None,
) -> None:
    """Show the feature row used for a forecast, and coverage per family.

    Every feature at month end t uses only data published by t (release lags applied in the panel).
    """
    from .features.catalogue import catalogue_markdown, family_coverage
    from .workflow import feature_snapshot

    snap = feature_snapshot(regime_home(home), spec=config, source=source, as_of=as_of)
    for note in snap.panel.notes:
        console.print(f"[yellow]{note}[/yellow]")
    family = snap.spec.family_of()
    import pandas as pd

    row = pd.DataFrame({"family": [family[c] for c in snap.features.columns],
                        "value": [feature_value(c, v) for c, v in snap.row.items()]},
                       index=pd.Index(snap.features.columns, name="feature"))
    console.print(frame_table(row, title=f"features at {snap.as_of.date()} ({snap.spec.name} spec, "
                                          f"{snap.panel.source} data)", index=True))
    console.print(frame_table(family_coverage(snap.features, snap.spec), title="coverage per family", index=True,
                              digits=3))
    for name in snap.spec.disabled:  # families the spec defines but does not build, and why
        status = "off (held back, not model input)" if name in snap.spec.held else "unavailable"
        console.print(f"[dim]{name}: {status}: {snap.spec.notes.get(name, '')}[/dim]")
    from .errors import NoDataError
    from .features.valuation import valuation_reading

    try:  # descriptive, whatever the spec says
        console.print(f"valuation at {snap.as_of.date()}: "
                      f"{valuation_reading(snap.panel.frame, snap.as_of).sentence()}")
    except NoDataError as exc:
        console.print(f"[dim]valuation reading: {exc}[/dim]")
    if catalogue:
        from .data.cache import atomic_write_bytes

        atomic_write_bytes(catalogue, catalogue_markdown(snap.spec, snap.features).encode())
        console.print(f"catalogue written to {catalogue}")


@app.command("backtest")
def backtest_cmd(
    experiment: Annotated[str, typer.Argument(
        help="Experiment name in experiments/ (quickstart, live) or a TOML path.")] = "quickstart",
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", min=1, help="Processes fitting folds in parallel (default: the cores; same results).")] = None,
    home: HomeOption = None,
) -> None:
    """Purged walk-forward backtest: LightGBM vs baselines on identical folds, for both targets.

    Prints out-of-sample R2 vs the historical mean (Campbell-Thompson), Clark-West, hit rate, AUC, Brier skill and
    the timing strategies, raw and calibrated side by side; writes predictions, per-fold and per-decade metrics,
    plots and a self-contained report.html under `<home>/runs/<experiment>/<time>/`.
    """
    from .experiment import load_experiment
    from .workflow import backtest

    exp = load_experiment(experiment)  # a bad config is one line, before any progress bar
    with _fold_progress("walk-forward") as on_fold:
        result, out = backtest(exp, regime_home(home), on_fold=on_fold, jobs=jobs)
    print_backtest(result)
    console.print(f"\nwrote predictions, fold and decade metrics, strategy returns, plots and report.html to "
                  f"[bold]{out}[/bold]", soft_wrap=True)
    console.print(f"report: {out / 'report.html'}", soft_wrap=True, highlight=False)


@contextmanager
def _fold_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over walk-forward folds; yields the ``on_fold(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
                  TimeElapsedColumn(), console=console.get()) as progress:
        task = progress.add_task("", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def print_backtest(result, notes: bool = True) -> None:
    """The backtest's tables; ``notes=False`` when the command has already shown the data's notes."""
    from .evaluation.report import identical_strategies, summary_tables

    exp = result.experiment
    for note in result.panel.notes if notes else []:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(f"experiment [bold]{exp.name}[/bold]: {result.panel.source} data "
                  f"{result.panel.first.date()}..{result.panel.last.date()}, {result.features.shape[1]} features, "
                  f"horizon {exp.horizon}m, out-of-sample from {exp.validation.oos_start.date()}, "
                  f"{int(result.timings['folds'])} folds ({result.timings['total_s']:.0f} s)")
    for target in ("relative", "absolute"):
        for title, table in summary_tables(result, target).items():
            console.print(frame_table(table, index=True, digits=3, title=f"{target}: {title}"))
        if same := identical_strategies(result, target):
            console.print(f"[dim]{target}: {', '.join(same)} held the same position as buy-and-hold in every "
                          "quarter, so their rows are buy-and-hold's.[/dim]")
    console.print("[dim]Out of sample. lgbm/linear = raw; *_cal = point forecast shrunk toward the historical mean "
                  "and probabilities Platt-calibrated, maps fitted on earlier out-of-sample pairs only. R2_OS vs the "
                  f"prevailing mean; CW = Clark-West (Newey-West, {exp.horizon - 1} lags), one-sided p; "
                  "P>0.5 hit = P>0.5 vs realised sign (not the card's calls against the base rate); "
                  "Brier skill vs the expanding base rate; strategies on non-overlapping quarters net of "
                  f"{exp.cost_bp:g} bp per position change.[/dim]")


def _train(experiment: str, home_dir: Path, force: bool, params_from_study: str | None, storage: str | None,
           tables: bool = True):
    """Train with a progress bar; print the backtest tables (unless ``tables`` is False) and the registry outcome."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .experiment import load_experiment
    from .workflow import train_experiment

    load_experiment(experiment)  # a bad config is one line, before any progress bar (training loads it again)
    if params_from_study:
        console.print(f"using the best parameters of study [bold]{escape(params_from_study)}[/bold]")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console.get()) as progress:
        task = progress.add_task("train", total=None)
        result = train_experiment(
            experiment, home_dir, force=force, params_from_study=params_from_study, storage=storage,
            on_fold=lambda done, total: progress.update(task, completed=done, total=total),
            on_step=lambda msg: progress.update(task, description=msg))
    if tables:
        print_backtest(result.backtest)
    colour = "green" if result.decision.promote else "yellow"
    console.print(f"{'registered' if result.registered else 'identical to registered'} [bold]{result.model_uri}"
                  f"[/bold] (run {result.run_id})")
    console.print(f"report: {report_location(result.run_id)}", soft_wrap=True, highlight=False)
    console.print(f"[{colour}]champion: {'PROMOTED' if result.decision.promote else 'not promoted'}[/{colour}] - "
                  f"{result.decision.reason}")
    console.print(result.decision.summary())
    return result


def report_location(run_id: str) -> str:
    """Where a training run's report.html is: a file path for a local artifact store, else its artifact URI."""
    from mlflow import MlflowClient

    uri = MlflowClient().get_run(run_id).info.artifact_uri.rstrip("/") + "/report.html"
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return f"{uri} (open it in the MLflow UI: `regime ui`)"


@app.command("train")
def train_cmd(
    experiment: Annotated[str, typer.Argument(help="Experiment name in experiments/ or a TOML path.")] = "quickstart",
    force: Annotated[bool, typer.Option("--force", help="Make this model champion even if the gate says no "
                                        "(recorded on the run and the model version).")] = False,
    params_from_study: Annotated[Optional[str], typer.Option(
        "--params-from-study", help="Use the best parameters of this Optuna study (see `regime tune`).")] = None,
    storage: Annotated[Optional[str], typer.Option(
        envvar="REGIME_TUNING_STORAGE", help="Study storage URL (default: the home's journal file).")] = None,
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Backtest, fit the four LightGBM models, log everything to MLflow and register `smallcap-regime`.

    The alias @champion moves only if the new model beats its baselines and the current champion on the
    experiment's primary metric ([registry] primary_metric); --force overrides, and says so.
    """
    _use_tracking(tracking_uri)
    _train(experiment, regime_home(home), force, params_from_study, storage)


@app.command("tune")
def tune_cmd(
    experiment: Annotated[str, typer.Argument(help="Experiment name in experiments/ or a TOML path.")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1,
                                        help="Total finished trials wanted in the study (shared by all workers).")]
    = 20,
    storage: Annotated[Optional[str], typer.Option(
        envvar="REGIME_TUNING_STORAGE",
        help="Study storage: default the home's Optuna journal file (safe for local parallel workers); "
             "postgresql://user:pass@host/db to share a study across machines (prefer the env var, so the "
             "password stays out of shell history and `ps`).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default `<experiment>-<objective>`).")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Start no new trial after this many seconds.")] = None,
    heartbeat: Annotated[int, typer.Option(
        min=1, help="Database storage: seconds between a running trial's heartbeats; a trial silent for 3 of them "
                    "(its worker was killed) is marked failed and replaced.")] = 30,
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Optuna search of the LightGBM hyperparameters on an inner purged walk-forward.

    Uses only origins whose targets are realised before the experiment's out-of-sample start, so the test period
    is never seen. Each trial is a nested MLflow run. Run the same command in several terminals (or machines, with
    --storage postgresql://...) to tune in parallel; then `regime train EXPERIMENT --params-from-study NAME`.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .experiment import load_experiment
    from .tuning import search_space, study_name_for, tune

    _use_tracking(tracking_uri)
    exp = load_experiment(experiment)
    name = study or study_name_for(exp)
    settings = search_space(exp)
    metric = settings.metric
    console.print(f"tuning {settings.objective} of {escape(exp.name)} on {metric} (lower is better) over "
                  f"{settings.inner_folds} inner folds before {exp.validation.oos_start:%Y-%m}", soft_wrap=True)
    # short fixed columns: the count, the last trial and the time fit in 80 columns (the study is named below)
    with Progress(TextColumn("[bold]tune"), BarColumn(bar_width=20), MofNCompleteColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console.get()) as progress:
        task = progress.add_task("", total=trials)

        def on_trial(trial) -> None:
            value = "pruned" if trial.value is None else f"{metric} {trial.value:.5g}"
            progress.update(task, advance=1, description=f"trial {trial.number}: {value}")

        result = tune(exp, regime_home(home), trials=trials, storage=storage, study=name, timeout=timeout,
                      on_trial=on_trial, heartbeat=heartbeat)
    finished = [t for t in result.trials if t.value is not None]
    if not finished:
        raise RegimeError(f"study {name!r} has no completed trial yet")
    best = result.best_trial
    default = result.user_attrs.get("default_value")
    console.print(f"best trial {best.number}: {metric} {best.value:.6g}" + (
        f" vs {default:.6g} with the default parameters ({best.value - default:+.4g}; lower is better)"
        if default is not None else ""), soft_wrap=True)
    console.print(f"best parameters: {best.params}", soft_wrap=True)
    console.print(f"use it: [bold]regime train {escape(experiment)} --params-from-study {escape(name)}[/bold]"
                  + (" (with the same --storage / REGIME_TUNING_STORAGE)" if storage else ""), soft_wrap=True)
    if storage is None:  # a database URL may hold a password: only the home's journal file is named
        from .tuning import default_storage

        console.print(f"see it: [bold]optuna-dashboard {escape(str(default_storage(regime_home(home))))}[/bold] "
                      + escape("(pip install '.[dashboard]'), or compare its trial runs in `regime ui`"),
                      soft_wrap=True)


FormatOption = Annotated[str, typer.Option(
    "--format", "-f", help="text (the card, default), json (keys in the README) or csv, on stdout.")]


def _check_format(fmt: str) -> None:
    from .export import FORMATS

    if fmt not in FORMATS:
        raise RegimeError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def _write(text: str) -> None:
    """Machine-readable output: plain stdout, no Rich wrapping or markup."""
    import sys

    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command("predict")
def predict_cmd(
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Month (2016-06) or date; default latest.")] = None,
    server: Annotated[Optional[str], typer.Option(
        help="Ask a running `regime serve` (e.g. http://127.0.0.1:5001) instead of loading the model here.")] = None,
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the champion).")] = None,
    experiment: Annotated[Optional[str], typer.Option(
        help="Experiment whose data and features to use (default: the one the model was trained on).")] = None,
    what_if: Annotated[Optional[list[str]], typer.Option(
        "--what-if", metavar="SERIES=SHIFT",
        help="Scenario (repeatable): shift a panel series in its own units from the forecast month on, e.g. "
             "--what-if yield_10y=-0.50 (10-year yield 50 bp lower) --what-if fed_funds=-0.50 (a 50 bp cut); "
             "every feature built from it is rebuilt. Prints baseline, scenario and the difference.")] = None,
    fmt: FormatOption = "text",
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Forecast the next quarter: which months, P(small outperforms) and P(small caps rise) against their base
    rates, point forecasts with intervals in percent, the regime, the rotation status, the drivers in words and
    the model's out-of-sample record.

    Warns when the data are behind today, when an input series is past its maximum age, when many features lie
    outside the range the model was trained on, and when --as-of is a past month the model was fitted on
    (in-sample; `regime history` has what it said out of sample).
    """
    from .workflow import forecast

    _check_format(fmt)
    _use_tracking(tracking_uri)
    scenario = None
    if what_if:
        from .whatif import what_if as run_what_if

        scenario = run_what_if(regime_home(home), what_if, as_of=as_of, server=server, version=version,
                               experiment=experiment)
        result = scenario.baseline
    else:
        result = forecast(regime_home(home), as_of=as_of, server=server, version=version, experiment=experiment)
    if fmt == "json":
        from .export import dumps, forecast_record

        _write(dumps(forecast_record(result, scenario)))
    elif fmt == "csv":
        from .export import csv_text, forecast_rows

        _write(csv_text(forecast_rows(result, scenario)))
    else:
        print_forecast(result)
        if scenario is not None:
            print_scenario(scenario)


def print_scenario(scenario) -> None:
    """Baseline, scenario and difference per target, the regime either way, and the drivers of the difference."""
    import pandas as pd

    from .explain import pct
    from .features.labels import plain_name, value_text
    from .names import TARGETS
    from .whatif import drivers_of_difference

    shifts = ", ".join(f"{name} {value:+g}" for name, value in scenario.shifts.items())
    console.rule(f"[bold]what if: {escape(shifts)} from {scenario.baseline.as_of.date()} on")
    diff = scenario.difference()
    table = pd.DataFrame({
        "baseline": diff["baseline"].map(pct), "scenario": diff["scenario"].map(pct),
        # probabilities move in points, return forecasts in percentage points
        "difference": [f"{d * 100:+.1f} {'pts' if label.startswith('P(') else 'pp'}"
                       for label, d in diff["difference"].items()]}, index=diff.index.rename(""))
    console.print(frame_table(table, index=True))
    console.print(escape(f"regime: {scenario.baseline.output['regime']} -> {scenario.output['regime']}"))
    console.print(escape(f"features rebuilt from the shifted series ({len(scenario.changed)}):"))
    for name in scenario.changed:
        plain, kind = plain_name(name)
        console.print(escape(f"  {plain}: {value_text(kind, float(scenario.baseline.features[name]))} -> "
                             f"{value_text(kind, float(scenario.features[name]))}"))
    for target in TARGETS:
        lines = drivers_of_difference(scenario, target)
        if lines:
            console.print(escape(f"{target}: what moved P, each feature alone:"))
            for line in lines:
                console.print(escape(f"  {line}"))
        elif target not in scenario.effects:
            console.print(escape(f"{target}: no demonstrated skill, so the scenario leaves it at its base rate"))


def print_forecast(result, notes: bool = True) -> None:
    """The forecast card: header, table, regime and per-target lines (``notes=False``: data notes already shown)."""
    from .card import LEGEND, forecast_lines, forecast_table
    from .explain import forecast_header

    for note in result.notes if notes else []:
        console.print(f"[yellow]{escape(note)}[/yellow]")
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(warning)}")
    console.print(f"model {escape(result.model)}")
    console.print(f"[bold]{escape(forecast_header(result))}[/bold]")
    console.print(frame_table(forecast_table(result.output), index=True))
    console.print(f"[dim]{LEGEND}[/dim]")
    for line in forecast_lines(result):
        console.print(escape(line))


@app.command("history")
def history_cmd(
    experiment: Annotated[Optional[str], typer.Option(
        help="Experiment whose champion's record to show (default: live if pulled, else quickstart).")] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="First origin (month, e.g. 2008-01).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Last origin (month, e.g. 2009-12).")] = None,
    target: Annotated[str, typer.Option(help="relative or absolute.")] = "relative",
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the champion).")] = None,
    fmt: FormatOption = "text",
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """The out-of-sample calls the walk-forward made at each origin, with what happened, the share right so far
    (calls against the base rate, the accuracy figure the card prints) and the regime called.

    Each call is what the model would have said then, with the data it had (fitted and calibrated on earlier
    data only), read against the base rate known at the time; it is right when the realised return agrees.
    """
    from .card import history_summary, history_table
    from .workflow import history

    _check_format(fmt)
    _use_tracking(tracking_uri)
    record = history(regime_home(home), experiment=experiment, version=version, target=target, start=start,
                     end=end)
    if fmt != "text":
        from .export import csv_text, dumps, history_rows

        rows = history_rows(record.calls)
        _write(csv_text(rows) if fmt == "csv" else dumps(
            {"model": record.model, "target": record.target, "horizon_months": record.horizon,
             "calls": rows.to_dict("records")}))
        return
    console.print(frame_table(history_table(record.calls), index=True,
                              title=f"{target}: out-of-sample calls of {record.model}"))
    console.print(escape(history_summary(record.calls, record.horizon)))


@app.command("monitor")
def monitor_cmd(
    experiment: Annotated[Optional[str], typer.Option(
        help="Experiment whose champion to monitor (default: live if pulled, else quickstart).")] = None,
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the champion).")] = None,
    since: Annotated[Optional[str], typer.Option(
        help="Count live calls from this month (2019-01) instead of the promotion date.")] = None,
    fmt: FormatOption = "text",
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Drift of the latest features against the champion's training data (share outside the training range, PSI
    per family) and its live record since promotion; logged to MLflow as metrics of the model version.

    `regime predict` warns by itself when the latest row drifts far from the data the model was trained on.
    """
    from .monitor import monitor

    _check_format(fmt)
    _use_tracking(tracking_uri)
    result = monitor(regime_home(home), experiment=experiment, version=version, since=since)
    if fmt == "json":
        from .export import dumps

        _write(dumps(result.to_dict()))
        return
    if fmt == "csv":
        import pandas as pd

        from .export import csv_text

        _write(csv_text(pd.DataFrame([{"model": result.model, "version": result.version,
                                       "as_of": result.drift.as_of.date().isoformat(), **result.metrics()}])))
        return
    console.print(f"model {escape(result.model)}")
    if len(result.drift.psi):
        import pandas as pd

        console.print("population stability index per family, last 36 months vs the training rows:")
        console.print(frame_table(pd.DataFrame({"PSI": result.drift.psi}).rename_axis("family"), index=True,
                                  digits=3))
    for line in result.lines():
        console.print(escape(line))
    console.print("[dim]logged to MLflow: metrics drift.* and live.* on a `monitor` run linked to the model version,"
                  " and monitor.* tags on the version[/dim]")


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="Port.")] = 5001,
    host: Annotated[str, typer.Option(help="Interface; keep 127.0.0.1 unless you mean to expose it.")] = "127.0.0.1",
    version: Annotated[Optional[str], typer.Option(help="Serve this version instead of @champion.")] = None,
    experiment: Annotated[Optional[str], typer.Option(
        help="Experiment whose [registry] model_name to serve (default: live if pulled, else quickstart).")] = None,
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Serve the champion over REST with MLflow (POST /invocations, GET /ping).

    Resolves @champion (or --version) to its version number and replaces itself with MLflow's scoring server for
    models:/<model_name>/<version> (what `mlflow models serve --env-manager local` runs), so SIGTERM or Ctrl-C stop
    the server itself. A guard in front answers 415 for a body that is not JSON, 413 above $REGIME_SERVE_MAX_BYTES
    (4 MiB), 400 for deep nesting or a feature that is not a number, and scores the usual dataframe_split request
    itself from the JSON it parsed once (MLflow's model, checks and answer, byte for byte). Ask it with `regime predict
    --server http://127.0.0.1:5001` or curl (README); each answer names its model_version. Drivers: 3 per row and
    target for a request of up to 100 rows, none for a larger batch (their TreeSHAP is most of its cost) unless it
    sends "params": {"drivers": 3}; "params": {"drivers": 0} skips them for any request.
    """
    from .tracking.serving import check_port_free, exec_server, mlflow_env, serve_command
    from .workflow import champion

    _use_tracking(tracking_uri)
    home_dir = regime_home(home)
    choice = champion(home_dir, experiment, version)
    check_port_free(host, port)
    console.print(f"serving {choice.uri} {escape('[' + choice.note + ']')} on http://{host}:{port} (Ctrl-C stops)",
                  soft_wrap=True)
    exec_server(serve_command(home_dir, choice.uri, host, port), mlflow_env(home_dir))


@app.command("ui")
def ui_cmd(
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1",
    tracking_uri: TrackingOption = None,
    home: HomeOption = None,
) -> None:
    """Open the MLflow UI on this home's store: compare experiments, runs, metrics and plots.

    Prints a link per experiment that opens its runs table (model-training view); one worker, no job runner.
    """
    from .tracking import store
    from .tracking.serving import check_port_free, exec_server, mlflow_env, ui_command, ui_links

    _use_tracking(tracking_uri)
    home_dir = regime_home(home)
    if store.is_server(store.tracking_uri(home_dir)):  # it serves its own UI
        console.print(f"the MLflow tracking server is the UI: open {store.tracking_label(home_dir)}")
        return
    check_port_free(host, port)
    console.print(f"MLflow UI on http://{host}:{port} (Ctrl-C stops); runs tables:", soft_wrap=True)
    for name, url in ui_links(home_dir, host, port):
        console.print(f"  {escape(name)}: {url}", soft_wrap=True)
    exec_server(ui_command(home_dir, host, port), mlflow_env(home_dir, jobs=False))


@app.command("quickstart")
def quickstart_cmd(home: HomeOption = None) -> None:
    """The whole product on the offline sample, no network: data, features, backtest, train, register, predict."""
    from .data.sample import SAMPLE_NOTE
    from .workflow import forecast

    home_dir = regime_home(home)
    console.rule("[bold]1. data")
    console.print(f"Using the {SAMPLE_NOTE}.")
    console.rule("[bold]2-4. features, backtest, train and register")
    trained = _train("quickstart", home_dir, force=False, params_from_study=None, storage=None, tables=False)
    console.rule("[bold]5. forecast")
    print_forecast(forecast(home_dir, experiment="quickstart"), notes=False)
    console.rule("[bold]6. how the model did out of sample")
    print_backtest(trained.backtest, notes=False)
    console.rule("[bold]next")
    console.print(f"- compare runs in the MLflow UI: [bold]regime ui --home {home_dir}[/bold] "
                  "and open the runs-table link it prints", soft_wrap=True)
    console.print(f"- the report (forecast, past calls, strategies, calibration, drivers): "
                  f"{report_location(trained.run_id)}", soft_wrap=True, highlight=False)
    console.print("- past calls: [bold]regime history --from 2008-01 --to 2009-12[/bold]")
    console.print("- live data: [bold]regime data pull[/bold], then [bold]regime train live[/bold]")
    console.print("- serve the champion: [bold]regime serve[/bold]; ask it: "
                  "[bold]regime predict --server http://127.0.0.1:5001[/bold]", soft_wrap=True)


def main() -> None:
    """Entry point: user-facing errors are printed without a traceback and exit with code 2; a remote store that
    cannot be reached (tracking server, database, Optuna storage) is one line naming it and exit code 1."""
    try:
        app()
    except RegimeError as exc:
        _fail(exc)
    except Exception as exc:
        lost = _lost_store(exc)
        if lost is None:
            raise
        _fail(lost)


def _fail(exc: RegimeError) -> None:
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    raise SystemExit(getattr(exc, "exit_code", 2)) from None


def _lost_store(exc: Exception) -> RegimeError | None:
    """The one-line error for a tracking store lost mid-command (its open runs noted for the next command to mark
    FAILED), or None for any other exception. MLflow is imported only when it is already loaded."""
    import sys

    if "mlflow" not in sys.modules:
        return None
    from .tracking import store

    lost = store.lost_store(exc)
    if lost is None:
        return None
    try:
        runs = store.note_unfinished_runs(exc)
    except Exception:  # noqa: BLE001 - noting is best effort; the outage is what the user must read
        return lost
    if runs:
        lost.args = (f"{lost}; the {len(runs)} run(s) it left RUNNING are marked FAILED by the next command that "
                     "reaches the store",)
    return lost
