"""Research harness: run named variants through the purged walk-forward on both windows and compare them.

    python benchmarks/research.py [VARIANT ...] [--windows sample live] [--home DIR] [--no-mlflow]

A VARIANT is a name in benchmarks/variants/ (``base``, ``monotone``, ``drop-credit``, ...) or a
TOML path; none = all of them. ``base`` (the current defaults) is always run first, since every table row and the
adoption rule compare with it. Windows: ``sample`` (experiment quickstart, offline sample, OOS 1975-2017) and
``live`` (experiment live on tests/data/realdata/ to 2018-12, served from a loopback server and pulled into a
temporary cache exactly as benchmarks/run.py does; OOS 1990-2018). Runs are logged to the MLflow experiment
``research`` under the home (``regime ui`` compares them) and counted in ``<home>/research/log.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from research.harness import (  # noqa: E402
    BASE,
    HALVES,
    WINDOWS,
    absolute_verdict,
    adoption,
    load_variant,
    run_research,
    saved_summary,
    tables,
    tried,
)
from run import pull_realdata  # noqa: E402

from smallcap_regime.home import regime_home  # noqa: E402

VARIANTS_DIR = BENCHMARKS / "variants"


def variant_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix == ".toml" else VARIANTS_DIR / f"{name}.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="names in benchmarks/variants/ or TOML paths (default: all)")
    parser.add_argument("--windows", nargs="+", choices=list(WINDOWS), default=list(WINDOWS))
    parser.add_argument("--home", help="home dir of the MLflow store and the log (default $REGIME_HOME, ./.regime)")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the runs to MLflow")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: print the tables from the latest saved runs of these variants")
    args = parser.parse_args()
    names = args.variants or sorted(p.stem for p in VARIANTS_DIR.glob("*.toml"))
    paths = [variant_path(BASE)] + [variant_path(n) for n in names if n != BASE]
    chosen = [load_variant(p) for p in paths]
    home = regime_home(args.home)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 500)
    if args.report:
        labels = [*args.windows, *(h for h, (parent, _, _) in HALVES.items() if parent in args.windows)]
        saved = [saved_summary(home, v.name, w) for w in labels for v in chosen]
        summaries = [s for s in saved if s is not None]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data_home = Path(tmp)
            if "live" in args.windows:
                pull_realdata(data_home)
            summaries = run_research(chosen, home, windows={w: WINDOWS[w] for w in args.windows},
                                     data_home=data_home, mlflow=not args.no_mlflow)
    for target, table in tables(summaries).items():
        print(f"\n=== {target} target: calibrated models, OOS (AUC per decade on the right)\n"
              f"{table.round(3).to_string()}")
    rule = adoption(summaries).round(3).to_string()
    print(f"\n=== adoption rule (relative, vs base lgbm_cal on every window)\n{rule}")
    verdict = absolute_verdict(summaries)
    print("\n=== absolute target: models beating the prevailing mean and base rate on every window\n"
          + (verdict.to_string(index=False) if len(verdict) else "none: no absolute model is adopted (the "
                                                                  "card shows its base rate unless skill is shown)"))
    print(f"\nvariants tried so far (distinct non-base overlays logged under {home}): {tried(home)}")


if __name__ == "__main__":
    main()
