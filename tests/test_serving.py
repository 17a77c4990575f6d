"""The real MLflow scoring server on a loopback port, serving the registered model: good and bad requests, the
served answers equal to in-process ones, and `regime serve`'s lifecycle (SIGTERM, busy port, missing model)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from smallcap_regime.cli import main
from smallcap_regime.models.regime import REGIMES
from smallcap_regime.tracking import store
from smallcap_regime.tracking.pyfunc import SERVED_COLUMNS
from smallcap_regime.tracking.serving import predict_local, predict_remote

from helpers import free_port, port_is_free, scoring_server, wait_until_up

pytestmark = pytest.mark.slow  # MLflow scoring servers

REGIME = [str(Path(sys.executable).with_name("regime"))]  # the installed console script


@pytest.fixture(scope="module")
def server(trained_home):
    home, result = trained_home
    with scoring_server(home, result.model_uri) as url:
        yield url, result


def _payload(frame) -> dict:
    split = json.loads(frame.to_json(orient="split"))
    split.pop("index")
    return {"dataframe_split": split}


def _post(url, body, content_type="application/json"):
    return httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=30)


def test_valid_request_returns_every_output_column(server):
    url, result = server
    rows = result.backtest.features.tail(2)
    out = predict_remote(url, rows)
    assert list(out.columns) == SERVED_COLUMNS
    assert set(out["regime"]) <= set(REGIMES)
    assert (out["model_version"] == result.version).all()  # the version the server loaded
    expected = result.model.predict(rows).reset_index(drop=True)
    assert np.allclose(out["p_outperform"], expected["p_outperform"])
    assert (out["regime"] == expected["regime"]).all()


def test_served_forecasts_equal_in_process_ones_for_every_month(server, trained_home):
    url, result = server
    home, _ = trained_home
    features = result.backtest.features
    months = features[features[result.model.required].notna().all(axis=1)]  # every month the model can score
    assert len(months) > 700
    served = predict_remote(url, months)
    store.configure(home)
    local = predict_local(result.model_uri, months)
    numeric = [c for c in SERVED_COLUMNS if pd.api.types.is_float_dtype(local[c])]
    assert {"p_outperform", "p_positive", "relative_forecast", "absolute_hi", "confidence"} <= set(numeric)
    np.testing.assert_allclose(served[numeric].to_numpy(), local[numeric].to_numpy(), rtol=0, atol=1e-12)
    for label in ("regime", "regime_leaning", "relative_drivers_up", "relative_drivers_down", "absolute_drivers_up",
                  "absolute_drivers_down", "model_version"):
        assert served[label].tolist() == local[label].tolist(), label


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=[f.columns[0]]), "missing"),
        (lambda f: f.astype(object).assign(**{f.columns[0]: "abc"}), "abc|could not convert|Incompatible input"),
        (lambda f: f.assign(aaa_pct=500.0),
         re.escape("aaa_pct = 500 is outside its plausible range [0, 30] (from the lag table's series ranges")),
        (lambda f: f.assign(fwd_month=13.0), re.escape("fwd_month = 13 is outside its plausible range [1, 12]")),
        (lambda f: f.assign(fwd_3m_has_january_flag=7.0),
         re.escape("fwd_3m_has_january_flag = 7 is outside its plausible range [0, 1]")),
        (lambda f: f.assign(baa_aaa_spread_bp=-4000.0),
         re.escape("baa_aaa_spread_bp = -4000 is outside its plausible range [-3000, 3000]")),
        (lambda f: f.assign(small_mom_12m=-1.5),
         re.escape("small_mom_12m = -1.5 is outside its plausible range [-1, unbounded]")),
        (lambda f: f * 0 + 1e12, re.escape("aaa_chg_1m_bp = 1e+12 is outside its plausible range [-3000, 3000]")),
    ],
    ids=["missing-column", "string-value", "yield-500pct", "month-13", "flag-7", "spread", "return-below-100pct",
         "everything-1e12"],
)
def test_bad_payloads_get_4xx_with_a_message_and_server_keeps_serving(server, mutate, message):
    url, result = server
    bad = mutate(result.backtest.features.tail(1).copy())
    response = _post(url, json.dumps(_payload(bad)))
    assert 400 <= response.status_code < 500
    assert response.json()["message"]
    import re

    assert re.search(message, response.json()["message"])
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    assert _post(url, json.dumps(_payload(result.backtest.features.tail(1)))).status_code == 200


def test_nan_in_a_required_feature_is_rejected_by_name(server):
    url, result = server
    row = result.backtest.features.tail(1).copy()
    required = result.model.required[0]
    payload = _payload(row)
    payload["dataframe_split"]["data"][0][payload["dataframe_split"]["columns"].index(required)] = None
    response = _post(url, json.dumps(payload))
    assert response.status_code == 400
    assert f"NaN/null in feature(s) the model needs: {required}" in response.json()["message"]


@pytest.mark.parametrize(("body", "content_type"), [
    ("", "application/json"), ("{not json", "application/json"),
    ('{"dataframe_split": {"columns": [], "data": []}}', "application/json"),
    ("[]", "application/json"), ("null", "application/json"), ('{"dataframe_split": "x"}', "application/json"),
    ('{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "application/json"),
    ('{"dataframe_split": {"data": [[1]]}}', "application/json"),
    ('{"dataframe_records": [[1, 2]]}', "application/json"),
    ('{"inputs": {"a": [1]}}', "application/json"), ('{"instances": [1]}', "application/json"),
    (b"\xff\xfe", "application/json"), ("a,b\n1", "text/csv"), ('"', "text/csv"),
    ("garbage", "application/vnd.apache.parquet"), ("a", "text/plain"),
], ids=["empty-body", "malformed-json", "no-rows", "list", "null", "split-not-a-dict", "ragged", "no-columns",
        "records-of-lists", "inputs-dict", "instances", "not-utf8", "csv-short", "csv-quote", "parquet-garbage",
        "text-plain"])
def test_empty_or_malformed_bodies_get_4xx(server, body, content_type):
    url, result = server
    response = _post(url, body, content_type)
    assert 400 <= response.status_code < 500
    assert (response.json()["message"] if content_type != "text/plain" else response.text)
    assert _post(url, json.dumps(_payload(result.backtest.features.tail(1)))).status_code == 200


def _regime(*args: str, home: Path) -> list[str]:
    return [*REGIME, *args, "--home", str(home)]


def test_regime_serve_is_the_server_and_sigterm_stops_it(trained_home):
    home, result = trained_home
    port = free_port()
    proc = subprocess.Popen(_regime("serve", "--port", str(port), home=home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/ping", "regime serve")
        # `regime serve` replaced itself with the (guarded) MLflow scoring server: the process we started is it
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"smallcap_regime.tracking.scoring" in cmdline
        assert any(arg.startswith(b"models:/smallcap-regime/") for arg in cmdline)
        assert not any(a.endswith(b"/regime") for a in cmdline)
        store.configure(home)
        champion = MlflowClient().get_model_version_by_alias("smallcap-regime", "champion").version
        assert predict_remote(url, result.backtest.features.tail(1))["model_version"].tolist() == [str(champion)]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_is_free(port), "the server still holds the port after SIGTERM"
        banner = f"serving models:/smallcap-regime/{champion} [champion (version {champion})]"
        assert banner in proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()


def _run_main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["regime", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def test_serve_errors_are_one_line_and_exit_2(trained_home, home, monkeypatch, capsys):
    trained, _ = trained_home
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = _run_main(monkeypatch, capsys, "serve", "--home", str(trained), "--port", str(port))
        assert code == 2 and err.strip().count("\n") == 0
        assert f"port {port} on 127.0.0.1 is already in use; stop the other server or choose another port" in err
    code, err = _run_main(monkeypatch, capsys, "serve", "--home", str(trained), "--version", "99")
    assert code == 2 and err.strip().count("\n") == 0 and "version 99" in err and "Traceback" not in err
    code, err = _run_main(monkeypatch, capsys, "serve", "--home", str(home))
    assert code == 2 and f"no model 'smallcap-regime' registered in sqlite:///{home}/mlflow.db" in err
    # versions but no champion: no silent fallback to the latest
    shutil.copy(trained / "mlflow.db", home / "mlflow.db")
    store.configure(home)
    MlflowClient().delete_registered_model_alias("smallcap-regime", "champion")
    code, err = _run_main(monkeypatch, capsys, "serve", "--home", str(home))
    assert code == 2 and "no champion to serve (no champion yet, using the latest version" in err
    assert "make one champion with `regime train --force`" in err
