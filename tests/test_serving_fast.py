"""The guard's scorer (issue 24): a checked ``dataframe_split`` request is parsed once and answered without MLflow's
parser, yet every answer is MLflow's own, byte for byte (status, headers, body), good and bad requests alike, and
equals the in-process forecast; requests it does not take still reach MLflow's app. Also the driver texts it writes
(plain names cached, one formatter per unit kind) read as before."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from smallcap_regime.features import labels
from smallcap_regime.tracking.pyfunc import SERVED_COLUMNS, SERVING_FLAG

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def apps(trained_home):
    """(MLflow's own scoring app, the guarded app with its scorer, the trained result, answers scored by the scorer)."""
    from mlflow.pyfunc import scoring_server
    from starlette.testclient import TestClient

    from smallcap_regime.tracking import store
    from smallcap_regime.tracking.scoring import RequestGuard, Scorer

    home, result = trained_home
    store.configure(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SERVING_FLAG, "true")  # scoring_server.init sets it for good: restored after the module
        model = scoring_server.load_model_with_mlflow_config(result.model_uri)
        scorer = Scorer(model)
        scored: list[int] = []
        answer = scorer.answer

        def counted(payload, values):
            scored.append(len(values))
            return answer(payload, values)

        patch.setattr(scorer, "answer", counted)
        with TestClient(scoring_server.init(model)) as stock, \
                TestClient(RequestGuard(scoring_server.init(model), scorer=scorer)) as guarded:
            yield stock, guarded, result, scored


def _split(frame: pd.DataFrame, **extra) -> dict:
    """The scoring request for ``frame``, NaN as null (what a JSON client sends for a missing value)."""
    data = [[None if v != v else v for v in row] for row in frame.to_numpy().tolist()]
    return {"dataframe_split": {"columns": list(frame.columns), "data": data}, **extra}


def _rows(result, n: int) -> pd.DataFrame:
    return result.backtest.features.dropna(subset=result.model.required).tail(n)


def _with(frame: pd.DataFrame, **values) -> pd.DataFrame:
    return frame.assign(**values)


# (name, request body from the result, taken by the scorer)
CASES = [
    ("one-row", lambda r: _split(_rows(r, 1)), True),
    ("batch", lambda r: _split(_rows(r, 40)), True),
    ("no-drivers", lambda r: _split(_rows(r, 40), params={"drivers": 0}), True),
    ("one-driver", lambda r: _split(_rows(r, 3), params={"drivers": 1}), True),
    ("bad-drivers", lambda r: _split(_rows(r, 1), params={"drivers": -2}), True),
    ("unknown-param", lambda r: _split(_rows(r, 1), params={"other": 1}), True),
    ("integers", lambda r: _split(_rows(r, 2).round(0)), True),
    ("out-of-range", lambda r: _split(_with(_rows(r, 1), aaa_pct=500.0)), True),
    ("nan-required", lambda r: _split(_with(_rows(r, 1), **{r.model.required[0]: np.nan})), True),
    ("records", lambda r: {"dataframe_records": _rows(r, 2).to_dict("records")}, False),
    ("with-index", lambda r: {"dataframe_split": {**_split(_rows(r, 1))["dataframe_split"], "index": [7]}}, False),
    ("reordered", lambda r: _split(_rows(r, 1).iloc[:, ::-1]), False),
    ("missing-column", lambda r: _split(_rows(r, 1).iloc[:, 1:]), False),
    ("extra-column", lambda r: _split(_with(_rows(r, 1), zzz=1.0)), False),
    ("no-rows", lambda r: _split(_rows(r, 1).iloc[:0]), False),
    ("params-null", lambda r: _split(_rows(r, 1), params=None), False),
]


@pytest.mark.parametrize(("body", "scored"), [(body, scored) for _, body, scored in CASES],
                         ids=[name for name, _, _ in CASES])
def test_every_answer_is_mlflows_byte_for_byte(apps, body, scored):
    stock, guarded, result, answered = apps
    content = json.dumps(body(result))
    before = len(answered)
    ours, theirs = (app.post("/invocations", content=content, headers=JSON) for app in (guarded, stock))
    assert (len(answered) > before) is scored  # the scorer took exactly the requests it is meant to
    assert ours.status_code == theirs.status_code, ours.text
    assert ours.headers == theirs.headers
    assert ours.content == theirs.content


@pytest.mark.parametrize(("content_type", "scored"), [
    ("application/json; charset=utf-8", True), ("application/json; charset=UTF-8", True),
    ("application/json; charset=latin-1", False), ("application/json; format=pandas-split", False),
])
def test_content_type_parameters_are_answered_like_mlflow(apps, content_type, scored):
    stock, guarded, result, answered = apps
    content = json.dumps(_split(_rows(result, 1)))
    before = len(answered)
    ours, theirs = (app.post("/invocations", content=content, headers={"Content-Type": content_type})
                    for app in (guarded, stock))
    assert (len(answered) > before) is scored
    assert (ours.status_code, ours.headers, ours.content) == (theirs.status_code, theirs.headers, theirs.content)


@pytest.mark.parametrize("n_rows", [1, 60])
def test_served_forecasts_equal_the_in_process_ones(apps, n_rows):
    """Default drivers (three per side), one row and a batch: the scorer's JSON is the in-process forecast."""
    _, guarded, result, _ = apps
    rows = _rows(result, n_rows)
    response = guarded.post("/invocations", content=json.dumps(_split(rows)), headers=JSON)
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    assert list(served.columns) == SERVED_COLUMNS
    assert (served["model_version"] == result.version).all()
    local = result.model.predict(rows).reset_index(drop=True)
    assert (local[["relative_drivers_up", "relative_drivers_down"]] != "").any().any()  # drivers to compare
    pdt.assert_frame_equal(served[local.columns], local, check_dtype=False, rtol=0, atol=0)


def test_a_slow_answer_gets_mlflows_504(apps, monkeypatch):
    _, guarded, result, _ = apps
    monkeypatch.setattr(guarded.app, "timeout", 0)  # $MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT, read at start
    response = guarded.post("/invocations", content=json.dumps(_split(_rows(result, 1))), headers=JSON)
    assert (response.status_code, response.text) == (504, "Request processing time exceeded limit")


@pytest.mark.parametrize(("kind", "texts"), [
    (labels.BP, ["-0 bp", "+3 bp", "+0 bp"]), (labels.BP_LEVEL, ["-0 bp", "3 bp", "0 bp"]),
    (labels.PCT, ["-0.1 %", "+3.0 %", "+0.0 %"]), (labels.PCT_LEVEL, ["-0.12 %", "3.00 %", "0.00 %"]),
    (labels.PP, ["-0.12 pp", "+3.00 pp", "+0.00 pp"]), (labels.DECIMAL, ["-12.3 %", "+300.0 %", "+0.0 %"]),
    (labels.ANNUAL, ["-12.3 % a year", "300.0 % a year", "0.0 % a year"]), (labels.RATIO, ["-0.12", "3.00", "0.00"]),
    (labels.MONTHS_SIGNED, ["-0 months", "+3 months", "+0 months"]),
    (labels.DAYS, ["-0.12 days", "+3.00 days", "+0.00 days"]), (labels.POINTS, ["-0.1", "3.0", "0.0"]),
    (labels.POINTS_CHG, ["-0.1 points", "+3.0 points", "+0.0 points"]),
    (labels.STD, ["-0.12 sd", "+3.00 sd", "+0.00 sd"]), (labels.CUTS, ["-0.1 cuts", "+3.0 cuts", "+0.0 cuts"]),
    (labels.UNITLESS, ["-0.12", "+3.00", "+0.00"]), (labels.FLAG, ["yes", "yes", "no"]),
    (labels.MONTH, ["-0.1234", "March", "0"]), (labels.CYCLE, ["-0.1234", "pre-election year", "election year"]),
    ("no such kind", ["-0.1234", "3", "0"]),
])
def test_each_unit_kind_writes_its_values_as_before(kind, texts):
    """Pinned from the formatter before it was split per kind (issue 24); numpy floats read the same."""
    values = (-0.1234, 3.0, 0.0)
    assert [labels.value_text(kind, v) for v in values] == texts
    assert [labels.value_text(kind, np.float64(v)) for v in values] == texts
