"""The real MLflow scoring server on a loopback port, serving the registered model: good and bad requests."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import httpx
import numpy as np
import pytest

from smallcap_regime.models.regime import REGIMES
from smallcap_regime.models.bundle import OUTPUT_COLUMNS
from smallcap_regime.tracking.serving import mlflow_env, predict_remote, serve_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_home):
    home, result = trained_home
    port = _free_port()
    proc = subprocess.Popen(serve_command(home, result.model_uri, "127.0.0.1", port), env=mlflow_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow models serve did not come up within 120 s")
    yield url, result
    proc.terminate()
    proc.wait(timeout=30)


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
    assert list(out.columns) == OUTPUT_COLUMNS
    assert set(out["regime"]) <= set(REGIMES)
    expected = result.model.predict(rows).reset_index(drop=True)
    assert np.allclose(out["p_outperform"], expected["p_outperform"])
    assert (out["regime"] == expected["regime"]).all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=[f.columns[0]]), "missing"),
        (lambda f: f.astype(object).assign(**{f.columns[0]: "abc"}), "abc|could not convert|Incompatible input"),
    ],
    ids=["missing-column", "string-value"],
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


@pytest.mark.parametrize(("body", "content_type"), [("", "application/json"), ("{not json", "application/json"),
                                                    ('{"dataframe_split": {"columns": [], "data": []}}',
                                                     "application/json")],
                         ids=["empty-body", "malformed-json", "no-rows"])
def test_empty_or_malformed_bodies_get_4xx(server, body, content_type):
    url, result = server
    response = _post(url, body, content_type)
    assert 400 <= response.status_code < 500
    assert response.json()["message"]
    assert _post(url, json.dumps(_payload(result.backtest.features.tail(1)))).status_code == 200
