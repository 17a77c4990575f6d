"""The `regime` command line. Thin: parses arguments, calls library functions, renders results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .display import console, err_console, frame_table
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
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download, import and inspect market data (live sources or the offline sample).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

HomeOption = Annotated[Optional[Path], typer.Option("--home", help="Home dir (default $REGIME_HOME or ./.regime).")]


@data_app.command("pull")
def data_pull(
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Only these sources (repeatable): french, fred, finra. Default: all.")] = None,
    home: HomeOption = None,
) -> None:
    """Download Ken French, FRED and FINRA data into the cache.

    Each dataset is fetched, validated and only then written (atomically). A failed or invalid download keeps the
    previous vintage, is reported with its reason, and the other datasets still update; the exit code is 1 if
    anything failed. Base URLs can point at a mirror: $REGIME_FRENCH_URL, $REGIME_FRED_URL, $REGIME_FINRA_URL.
    """
    from .data.sources import plan_pull, pull

    home_dir = regime_home(home)
    total = len(plan_pull(source))
    with Progress(TextColumn("[bold]pull"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=total)
        results = pull(home_dir, source, on_result=lambda r: progress.update(
            task, advance=1, description=f"{r.key} {'ok' if r.ok else '[red]failed'}"))
    import pandas as pd

    frame = pd.DataFrame([{"dataset": r.key, "status": "ok" if r.ok else "FAILED", "detail": r.message}
                          for r in results])
    console.print(frame_table(frame, title=f"data pull into {home_dir / 'data'}",
                              styles={"detail": "dim"}))
    failed = [r for r in results if not r.ok]
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(results)} datasets failed; their previous vintage (if any) "
                          "is kept.[/red]")
        raise typer.Exit(1)


@data_app.command("status")
def data_status(home: HomeOption = None) -> None:
    """Show what is cached: first/last date, rows, when fetched, and whether it is stale.

    With nothing pulled yet, shows the offline sample that the product falls back to.
    """
    from .data.status import cache_status, sample_status
    from .data.sample import SAMPLE_NOTE

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
    """Ingest FINRA short-interest files you downloaded by hand (keeps the configured symbols only)."""
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
                        "value": snap.row.to_numpy()}, index=pd.Index(snap.features.columns, name="feature"))
    console.print(frame_table(row, title=f"features at {snap.as_of.date()} ({snap.spec.name} spec, "
                                          f"{snap.panel.source} data)", index=True))
    console.print(frame_table(family_coverage(snap.features, snap.spec), title="coverage per family", index=True,
                              digits=3))
    if catalogue:
        from .data.cache import atomic_write_bytes

        atomic_write_bytes(catalogue, catalogue_markdown(snap.spec, snap.features).encode())
        console.print(f"catalogue written to {catalogue}")


@app.command("backtest")
def backtest_cmd(
    experiment: Annotated[str, typer.Argument(help="Experiment name in experiments/ (quickstart, live) or a TOML path.")]
    = "quickstart",
    home: HomeOption = None,
) -> None:
    """Purged walk-forward backtest: LightGBM vs baselines on identical folds, for both targets.

    Prints out-of-sample R2 vs the historical mean (Campbell-Thompson), Clark-West, hit rate, AUC, Brier skill and
    the timing strategies, raw and calibrated side by side; writes predictions, per-fold and per-decade metrics
    and plots under <home>/runs/<experiment>/<time>/.
    """
    from .evaluation.report import run_dir, save_backtest
    from .experiment import load_experiment

    result = _run_backtest_with_progress(load_experiment(experiment), regime_home(home))
    out = run_dir(regime_home(home), result.experiment.name)
    save_backtest(result, out)
    print_backtest(result)
    console.print(f"\nwrote predictions, fold and decade metrics, strategy returns and plots to [bold]{out}[/bold]")


def _run_backtest_with_progress(exp, home_dir: Path):
    from .evaluation.backtest import run_backtest

    with Progress(TextColumn("[bold]walk-forward"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=None)
        return run_backtest(exp, home_dir, on_fold=lambda done, total: progress.update(task, completed=done,
                                                                                          total=total))


def print_backtest(result) -> None:
    from .evaluation.report import summary_table

    exp = result.experiment
    for note in result.panel.notes:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(f"experiment [bold]{exp.name}[/bold]: {result.panel.source} data "
                  f"{result.panel.first.date()}..{result.panel.last.date()}, {result.features.shape[1]} features, "
                  f"horizon {exp.horizon}m, out-of-sample from {exp.validation.oos_start.date()}, "
                  f"{int(result.timings['folds'])} folds ({result.timings['total_s']:.0f} s)")
    for target in ("relative", "absolute"):
        console.print(frame_table(summary_table(result, target), index=True, digits=3,
                                  title=f"{target} target, out of sample (lgbm_cal = shrunk / calibrated)"))
    console.print("[dim]r2_oos vs the prevailing mean; cw = Clark-West (Newey-West, h-1 lags), one-sided p; "
                  "hit_rate from P>0.5, hit_rate_sign from the point forecast; strategies on non-overlapping "
                  "quarters net of costs.[/dim]")


def main() -> None:
    """Entry point: user-facing errors are printed without a traceback and exit with code 2."""
    try:
        app()
    except RegimeError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
