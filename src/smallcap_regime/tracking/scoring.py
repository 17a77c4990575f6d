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

Everything else (``/ping``, ``/version``, parsing, the model's checks, the answer) is MLflow's. Run as
``python -m smallcap_regime.tracking.scoring MODEL_URI --host H --port P``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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


def _all_finite_numbers(rows: list[Any]) -> bool:
    """Whether every row is a list of finite JSON numbers or nulls, decided without a Python test per cell (the
    usual request); False sends the caller to the cell-by-cell search for the first bad value."""
    import numpy as np

    if not all(type(row) is list for row in rows):
        return False
    kinds = {type(cell) for row in rows for cell in row}
    if not kinds <= {float, int, type(None)}:
        return False
    try:
        values = np.array(rows, dtype="float64")  # null -> NaN; ragged rows or huge integers raise
    except (ValueError, TypeError, OverflowError):
        return False
    if np.isinf(values).any():
        return False
    # a NaN that is not a null came from a NaN literal: not a finite number
    return int(np.isnan(values).sum()) == sum(row.count(None) for row in rows)


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


def check_values(payload: Any) -> None:
    """400 for a feature value that is not a JSON number or null (strings and booleans are not coerced).

    Other shapes (no known key, a list, ``null``) pass through: MLflow's parser answers them with its 400.
    """
    if not isinstance(payload, dict):
        return
    for key in DATA_KEYS:
        if key not in payload:
            continue
        data = payload[key]
        found = None
        if key == "dataframe_split" and isinstance(data, dict):
            columns: list[Any] = data["columns"] if isinstance(data.get("columns"), list) else []
            rows: list[Any] = data["data"] if isinstance(data.get("data"), list) else []
            for row in [] if _all_finite_numbers(rows) else rows:
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


def check_body(body: bytes) -> None:
    """The body checks after its size: nesting depth, then JSON values (malformed JSON is left to MLflow)."""
    check_depth(body)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return  # MLflow's parser answers malformed JSON with its own 400
    check_values(payload)


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
    """ASGI middleware in front of MLflow's scoring app: checks ``POST /invocations`` (module docstring)."""

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = max_bytes() if limit is None else limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
        too_big = Rejected(413, "BAD_REQUEST", f"request body larger than {self.limit} bytes "
                                               "($REGIME_SERVE_MAX_BYTES); send fewer rows per request")
        try:
            check_content_type(headers.get(b"content-type"))
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
            check_body(body)
        except Rejected as error:
            await _reject(send, error)
            return
        sent = False

        async def replay() -> Message:  # MLflow's app reads the body we already read
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def build_app(model_uri: str) -> ASGIApp:
    """MLflow's scoring app for ``model_uri`` (as ``mlflow models serve`` builds it), behind :class:`RequestGuard`."""
    from mlflow.pyfunc import scoring_server

    return RequestGuard(scoring_server.init(scoring_server.load_model_with_mlflow_config(model_uri)))


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
