"""`regime serve`'s server: MLflow's own scoring app (``mlflow.pyfunc.scoring_server``) behind a request guard.

MLflow's scoring server parses a request before the model sees it, so some bad requests never reach the model's own
checks (:mod:`.pyfunc`) and others are changed on the way: a POST without Content-Type fails with 500 (the server
splits ``None``), JSON nested deeper than Python's recursion limit with 500 (``RecursionError`` in ``json.loads``),
any body size is read, and schema enforcement turns ``"3.95"`` and ``true`` into numbers. The guard answers those
before MLflow does, in MLflow's error format (``{"error_code": ..., "message": ...}``):

- 415 unless the Content-Type is ``application/json`` (the scoring protocol :func:`.serving.predict_remote` speaks);
- 413 above ``$REGIME_SERVE_MAX_BYTES`` (default 4 MiB: about 2,000 rows of features);
- 400 for JSON nested deeper than :data:`MAX_DEPTH` levels (the scoring formats need at most 4);
- 400 for a feature value that is not a JSON number or null (no silent coercion of strings or booleans).

A request that passes is parsed once: the usual one (``dataframe_split`` with the signature's columns, numbers and
nulls) is scored by :class:`Scorer` from the array the value check built, through MLflow's ``PyFuncModel.predict``
(schema and ``params`` enforcement, the model's checks), with MLflow's error answers and response JSON, byte for
byte (tested); any other request goes to MLflow's scoring app as sent, as do ``/ping`` and ``/version``. Run as
``python -m smallcap_regime.tracking.scoring MODEL_URI --host H --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Deepest JSON nesting accepted: ``{"dataframe_split": {"data": [[...]]}}`` is 4 levels.
MAX_DEPTH = 8
#: Largest request body accepted by default, bytes (``$REGIME_SERVE_MAX_BYTES`` overrides).
MAX_BYTES = 4 * 1024 * 1024
JSON_TYPE = "application/json"
#: Keys of the scoring protocol whose values are feature values (``params`` and column names are not).
DATA_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class Rejected(Exception):
    """A request the guard answers itself: HTTP status, MLflow error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def max_bytes() -> int:
    """The body-size limit: ``$REGIME_SERVE_MAX_BYTES`` (a positive integer), else :data:`MAX_BYTES`."""
    from ..env import env_number
    from ..errors import ConfigError

    value = int(env_number("REGIME_SERVE_MAX_BYTES", MAX_BYTES, integer=True))
    if value <= 0:
        raise ConfigError(f"REGIME_SERVE_MAX_BYTES={value} must be a positive number of bytes")
    return value


def check_content_type(header: str | None) -> None:
    """415 unless ``header`` is ``application/json`` (parameters such as ``charset`` are MLflow's to check)."""
    mime = (header or "").split(";", 1)[0].strip().lower()
    if mime != JSON_TYPE:
        got = f"got {header!r}" if header else "the request has no Content-Type header"
        raise Rejected(415, "BAD_REQUEST", f"send the features as JSON with 'Content-Type: {JSON_TYPE}' ({got})")


#: A complete JSON string (escapes included): its brackets are text, not nesting.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
#: Everything but brackets.
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """400 when arrays/objects nest deeper than ``limit``. No parser (it would recurse once per level and fail on
    deep input with 500) and no Python loop over the bytes (a 1,000-row request is a megabyte): strings are cut
    out, an unterminated one with everything after it, and the depth is the running sum over the brackets left."""
    import numpy as np

    text = _STRING.sub(b"", body).split(b'"', 1)[0]
    brackets = np.frombuffer(_NOT_BRACKET.sub(b"", text), dtype=np.uint8)
    if not len(brackets):
        return
    steps = np.where((brackets == 0x5B) | (brackets == 0x7B), 1, -1)  # [ { open, ] } close
    if int(np.cumsum(steps).max()) > limit:
        raise Rejected(400, "INVALID_PARAMETER_VALUE",
                       f"JSON nested deeper than {limit} levels; a scoring request needs at most 4 "
                       '({"dataframe_split": {"columns": [...], "data": [[...]]}})')


def _finite_values(rows: list[Any]) -> np.ndarray | None:
    """The rows as one float64 array (null -> NaN) when every row is a list of finite JSON numbers or nulls, decided
    without a Python test per cell (the usual request); None sends the caller to the cell-by-cell search for the
    first bad value."""
    import numpy as np

    if not all(type(row) is list for row in rows):
        return None
    kinds = {type(cell) for row in rows for cell in row}
    if not kinds <= {float, int, type(None)}:
        return None
    try:
        values = np.array(rows, dtype="float64")  # null -> NaN; ragged rows or huge integers raise
    except (ValueError, TypeError, OverflowError):
        return None
    if np.isinf(values).any():
        return None
    # a NaN that is not a null came from a NaN literal: not a finite number
    if int(np.isnan(values).sum()) != sum(row.count(None) for row in rows):
        return None
    return values


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value))


def _first_bad(node: Any, column: str | None) -> tuple[str | None, Any] | None:
    """The first leaf that is not a number or null, with the column it belongs to when the format says it."""
    if isinstance(node, dict):
        for key, value in node.items():
            found = _first_bad(value, str(key))
            if found:
                return found
        return None
    if isinstance(node, list):
        for value in node:
            found = _first_bad(value, column)
            if found:
                return found
        return None
    return None if _number_or_null(node) else (column, node)


def check_values(payload: Any) -> np.ndarray | None:
    """400 for a feature value that is not a JSON number or null (strings and booleans are not coerced).

    Other shapes (no known key, a list, ``null``) pass through: MLflow's parser answers them with its 400.

    Returns
    -------
    For a ``dataframe_split`` whose rows are lists of numbers and nulls of one length, its ``data`` as the float64
    array (rows x columns, null as NaN) the check built; None otherwise.
    """
    if not isinstance(payload, dict):
        return None
    checked = None
    for key in DATA_KEYS:
        if key not in payload:
            continue
        data = payload[key]
        found = None
        if key == "dataframe_split" and isinstance(data, dict):
            columns: list[Any] = data["columns"] if isinstance(data.get("columns"), list) else []
            rows: list[Any] = data["data"] if isinstance(data.get("data"), list) else []
            checked = _finite_values(rows)
            for row in [] if checked is not None else rows:
                cells = row if isinstance(row, list) else [row]
                for i, cell in enumerate(cells):
                    if not _number_or_null(cell):
                        found = (str(columns[i]) if i < len(columns) else None, cell)
                        break
                if found:
                    break
        else:
            found = _first_bad(data, None)
        if found:
            column, value = found
            where = f" in feature column {column!r}" if column else ""
            raise Rejected(400, "INVALID_PARAMETER_VALUE",
                           f"non-numeric value {json.dumps(value)[:80]}{where}: features are JSON numbers (or null "
                           "for a missing value); strings and booleans are not converted")
    return checked


def check_body(body: bytes) -> tuple[Any, np.ndarray | None]:
    """The body checks after its size: nesting depth, then JSON values (malformed JSON is left to MLflow).

    Returns
    -------
    (payload, values) : the parsed JSON (None when malformed) and what :func:`check_values` returns, so that the
        request is parsed once.
    """
    check_depth(body)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None, None  # MLflow's parser answers malformed JSON with its own 400
    return payload, check_values(payload)


class Scorer:
    """The scoring of a checked ``dataframe_split`` request, without parsing it again.

    MLflow's app would decode the body twice more, rebuild the frame column by column from the JSON lists and
    cast each column to its schema type, then write the answer with the pure-Python JSON encoder; on a one-row
    request that is most of the server's work, on 1,000 rows more than the model's. For a request whose columns
    are the signature's (all ``double``) in its order, and whose values :func:`check_values` already turned into
    one float64 array, the frame MLflow would build is that array with those columns; the rest is MLflow's own
    path: ``PyFuncModel.predict`` (schema and ``params`` enforcement, then the model), its error answers and its
    response JSON (``{"predictions": records}``, :class:`~mlflow.utils.proto_json_utils.NumpyEncoder`), written
    in one C-encoder call. Any other request (other formats or columns, an ``index``, no rows, a content-type
    parameter other than ``charset=utf-8``) goes to MLflow's app unchanged.

    Parameters
    ----------
    model : the loaded ``PyFuncModel`` MLflow's app serves.
    """

    def __init__(self, model: Any) -> None:
        import inspect

        from mlflow.types import DataType

        self.model = model
        schema = model.metadata.get_input_schema()
        from_hints = getattr(model.metadata, "_is_signature_from_type_hint", lambda: False)()
        self.columns: list[str] | None = None
        if (schema is not None and schema.has_input_names() and not from_hints
                and all(t == DataType.double for t in schema.input_types())
                and "params" in inspect.signature(model.predict).parameters):
            self.columns = schema.input_names()

    def accepts(self, content_type: str | None, payload: Any, values: np.ndarray | None) -> bool:
        """Whether :meth:`answer` scores this request as MLflow's app would (else MLflow's app answers it)."""
        if self.columns is None or values is None or values.ndim != 2 or not len(values):
            return False
        mime, *parameters = (part.strip() for part in (content_type or "").split(";"))
        if any(p.partition("=")[0] != "charset" or p.partition("=")[2].lower() != "utf-8" for p in parameters):
            return False  # MLflow answers other charsets and parameters with its 415
        split = payload["dataframe_split"]
        return (set(payload) <= {"dataframe_split", "params"} and isinstance(payload.get("params", {}), dict)
                and set(split) == {"columns", "data"} and split["columns"] == self.columns
                and values.shape[1] == len(self.columns))

    def answer(self, payload: dict, values: np.ndarray) -> tuple[str, int, str]:
        """``(body, status, media type)`` of MLflow's answer (``scoring_server.invocations`` and its error handler)
        for an accepted request."""
        import traceback

        import pandas as pd
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import BAD_REQUEST
        from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj

        frame = pd.DataFrame(values, columns=self.columns)
        try:
            try:
                predictions = self.model.predict(frame, params=payload.get("params"))
            except MlflowException as error:
                error.message = f"Failed to predict data '{frame}'. \nError: {error.message}"
                raise
            except Exception:
                raise MlflowException(
                    message=("Encountered an unexpected error while evaluating the model. Verify that the serialized "
                             "input Dataframe is compatible with the model for inference."),
                    error_code=BAD_REQUEST, stack_trace=traceback.format_exc()) from None
        except MlflowException as error:
            return error.serialize_as_json(), error.get_http_status_code(), JSON_TYPE
        body = json.dumps({"predictions": _get_jsonable_obj(predictions, pandas_orient="records")}, cls=NumpyEncoder)
        return body, 200, JSON_TYPE


async def _drain(receive: Receive, last: Message | None = None, cap: int = 64 * MAX_BYTES) -> None:
    """Read and drop the rest of a refused body (up to ``cap`` bytes), so that the client, still sending, reads
    the 413 instead of a broken connection."""
    seen = 0
    while (last is None or last.get("more_body", False)) and seen < cap:
        last = await receive()
        if last["type"] == "http.disconnect":
            return
        seen += len(last.get("body", b""))


async def _reject(send: Send, error: Rejected) -> None:
    body = json.dumps({"error_code": error.code, "message": error.message}).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware in front of MLflow's scoring app: checks ``POST /invocations`` (module docstring).

    Parameters
    ----------
    app : MLflow's scoring app.
    limit : body-size limit in bytes (default :func:`max_bytes`).
    scorer : when given, the checked requests it accepts are scored by it (:class:`Scorer`) instead of ``app``.
    """

    def __init__(self, app: ASGIApp, limit: int | None = None, scorer: Scorer | None = None) -> None:
        self.app = app
        self.limit = max_bytes() if limit is None else limit
        self.scorer = scorer
        from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

        self.timeout = MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()  # what MLflow's app allows a request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
        content_type = headers.get(b"content-type")
        too_big = Rejected(413, "BAD_REQUEST", f"request body larger than {self.limit} bytes "
                                               "($REGIME_SERVE_MAX_BYTES); send fewer rows per request")
        try:
            check_content_type(content_type)
            declared = headers.get(b"content-length", "")
            if declared.isdigit() and int(declared) > self.limit:
                await _drain(receive)
                raise too_big
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.limit:  # a chunked body has no Content-Length: stop keeping it at the limit
                    await _drain(receive, message)
                    raise too_big
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            # off the event loop, as MLflow runs its parsing and the model: a megabyte of JSON takes ~10 ms
            answered = await self._within_timeout(asyncio.to_thread(self._check_and_score, body, content_type))
        except Rejected as error:
            await _reject(send, error)
            return
        if answered is not None:
            from starlette.responses import Response

            content, status, media_type = answered
            await Response(content=content, status_code=status, media_type=media_type)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:  # MLflow's app reads the body we already read
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_and_score(self, body: bytes, content_type: str | None) -> tuple[str, int, str] | None:
        """:func:`check_body`, then the scorer's answer when it accepts the request; None hands it to MLflow."""
        payload, values = check_body(body)
        if self.scorer is None or not self.scorer.accepts(content_type, payload, values):
            return None
        assert values is not None  # accepts() checked it
        return self.scorer.answer(payload, values)

    async def _within_timeout(self, work: Awaitable[tuple[str, int, str] | None]) -> tuple[str, int, str] | None:
        """``work``, or MLflow's 504 after ``$MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` seconds (its app's limit)."""
        try:
            return await asyncio.wait_for(work, timeout=self.timeout)
        except TimeoutError:
            return "Request processing time exceeded limit", 504, JSON_TYPE


def build_app(model_uri: str) -> ASGIApp:
    """MLflow's scoring app for ``model_uri`` (as ``mlflow models serve`` builds it), behind :class:`RequestGuard`,
    whose :class:`Scorer` answers the usual ``dataframe_split`` requests with the same model."""
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(model_uri)
    return RequestGuard(scoring_server.init(model), scorer=Scorer(model))


def main(argv: list[str] | None = None) -> None:
    """``python -m smallcap_regime.tracking.scoring MODEL_URI --host H --port P`` (what `regime serve` execs)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="smallcap_regime.tracking.scoring", description=__doc__.split("\n")[0])
    parser.add_argument("model_uri")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uvicorn.run(build_app(args.model_uri), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
