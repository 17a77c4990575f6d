"""What-if scenarios: shifted panel series rebuild exactly the features built from them, through the one dataset
builder; baseline, scenario and difference in process and through `regime serve`; clear one-line errors."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smallcap_regime.cli import app
from smallcap_regime.data.panel import Panel
from smallcap_regime.dataset import build_dataset
from smallcap_regime.errors import RegimeError
from smallcap_regime.experiment import load_experiment
from smallcap_regime.features.catalogue import source_series
from smallcap_regime.scenario import changed_features, parse_shifts, scenario_dataset
from smallcap_regime.whatif import what_if
from test_features import synthetic_rich_panel

from helpers import scoring_server

FRESH_ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def _built_from(spec, series: str) -> set[str]:
    return {f.name for f in spec.features if series in source_series(f)}


@pytest.mark.parametrize(("series", "experiment"), [("fed_funds", "live"), ("yield_10y", "live"), ("aaa", "quickstart"),
                                                    ("cpi", "quickstart")])
def test_a_one_point_shift_changes_exactly_the_features_built_from_it(series, experiment):
    exp = load_experiment(experiment)
    if experiment == "live":  # SYNTHETIC panel with every live column (unit test only)
        panel = Panel(synthetic_rich_panel(), "live")
    else:
        panel = None  # the real offline sample
    data = build_dataset(exp, panel=panel)
    when = data.features.index[-1]
    shifted = scenario_dataset(data, {series: 1.0}, when)
    assert set(changed_features(data.features.loc[when], shifted.features.loc[when])) == _built_from(data.spec,
                                                                                                     series)
    assert _built_from(data.spec, series)  # the shift reached something
    # nothing before the forecast month moves
    pd.testing.assert_frame_equal(data.features.iloc[:-1], shifted.features.iloc[:-1])
    if series == "yield_10y":  # +1 pp: level +1, its changes +100 bp, the curve slopes 100 bp steeper
        before, after = data.features.loc[when], shifted.features.loc[when]
        assert after["yield_10y_pct"] - before["yield_10y_pct"] == pytest.approx(1.0)
        for name in ("yield_10y_chg_1m_bp", "yield_10y_chg_6m_bp", "slope_10y_2y_bp", "slope_10y_3m_chg_3m_bp"):
            assert after[name] - before[name] == pytest.approx(100.0)
    if series == "fed_funds":  # a 1 pp hike: 4 fewer 25 bp cuts priced
        before, after = data.features.loc[when], shifted.features.loc[when]
        assert after["implied_cuts_1y_count"] - before["implied_cuts_1y_count"] == pytest.approx(4.0)


def test_shift_texts_are_parsed_or_refused_in_one_line():
    assert parse_shifts(["yield_10y=-0.50", " fed_funds = -0.5 "]) == {"yield_10y": -0.5, "fed_funds": -0.5}
    with pytest.raises(RegimeError, match=r"^shift 'yield_10y=abc': the shift 'abc' is not a number; give it in "
                                          r"the series' own units, e.g. yield_10y=-0.50 \(50 bp lower\)$"):
        parse_shifts(["yield_10y=abc"])
    with pytest.raises(RegimeError, match="the shift 'nan' is not a number"):
        parse_shifts(["aaa=nan"])
    with pytest.raises(RegimeError, match=r"^shift 'yield_10y': expected SERIES=SHIFT"):
        parse_shifts(["yield_10y"])
    with pytest.raises(RegimeError, match="^the shifts name aaa twice"):
        parse_shifts(["aaa=1", "aaa=2"])


def test_the_sample_has_no_policy_rate_and_says_so():
    data = build_dataset(load_experiment("quickstart"))
    when = data.features.index[-1]
    with pytest.raises(RegimeError, match=r"^scenario: fed_funds is not in the sample data: the offline sample has "
                                          r"no policy rate, so a rate-cut scenario cannot run on it; shift its "
                                          r"long-rate proxy instead \(aaa=-0.50\)"):
        scenario_dataset(data, {"fed_funds": -0.5}, when)
    with pytest.raises(RegimeError, match=r"^scenario: unknown series 'yield_11y'; series of the sample data: "
                                          r"small_ret, large_ret, .*aaa, baa, cpi$"):
        scenario_dataset(data, {"yield_11y": -0.5}, when)


@pytest.mark.parametrize(("shift", "message"), [
    ("fed_funds=-0.50", "error: scenario: fed_funds is not in the sample data: the offline sample has no policy "
                        "rate"),
    ("aaa=lower", "error: shift 'aaa=lower': the shift 'lower' is not a number"),
    ("gold=1", "error: scenario: unknown series 'gold'"),
])
def test_cli_refuses_a_bad_scenario_with_one_line_and_exit_2(trained_home, tiny_experiment, shift, message):
    import os
    import sys
    from pathlib import Path

    home, _ = trained_home
    regime = str(Path(sys.executable).with_name("regime"))
    done = subprocess.run([regime, "predict", "--home", str(home), "--experiment", str(tiny_experiment),
                           "--what-if", shift], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **FRESH_ENV})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_scenario_in_process_prints_baseline_scenario_difference_and_drivers(trained_home, tiny_experiment):
    home, result = trained_home
    scenario = what_if(home, ["aaa=-0.50"], experiment=str(tiny_experiment))
    assert set(scenario.changed) == _built_from(build_dataset(load_experiment(tiny_experiment)).spec, "aaa")
    diff = scenario.difference()
    p_rel = diff.loc["P(relative > 0)"]
    assert p_rel["difference"] == pytest.approx(p_rel["scenario"] - p_rel["baseline"])
    assert p_rel["baseline"] == pytest.approx(scenario.baseline.output["p_outperform"])
    # the scenario row scored by the model directly gives the scenario's output
    direct = result.model.predict(scenario.features.to_frame().T)
    assert direct["p_outperform"].iloc[0] == pytest.approx(scenario.output["p_outperform"])
    assert set(scenario.effects) == {t for t in ("relative", "absolute") if result.model.has_skill(t)}
    out = CliRunner().invoke(app, ["predict", "--home", str(home), "--experiment", str(tiny_experiment),
                                   "--what-if", "aaa=-0.50"], terminal_width=80, env=FRESH_ENV)
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.replace("│", " ").split())
    assert "what if: aaa -0.5 from 2017-03-31 on" in text
    assert f"P(relative > 0) {p_rel['baseline'] * 100:.1f} % {p_rel['scenario'] * 100:.1f} % " \
           f"{p_rel['difference'] * 100:+.1f} pts" in text
    assert "Aaa corporate yield: 3.95 % -> 3.45 %" in text
    assert "relative: what moved P, each feature alone: " in text
    assert max(len(line) for line in out.output.splitlines()) <= 80


def test_scenario_json_and_csv(trained_home, tiny_experiment):
    home, _ = trained_home
    args = ["predict", "--home", str(home), "--experiment", str(tiny_experiment), "--what-if", "aaa=-0.50"]
    out = CliRunner().invoke(app, [*args, "--format", "json"], env=FRESH_ENV)
    assert out.exit_code == 0, out.output
    record = json.loads(out.output)
    block = record["scenario"]
    assert block["shifts"] == {"aaa": -0.5} and "aaa_pct" in block["changed_features"]
    rel = block["targets"]["relative"]
    assert rel["p_difference"] == pytest.approx(rel["p_scenario"] - rel["p_baseline"])
    assert rel["p_baseline"] == pytest.approx(record["targets"]["relative"]["p"])
    assert all(" pts" in line for line in rel["drivers_of_difference"])
    out = CliRunner().invoke(app, [*args, "--format", "csv"], env=FRESH_ENV)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 3 and lines[0].startswith("case,as_of,window,rotation,p_outperform,")
    assert lines[1].startswith("baseline,2017-03-31,2017-04..2017-06,") and lines[2].startswith("scenario aaa=-0.5,")


@pytest.fixture(scope="module")
def server(trained_home):
    home, result = trained_home
    with scoring_server(home, result.model_uri) as url:
        yield url


def test_scenario_through_the_server_equals_in_process(trained_home, tiny_experiment, server):
    home, _ = trained_home
    local = what_if(home, ["aaa=-0.50", "cpi=2"], experiment=str(tiny_experiment))
    remote = what_if(home, ["aaa=-0.50", "cpi=2"], experiment=str(tiny_experiment), server=server)
    assert remote.changed == local.changed
    np.testing.assert_allclose(remote.difference().to_numpy(), local.difference().to_numpy(), rtol=0, atol=1e-12)
    assert remote.effects.keys() == local.effects.keys()
    for target in local.effects:
        assert remote.effects[target] == pytest.approx(local.effects[target], abs=1e-9)
    assert "via server" in remote.baseline.model
