"""Command-line interface (placeholder until the data commands land)."""

import typer

app = typer.Typer()


def main() -> None:
    app()
