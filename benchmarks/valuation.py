"""Which form of the small-minus-big book-to-market spread carries skill? Univariate, on the live files.

    python benchmarks/valuation.py [--home DIR]

Pulls tests/data/realdata/ (Ken French incl. 25_Portfolios_5x5, FRED; to 2018-12) from a loopback server into a
temporary cache as benchmarks/run.py does (or reads an existing home with --home), builds the ``valuation``
family (held back in features/default.toml, switched on here) and reports, for each form (level, 12-month
change, 10-year z-score, 10-year percentile rank) and each window (OOS 1990-2018, its halves 1990-2004 and
2005-2018, and the decades):

- AUC of the feature as a score for ``relative_3m > 0`` (small caps beat large caps over the next quarter);
  0.5 = no skill; > 0.5 = a higher value (wider discount) goes with small caps winning;
- Spearman rank correlation with ``relative_3m``;
- a 90 % stationary-bootstrap interval for the AUC (arch, mean block 6 months: quarterly outcomes overlap);

the existing features most rank-correlated with each form (is it new information?), and the descriptive
reading's record (features/valuation.py) on the same windows. Univariate and fixed (no
fitting): a screen for phase 2's adoption runs, not an adoption decision.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from run import pull_realdata  # noqa: E402

from smallcap_regime.data import load_panel  # noqa: E402
from smallcap_regime.features.build import build_features, load_feature_spec  # noqa: E402
from smallcap_regime.features.targets import build_targets  # noqa: E402
from smallcap_regime.features.valuation import valuation_record  # noqa: E402

WINDOWS = {"OOS 1990-2018": ("1990-01", "2018-12"), "half 1990-2004": ("1990-01", "2004-12"),
           "half 2005-2018": ("2005-01", "2018-12"), "1990s": ("1990-01", "1999-12"),
           "2000s": ("2000-01", "2009-12"), "2010s": ("2010-01", "2018-12"),
           "1936-1989 (pre-OOS)": ("1936-06", "1989-12")}
SEED = 20


def auc_interval(score: np.ndarray, label: np.ndarray, reps: int = 500) -> tuple[float, float]:
    """90 % stationary-bootstrap interval of the AUC (resampled months keep their overlap structure)."""
    boot = StationaryBootstrap(6, score, label, seed=SEED)

    def auc(s: np.ndarray, y: np.ndarray) -> float:
        return roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan

    draws = np.array([auc(*data) for data, _ in boot.bootstrap(reps)])
    low, high = np.nanpercentile(draws, [5, 95])
    return float(low), float(high)


def measure(features: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for window, (start, end) in WINDOWS.items():
        rows_w = features.loc[start:end].join(targets).dropna(subset=["relative_3m"])
        for name in features.columns:
            data = rows_w[[name, "relative_3m", "relative_3m_up"]].dropna()
            score, label = data[name].to_numpy(), data["relative_3m_up"].to_numpy()
            low, high = auc_interval(score, label) if window.startswith(("OOS", "half")) else (np.nan, np.nan)
            rows.append({"window": window, "feature": name, "n": len(data),
                         "auc": roc_auc_score(label, score), "auc_90_low": low, "auc_90_high": high,
                         "spearman": spearmanr(score, data["relative_3m"]).statistic})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a home whose cache already holds the live files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        if args.home is None:
            pull_realdata(home)
        panel = load_panel(home, "live").frame
    spec = load_feature_spec("default").with_families("valuation")
    names = [f.name for f in spec.features if f.family == "valuation"]
    everything = build_features(panel, spec)
    features = everything[names]
    targets = build_targets(panel, 3)[["relative_3m", "relative_3m_up"]]
    table = measure(features, targets)
    pd.set_option("display.width", 160)
    print("\n=== univariate skill of the valuation forms against relative_3m (small minus large, next quarter)")
    for window, part in table.groupby("window", sort=False):
        print(f"\n{window} (n = {part['n'].max()})")
        print(part.drop(columns=["window"]).set_index("feature").round(3).to_string())
    print("\n=== is it new information? the existing features most rank-correlated with each form, OOS 1990-2018")
    oos = everything.loc["1990-01":"2018-12"].rank()
    others = oos.drop(columns=names).dropna(axis=1, how="all")
    for name in names:
        corr = others.corrwith(oos[name]).dropna()
        top = corr.reindex(corr.abs().sort_values(ascending=False).index[:3])
        print(f"{name:>30}: " + ", ".join(f"{k} {v:+.2f}" for k, v in top.items()))
    print("\n=== the descriptive reading's record (cheaper than the 10-year average -> small caps win?)")
    for window, (start, end) in WINDOWS.items():
        print(f"{window:>20}: {valuation_record(panel, start=start, end=end).sentence()}")


if __name__ == "__main__":
    main()
