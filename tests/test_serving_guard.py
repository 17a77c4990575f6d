"""`regime serve`'s request guard in front of MLflow's scoring server: the requests MLflow answered with 500, read
whatever their size, or silently coerced (issue 23, case 6), on a real server and as unit checks."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from smallcap_regime.tracking.scoring import MAX_DEPTH, Rejected, check_body, check_content_type
from smallcap_regime.tracking.serving import mlflow_env, serve_command

from helpers import free_port, wait_until_up

LIMIT = 200_000  # bytes, through $REGIME_SERVE_MAX_BYTES


@pytest.fixture(scope="module")
def guarded(trained_home):
    home, result = trained_home
    port = free_port()
    proc = subprocess.Popen(serve_command(home, result.model_uri, "127.0.0.1", port),
                            env={**mlflow_env(home), "REGIME_SERVE_MAX_BYTES": str(LIMIT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{url}/ping", "regime serve (guarded scoring server)")
    yield url, result
    proc.terminate()
    proc.wait(timeout=30)


def _row(result) -> dict:
    frame = result.backtest.features.tail(1)
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def _post(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=body, headers=headers or {}, timeout=60)


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({}, 415, "send the features as JSON with 'Content-Type: application/json' (the request has no Content-Type "
              "header)"),
    ({"Content-Type": "text/plain"}, 415, "send the features as JSON with 'Content-Type: application/json' (got "
                                          "'text/plain')"),
    ({"Content-Type": "text/csv"}, 415, "(got 'text/csv')"),
], ids=["no-content-type", "text-plain", "csv"])
def test_requests_that_are_not_json_get_415(guarded, headers, status, message):
    url, result = guarded
    response = _post(url, json.dumps(_row(result)), headers)
    assert response.status_code == status
    assert message in response.json()["message"]


@pytest.mark.parametrize("levels", [9, 1_000, 50_000])
def test_deep_nesting_gets_400_not_500(guarded, levels):
    url, _ = guarded
    response = _post(url, '{"dataframe_split": ' + _nested(levels) + "}", {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": (
        f"JSON nested deeper than {MAX_DEPTH} levels; a scoring request needs at most 4 "
        '({"dataframe_split": {"columns": [...], "data": [[...]]}})')}


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), ("3.95", '"3.95"'), ("abc", '"abc"')])
def test_non_numeric_feature_values_get_400_naming_the_column(guarded, value, shown):
    url, result = guarded
    payload = _row(result)
    payload["dataframe_split"]["data"][0][2] = value
    column = payload["dataframe_split"]["columns"][2]
    response = _post(url, json.dumps(payload), {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"non-numeric value {shown} in feature column {column!r}: features are JSON numbers (or null for a missing "
        "value); strings and booleans are not converted")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_gets_413(guarded, chunked):
    url, _ = guarded
    body = b'{"dataframe_split": {"columns": ["a"], "data": [' + b"[1.0]," * (LIMIT // 6) + b"[1.0]]}}"
    content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = httpx.post(f"{url}/invocations", content=content, headers={"Content-Type": "application/json"},
                          timeout=60)
    assert response.status_code == 413
    assert response.json()["message"] == (f"request body larger than {LIMIT} bytes ($REGIME_SERVE_MAX_BYTES); send "
                                           "fewer rows per request")


def test_the_guarded_server_still_answers_good_requests_and_ping(guarded):
    url, result = guarded
    response = _post(url, json.dumps(_row(result)), {"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["model_version"] == result.version
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200


def test_the_checks_without_a_server():
    check_content_type("application/json; charset=utf-8")
    check_body(b'{"dataframe_records": [{"a": 1, "b": null}]}')
    check_body(b'{"dataframe_split": {"columns": ["[[[[[[[[[["], "data": [[1]]}}')  # brackets inside a string
    with pytest.raises(Rejected, match=r"^non-numeric value false in feature column 'b'"):
        check_body(b'{"dataframe_records": [{"a": 1, "b": false}]}')
    with pytest.raises(Rejected, match=r"^non-numeric value \"x\": features are JSON numbers"):
        check_body(b'{"instances": [[1, "x"]]}')
