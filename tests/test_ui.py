"""`regime ui`: the MLflow UI on the home's store, light, with links that open the runs table; checked over HTTP and
in a real headless browser (skipped when Chromium or Playwright is not installed).

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

from smallcap_regime.experiment import load_experiment
from smallcap_regime.tracking import store
from smallcap_regime.tracking.train import HEADLINE_METRICS, train

from helpers import free_port, port_is_free, wait_until_up

pytestmark = pytest.mark.slow  # MLflow UI server and headless Chromium

REGIME = str(Path(sys.executable).with_name("regime"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"]



def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            todo += [int(c) for c in children]
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def ui(trained_home, tiny_experiment, tmp_path_factory):
    """`regime ui` on a home with at least two training runs: (base url, link it printed, process, home)."""
    home, _ = trained_home
    store.configure(home)
    experiment = mlflow.get_experiment_by_name("tiny")
    parents = mlflow.search_runs([experiment.experiment_id], "tags.registered_version != ''", output_format="list")
    if len(parents) < 2:
        train(load_experiment(tiny_experiment), home)
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
def test_ui_is_light_links_the_runs_table_and_serves_run_artifacts(ui, trained_home):
    url, link, proc, home = ui
    _, result = trained_home
    exp_id = mlflow.get_experiment_by_name("tiny").experiment_id
    assert link == (f"tiny: {url}/#/experiments/{exp_id}/runs?viewStateShareKey=regime-headline"
                    "&workflowType=machine_learning")
    tags = mlflow.get_experiment(exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # not the GenAI view
    view = json.loads(tags["mlflow.sharedViewState.regime-headline"])
    assert "metrics.`relative.lgbm_cal.brier_skill`" in view["selectedColumns"]
    # `regime ui` replaced itself with mlflow's server: one worker, no job runner
    processes = _tree(proc.pid)
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
    assert done.stderr == f"error: port {port} on 127.0.0.1 is already in use; stop the other server or pass --port\n"
    assert port_is_free(port)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_browser_shows_metric_columns_and_compares_two_training_runs(ui, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    url, link, _, home = ui
    shots = Path(os.environ.get("REGIME_UI_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    exp_id = mlflow.get_experiment_by_name("tiny").experiment_id
    parents = mlflow.search_runs([exp_id], "tags.registered_version != ''", order_by=["start_time DESC"],
                                 output_format="list")[:2]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            # wide enough that the grid renders every headline column (it virtualises off-screen ones)
            page = browser.new_page(viewport={"width": 3800, "height": 900})
            page.goto(link.split(": ", 1)[1])
            page.get_by_text("relative.lgbm_cal.brier_skill").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "runs_table.png"))
            text = page.inner_text("body")
            assert "Model training" in text and "train tiny" in text
            for metric in HEADLINE_METRICS:
                assert f"relative.lgbm_cal.{metric}" in text
            assert "sample panel 1949-01..2017-03" in text  # the Dataset column
            value = f"{parents[0].data.metrics['relative.lgbm_cal.brier_skill']}"[:6]
            assert value in text

            runs = json.dumps([r.info.run_id for r in parents])
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(f"{url}/#/compare-runs?runs={runs}&experiments={json.dumps([exp_id])}"
                      "&workflowType=machine_learning")
            page.get_by_text("model.relative.classifier.n_estimators").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "compare_runs.png"))
            text = page.inner_text("body")
            assert "Comparing 2 Runs" in text
            assert parents[0].info.run_name in text and parents[1].info.run_name in text
            params = text[text.index("Parameters\nShow diff only"):text.index("Metrics\nShow diff only")]
            trees = [r.data.params["model.relative.classifier.n_estimators"] for r in parents]
            assert re.search(rf"model\.relative\.classifier\.n_estimators\s+{trees[0]}\s+{trees[1]}\n", params)
            assert re.search(r"params_source\s+model specs\s+model specs", params)
            # the metrics table lists names, then each run's value side by side (3 decimals)
            metrics = text[text.index("Metrics\nShow diff only"):text.index("Artifacts")]
            assert "absolute.lgbm_cal.brier_skill" in metrics and "absolute.linear_cal.r2_oos" in metrics
            auc = [round(r.data.metrics["absolute.lgbm_cal.auc"], 3) for r in parents]
            assert f"\n{auc[0]}\n{auc[1]}\n" in metrics
            page.get_by_text("absolute.lgbm_cal.brier_skill").first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "compare_metrics.png"))
        finally:
            browser.close()
