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


def main() -> None:
    """Entry point: user-facing errors are printed without a traceback and exit with code 2."""
    try:
        app()
    except RegimeError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
