"""Model options ([options] in an experiment) as research variants, and the harness (benchmarks/research/), smoke-
tested on a short window.

The full harness (all variants on both windows) is `python benchmarks/research.py`; it is not run here.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from smallcap_regime.errors import ConfigError
from smallcap_regime.experiment import load_experiment

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from research import harness  # noqa: E402
from research.harness import RunSummary, Variant, load_variant, run_research  # noqa: E402

VARIANTS = REPO / "benchmarks" / "variants"


@pytest.mark.parametrize(("body", "message"), [
    ('drop_families = ["macros"]', r"\[options\]: drop_families = \['macros'\]: unknown feature family 'macros'; "
                                   r"expected some of: yields, rate_cuts"),
    ('drop_families = ["macro", "macro"]', r"lists a family twice"),
    ("monotone = {baa_aaa_spread_bp = 2}", r"\[options.monotone\]: baa_aaa_spread_bp = 2: Input should be -1 or 1"),
    ("combination = true", r"\[options\]: unknown key 'combination'; expected one of: drop_families, monotone"),
])
def test_options_table_is_validated_at_load(tmp_path, body, message):
    path = tmp_path / "exp.toml"
    path.write_text(f'extends = "quickstart"\n[options]\n{body}\n')
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_every_variant_file_is_a_valid_overlay_of_both_windows(tmp_path):
    files = sorted(VARIANTS.glob("*.toml"))
    assert {"base", "monotone", "drop-credit"} <= {p.stem for p in files}
    for path in files:
        for window, base in harness.WINDOWS.items():
            exp = harness.variant_experiment(load_variant(path), window, base, tmp_path)
            assert exp.name == f"{window}-{path.stem}"
            assert exp.options.active == (path.stem != "base")
    assert load_experiment("quickstart").options == load_experiment("live").options == \
        harness.variant_experiment(load_variant(VARIANTS / "base.toml"), "sample", "quickstart", tmp_path).options


def test_an_overlay_may_not_choose_its_base(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('extends = "live"\n')
    with pytest.raises(ConfigError, match="a variant overlay may not set 'extends'"):
        load_variant(path)


def _summary(variant: str, window: str, brier: float, auc: float, decades: dict[str, float]) -> RunSummary:
    rows = pd.DataFrame([{"target": "relative", "model": "lgbm_cal", "brier_skill": brier, "auc": auc,
                          **{f"auc_{d}": v for d, v in decades.items()}}]).set_index(["target", "model"])
    return RunSummary(variant, window, "ok", rows)


def test_adoption_needs_brier_and_auc_gains_on_every_window_and_no_decade_lost():
    base = [_summary("base", "a", 0.01, 0.56, {"1990s": 0.52, "2000s": 0.60}),
            _summary("base", "b", 0.02, 0.58, {"1990s": 0.48, "2000s": 0.62})]
    runs = base + [
        _summary("better", "a", 0.02, 0.57, {"1990s": 0.53, "2000s": 0.61}),
        _summary("better", "b", 0.03, 0.59, {"1990s": 0.49, "2000s": 0.63}),  # 1990s stays below 0.5: allowed
        _summary("loses-decade", "a", 0.03, 0.60, {"1990s": 0.49, "2000s": 0.70}),
        _summary("loses-decade", "b", 0.03, 0.60, {"1990s": 0.55, "2000s": 0.65}),
        _summary("one-window", "a", 0.05, 0.65, {"1990s": 0.60, "2000s": 0.70}),
        _summary("one-window", "b", 0.01, 0.65, {"1990s": 0.60, "2000s": 0.70}),
        RunSummary("not-applicable", "a", "n/a: no such family"),
        _summary("not-applicable", "b", 0.05, 0.65, {"1990s": 0.60, "2000s": 0.70}),
    ]
    verdict = harness.adoption(runs)
    assert verdict["adopt"].to_dict() == {"better": True, "loses-decade": False, "one-window": False,
                                          "not-applicable": False}
    assert verdict.loc["loses-decade", "decades lost"] == "a:1990s"


def test_an_option_the_sample_cannot_express_is_judged_on_the_live_halves():
    h1, h2 = harness.HALVES
    base = [_summary("base", w, 0.01, 0.56, {"2000s": 0.55}) for w in ("sample", "live", h1, h2)]
    runs = base + [
        RunSummary("valuation", "sample", "n/a: no book-to-market"),
        _summary("valuation", "live", 0.02, 0.58, {"2000s": 0.56}),
        _summary("valuation", h1, 0.02, 0.57, {"2000s": 0.56}),
        _summary("valuation", h2, 0.02, 0.57, {"2000s": 0.56}),
        RunSummary("half-only", "sample", "n/a: no book-to-market"),
        _summary("half-only", "live", 0.02, 0.58, {"2000s": 0.56}),
        _summary("half-only", h1, 0.02, 0.57, {"2000s": 0.56}),
        _summary("half-only", h2, 0.00, 0.57, {"2000s": 0.56}),
        _summary("both", "sample", 0.02, 0.57, {"2000s": 0.56}),
        _summary("both", "live", 0.02, 0.57, {"2000s": 0.56}),
        _summary("both", h1, 0.00, 0.50, {"2000s": 0.56}),  # the halves do not judge a variant the sample can run
        _summary("both", h2, 0.00, 0.50, {"2000s": 0.56}),
    ]
    verdict = harness.adoption(runs)
    assert verdict["adopt"].to_dict() == {"valuation": True, "half-only": False, "both": True}
    assert verdict.loc["valuation", "judged on"] == f"{h1}, {h2}"


@pytest.mark.slow
def test_harness_smoke_on_a_short_window(tiny_experiment, tmp_path):
    """Base, the monotone option and a not-applicable ablation on the tiny experiment; tables, log and MLflow."""
    home = tmp_path / "home"
    home.mkdir()
    chosen = [load_variant(VARIANTS / "base.toml"), load_variant(VARIANTS / "monotone.toml"),
              load_variant(VARIANTS / "drop-rate_cuts.toml")]
    summaries = run_research(chosen, home, windows={"tiny": tiny_experiment}, echo=lambda line: None)
    assert [(s.variant, s.status[:3]) for s in summaries] == [("base", "ok"), ("monotone", "ok"),
                                                              ("drop-rate_cuts", "n/a")]
    relative = harness.tables(summaries)["relative"]
    assert {("base", "tiny", "linear_cal"), ("monotone", "tiny", "lgbm_cal"),
            ("drop-rate_cuts", "tiny", "-")} <= set(relative.index)
    assert {"R2_OS", "CW p", "AUC", "Brier skill", "Sharpe", "B&H Sharpe", "auc_1990s", "auc_2000s"} <= \
        set(relative.columns)
    assert np.isfinite(relative.loc[("monotone", "tiny", "lgbm_cal"), "Sharpe"])
    # the constraint changed the model: not the base's numbers
    assert relative.loc[("monotone", "tiny", "lgbm_cal"), "AUC"] != relative.loc[("base", "tiny", "lgbm_cal"), "AUC"]
    assert harness.tried(home) == 2
    run_research(chosen[1:2], home, windows={"tiny": tiny_experiment}, echo=lambda line: None, mlflow=False)
    assert harness.tried(home) == 2  # the same overlay again is not a new variant
    import mlflow

    from smallcap_regime.tracking.store import configure

    configure(home)
    runs = mlflow.search_runs(experiment_names=[harness.MLFLOW_EXPERIMENT])
    assert sorted(runs["tags.mlflow.runName"]) == ["base @ tiny", "drop-rate_cuts @ tiny", "monotone @ tiny"]
    assert "metrics.relative.lgbm_cal.brier_skill" in runs.columns
    assert set(runs["params.options.monotone"].dropna()) >= {"{}"}


def test_variant_identity_is_name_and_content():
    assert Variant("a", "x = 1").sha256 != Variant("a", "x = 2").sha256
