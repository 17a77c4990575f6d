"""Time the feature build and the backtest, on the offline sample and on the live path, and print the metrics.

    python benchmarks/run.py [--only sample|live] [--out benchmarks/results]

The live path serves tests/data/realdata/ (real files to 2018-12, test data only) from a loopback HTTP server, runs
the real `pull` into a temporary home, then backtests experiments/live.toml. Speed and memory targets live here,
not in timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from smallcap_regime.data import load_panel  # noqa: E402
from smallcap_regime.data.sources import pull  # noqa: E402
from smallcap_regime.evaluation.backtest import run_backtest  # noqa: E402
from smallcap_regime.evaluation.report import summary_tables  # noqa: E402
from smallcap_regime.experiment import load_experiment  # noqa: E402
from smallcap_regime.features.build import build_features, load_feature_spec  # noqa: E402

from loopback import LoopbackServer  # noqa: E402

# Targets on this 2-core machine; the script reports PASS/SLOW against them.
TARGETS_S = {"sample.features": 2.0, "sample.backtest": 90.0, "live.pull": 30.0, "live.features": 3.0,
             "live.backtest": 150.0}


def timed(label: str, timings: dict, fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    timings[label] = time.perf_counter() - start
    return value


def bench(name: str, home: Path, timings: dict) -> dict:
    exp = load_experiment("quickstart" if name == "sample" else "live")
    panel = load_panel(home, exp.data_source)
    spec = load_feature_spec(exp.feature_spec)
    features = timed(f"{name}.features", timings, build_features, panel.frame, spec)
    result = timed(f"{name}.backtest", timings, run_backtest, exp, home, panel=panel)
    print(f"\n=== {name}: {panel.first.date()}..{panel.last.date()}, {features.shape[1]} features, "
          f"OOS from {exp.validation.oos_start.date()}, {int(result.timings['folds'])} folds")
    out = {}
    for target in ("relative", "absolute"):
        for title, table in summary_tables(result, target).items():
            print(f"\n{target}: {title}\n{table.round(3).to_string()}")
            out[f"{target}: {title}"] = json.loads(table.to_json(orient="index"))
    lgbm_dec = result.decade_metrics.xs("lgbm_cal", level="model")[["r2_oos", "hit_rate", "auc", "brier_skill", "n"]]
    print(f"\nlgbm_cal per decade\n{lgbm_dec.round(3).to_string()}")
    return out


def pull_realdata(home: Path) -> None:
    """Serve tests/data/realdata/ from a loopback server and pull Ken French and FRED into ``home``'s cache."""
    server = LoopbackServer()
    server.serve_realdata(REPO / "tests" / "data" / "realdata")
    with server:
        for source in ("FRENCH", "FRED", "FINRA"):
            os.environ[f"REGIME_{source}_URL"] = server.url
        results = pull(home, ["french", "fred"])
    failed = [r.key for r in results if not r.ok]
    print(f"pulled {len(results) - len(failed)} datasets; not on the server (404): {', '.join(failed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["sample", "live"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    timings: dict[str, float] = {}
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if args.only in (None, "sample"):
            report["sample"] = bench("sample", home, timings)
        if args.only in (None, "live"):
            timed("live.pull", timings, pull_realdata, home)
            report["live"] = bench("live", home, timings)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n=== timings (s)")
    for label, seconds in timings.items():
        target = TARGETS_S.get(label)
        verdict = "" if target is None else ("PASS" if seconds <= target else "SLOW")
        print(f"{label:18s} {seconds:8.2f}   target {target:6.1f}  {verdict}")
    print(f"peak RSS {peak_mb:.0f} MB")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"bench-{stamp}.json").write_text(json.dumps({"timings_s": timings, "peak_rss_mb": peak_mb,
                                                             "metrics": report}, indent=2, default=str))


if __name__ == "__main__":
    main()
