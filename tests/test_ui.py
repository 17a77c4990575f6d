"""`regime ui`: the MLflow UI on the home's store, light, with links that open the runs table; checked over HTTP and
in a real headless browser (skipped when Chromium or Playwright is not installed), after a cycle a reviewer knows:
train with the model specs, tune, train with the study's best parameters.

The browser check saves its screenshots to ``$REGIME_UI_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import pytest

from smallcap_regime import tuning
from smallcap_regime.experiment import load_experiment
from smallcap_regime.tracking import review, store
from smallcap_regime.tracking.train import train
from smallcap_regime.workflow import train_experiment

from helpers import free_port, port_is_free, process_tree, wait_until_up, write_experiment

pytestmark = pytest.mark.slow  # MLflow UI server and headless Chromium

REGIME = str(Path(sys.executable).with_name("regime"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"]
#: The relative classifier on log loss, as the shipped experiments tune what the gate scores (small and quick).
TUNING = """
[tuning]
objective = "relative.classifier"
metric = "log_loss"
inner_folds = 2
seed = 3
n_estimators = [10, 40]
num_leaves = [3, 7]
learning_rate = [0.03, 0.2]
"""



def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def reviewed_home(tmp_path_factory):
    """A home after train (model specs), tune (3 trials) and train --params-from-study: (home, default, tuned)."""
    directory = tmp_path_factory.mktemp("reviewed")
    path = write_experiment(directory, "tiny", seeds=(11, 12))
    path.write_text(path.read_text() + TUNING)
    home = directory / "home"
    default = train(load_experiment(path), home)
    study = tuning.tune(load_experiment(path), home, trials=3)
    tuned = train_experiment(path, home, params_from_study=study.study_name)
    return home, default, tuned


@pytest.fixture(scope="module")
def ui(reviewed_home, tmp_path_factory):
    """`regime ui` on the reviewed home: (base url, link it printed, process, home)."""
    home = reviewed_home[0]
    port = free_port()
    logs = tmp_path_factory.mktemp("ui")
    # files, not pipes: nobody reads the server's log while it runs, and a full pipe would block it
    with open(logs / "out.txt", "w") as out, open(logs / "err.txt", "w") as err:
        proc = subprocess.Popen([REGIME, "ui", "--home", str(home), "--port", str(port)], stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url, "regime ui", log=logs / "err.txt")
        header, link = (logs / "out.txt").read_text().splitlines()[:2]
        assert header.startswith(f"MLflow UI on {url}")
        yield url, link.strip(), proc, home
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_ui_is_light_links_the_runs_table_and_serves_run_artifacts(ui, reviewed_home):
    url, link, proc, home = ui
    result = reviewed_home[2]
    store.configure(home)
    exp_id = mlflow.get_experiment_by_name("tiny").experiment_id
    assert link == (f"tiny: {url}/#/experiments/{exp_id}/runs?viewStateShareKey=regime-headline"
                    "&workflowType=machine_learning")
    tags = mlflow.get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI view
    view = json.loads(tags["mlflow.sharedViewState.regime-headline"])
    assert view["selectedColumns"][0] == "metrics.`0_gate_rel_brier_skill`"
    # `regime ui` replaced itself with mlflow's server: one worker, no job runner
    processes = process_tree(proc.pid)
    assert len(processes) <= 3, [Path(f"/proc/{p}/cmdline").read_text() for p in processes]
    assert sum(_rss_mb(p) for p in processes) < 1024
    found = httpx.post(f"{url}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 50}, timeout=10)
    assert "tiny" in {e["name"] for e in found.json()["experiments"]}
    card = httpx.get(f"{url}/get-artifact", params={"path": "model_card.md", "run_uuid": result.run_id},
                     timeout=10)
    assert card.status_code == 200 and "Out-of-sample results" in card.text


def test_ui_on_a_busy_port_is_one_line_and_exit_2(home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([REGIME, "ui", "--home", str(home), "--port", str(port)], capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == (f"error: port {port} on 127.0.0.1 is already in use; stop the other server or choose "
                           "another port\n")
    assert port_is_free(port)


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_browser_default_view_shows_the_gate_metric_and_compare_shows_what_tuning_changed(ui, reviewed_home,
                                                                                            tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    url, link, _, home = ui
    _, default, tuned = reviewed_home
    store.configure(home)
    shots = Path(os.environ.get("REGIME_UI_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    exp_id = mlflow.get_experiment_by_name("tiny").experiment_id
    client = mlflow.MlflowClient()
    runs = {r.info.run_id: r for r in (client.get_run(default.run_id), client.get_run(tuned.run_id))}
    names = review.headline_names("relative.lgbm_cal.brier_skill")
    with sync_api.sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            # a reviewer's screen, a first visit: the link `regime ui` printed
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(link.split(": ", 1)[1])
            gate = page.get_by_role("columnheader").filter(has_text="0_gate_rel").first
            gate.wait_for(timeout=60_000)
            page.get_by_text("train tiny (tuned:").first.wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "runs_default_view.png"))
            box = gate.bounding_box()
            # visible without scrolling: inside the window and left of the Assistant panel MLflow opens for a
            # first visit on localhost (its server has no switch for it)
            assistant = page.get_by_text("MLflow Assistant")
            right = assistant.first.bounding_box()["x"] if assistant.count() else 1600
            assert box is not None and box["x"] + box["width"] <= min(right, 1600), (box, right)
            text = page.inner_text("body")
            assert "Model training" in text and "train tiny" in text
            assert "tune tiny-relative.classifier" in text  # the tune parent, its trials nested under it
            assert "trial 0" not in text and "backtest" not in text  # children collapsed under their parents
            value = f"{runs[tuned.run_id].data.metrics['0_gate_rel_brier_skill']}"
            assert value in text  # 4 significant digits: readable in the column

            # compare the two trainings: the chart plots the changed params against the gate metric, the table
            # lists the headline metrics side by side, gate metric first
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{url}/#/compare-runs?runs={json.dumps([tuned.run_id, default.run_id])}"
                      f"&experiments={json.dumps([exp_id])}&workflowType=machine_learning")
            page.get_by_text("Parallel Coordinates Plot").first.wait_for(timeout=60_000)
            page.get_by_text("model.relative.classifier.n_estimators").first.wait_for(timeout=60_000)
            # the chart's axis titles, once plotly has drawn it
            page.locator("svg").get_by_text("0_gate_rel_brier_skill").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "compare_chart.png"))
            text = page.inner_text("body")
            assert "Comparing 2 Runs" in text
            tuned_name = runs[tuned.run_id].info.run_name
            assert re.fullmatch(r"train tiny \(tuned: study tiny-relative\.classifier, trial \d\)", tuned_name)
            assert tuned_name in text and "train tiny\n" in text
            chart = text[text.index("Parameters:"):text.index("Run details")]
            assert "Metrics:\n0_gate_rel_brier_skill" in chart and "model.relative.classifier." in chart
            # only the differences: MLflow's "Show diff only" switch of the params table
            params = page.get_by_text("Parameters", exact=True).locator("xpath=..")
            params.get_by_role("switch").first.click()
            page.get_by_text("Show diff only").first.scroll_into_view_if_needed()
            text = page.inner_text("body")
            table = text[text.index("Parameters\nShow diff only"):text.index("Metrics\nShow diff only")]
            changed = {k: (v, runs[default.run_id].data.params[k]) for k, v in runs[tuned.run_id].data.params.items()
                       if v != runs[default.run_id].data.params[k]}
            tuned_keys = {k.rsplit(".", 1)[1] for k in changed if k.startswith("model.relative.classifier.")}
            assert tuned_keys and tuned_keys <= {"n_estimators", "num_leaves", "learning_rate"}
            assert "params_source" in changed
            for key, (mine, theirs) in changed.items():
                assert re.search(rf"{re.escape(key)}\s+{re.escape(mine)}\s+{re.escape(theirs)}\n", table), key
            assert "baselines.ridge_alpha" not in table  # unchanged params are hidden
            page.get_by_text("Metrics", exact=True).last.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "compare_tables.png"))
            metrics = text[text.index("Metrics\nShow diff only"):text.index("Artifacts")]
            listed = [line for line in metrics.splitlines() if line in names]
            assert listed == names  # every headline metric, gate metric first, nothing else
        finally:
            browser.close()
