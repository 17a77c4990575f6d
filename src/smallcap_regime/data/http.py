"""Downloads with timeouts, an overall deadline, a size bound, bounded retries and exponential backoff.

Only transient failures are retried (connection errors, timeouts, HTTP 429 and 5xx); a ``Retry-After`` header
replaces the backoff (capped). A 404 or another 4xx is final and reported at once, and so is a body larger than the
size bound. A connection that cannot be made at all (no network, DNS failure, refused) is retried only once and
marked ``unreachable``, so a pull without network gives up in seconds. The body is returned as bytes; judging
whether it is the expected file is the parser's job.
"""

from __future__ import annotations

import email.utils
import math
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from .. import __version__
from ..env import env_number
from ..errors import ConfigError, FetchError
from ..urls import redact_url

USER_AGENT = f"smallcap-regime/{__version__} (+https://github.com/; research use)"
DEFAULT_MAX_BYTES = 100 * 2**20
# A refused connection or a failed DNS lookup rarely heals within seconds: one retry, then the host is unreachable.
CONNECT_RETRIES = 1
# Content-Encoding -> zlib wbits. Decoded here rather than by httpx so that decompression stops at the size bound.
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one URL.

    Parameters
    ----------
    timeout_s : seconds allowed for connecting and for each read.
    retries : extra attempts after the first one (0 = try once).
    backoff_s : wait before the first retry; doubles on each further retry.
    deadline_s : overall limit for one URL, all attempts and waits included (a slow-drip body cannot outlast it).
    retry_after_max_s : longest wait honoured from a ``Retry-After`` header.
    """

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0
    deadline_s: float = 120.0
    retry_after_max_s: float = 60.0

    def __post_init__(self) -> None:
        checks = (("timeout_s", "HTTP timeout", "REGIME_HTTP_TIMEOUT", False),
                  ("retries", "HTTP retries", "REGIME_HTTP_RETRIES", True),
                  ("backoff_s", "HTTP backoff", "REGIME_HTTP_BACKOFF", True),
                  ("deadline_s", "HTTP deadline", "REGIME_HTTP_DEADLINE", False),
                  ("retry_after_max_s", "Retry-After cap", "REGIME_HTTP_RETRY_AFTER_MAX", True))
        for attr, label, env, zero_ok in checks:
            value = getattr(self, attr)
            if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
                bound = ">= 0" if zero_ok else "> 0"
                raise ConfigError(f"{label} must be a finite number {bound}, got {value} ({env})")

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Policy from ``REGIME_HTTP_TIMEOUT``, ``_RETRIES``, ``_BACKOFF``, ``_DEADLINE`` and ``_RETRY_AFTER_MAX``."""
        return cls(
            timeout_s=env_number("REGIME_HTTP_TIMEOUT", cls.timeout_s),
            retries=int(env_number("REGIME_HTTP_RETRIES", cls.retries, integer=True)),
            backoff_s=env_number("REGIME_HTTP_BACKOFF", cls.backoff_s),
            deadline_s=env_number("REGIME_HTTP_DEADLINE", cls.deadline_s),
            retry_after_max_s=env_number("REGIME_HTTP_RETRY_AFTER_MAX", cls.retry_after_max_s),
        )


def make_client(policy: RetryPolicy) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(policy.timeout_s),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": ", ".join(_ENCODINGS)},
        follow_redirects=True,
    )


class _Final(Exception):
    """A failure that another attempt would not fix (too large, undecodable, deadline)."""


@dataclass
class _Attempt:
    """Outcome of one GET: the body when status is 200, else the status and any ``Retry-After`` header."""

    status: int
    body: bytes = b""
    retry_after: str | None = None


def _transient(status: int) -> bool:
    return status == 429 or status >= 500


def _size_text(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n} bytes"


def _read_body(response: httpx.Response, max_bytes: int, deadline: float, policy: RetryPolicy) -> bytes:
    """Decode the body chunk by chunk, stopping as soon as it passes ``max_bytes`` or the deadline."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "", *_ENCODINGS):
        raise _Final(f"unsupported Content-Encoding {encoding!r}")
    decoder = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
    chunks, size = [], 0
    for raw in response.iter_raw():
        if time.monotonic() > deadline:
            raise _Final(f"download not finished within the {policy.deadline_s:g} s deadline (REGIME_HTTP_DEADLINE)")
        try:
            # max_length: a small compressed chunk must not expand to gigabytes before it is counted
            chunk = decoder.decompress(raw, max_bytes - size + 1) if decoder else raw
        except zlib.error as exc:
            raise _Final(f"body is not valid {encoding} ({exc})") from None
        size += len(chunk)
        if size > max_bytes:
            raise _Final(f"body larger than the {_size_text(max_bytes)} limit for this source")
        chunks.append(chunk)
    if decoder and not decoder.eof:
        raise _Final(f"{encoding} body ends before its end-of-stream marker (truncated)")
    return b"".join(chunks)


def _attempt(client: httpx.Client, url: str, policy: RetryPolicy, deadline: float, max_bytes: int) -> _Attempt:
    timeout = min(policy.timeout_s, max(deadline - time.monotonic(), 0.001))
    with client.stream("GET", url, timeout=httpx.Timeout(timeout)) as response:
        if response.status_code != 200:
            return _Attempt(response.status_code, retry_after=response.headers.get("Retry-After"))
        length = response.headers.get("Content-Length", "")
        if "Content-Encoding" not in response.headers and length.isdigit() and int(length) > max_bytes:
            raise _Final(f"body of {_size_text(int(length))} is larger than the {_size_text(max_bytes)} limit "
                         "for this source")
        return _Attempt(200, _read_body(response, max_bytes, deadline, policy))


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or invalid."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _wait_before(attempt: int, policy: RetryPolicy, retry_after: str | None) -> float:
    asked = retry_after_seconds(retry_after)
    if asked is not None:
        return min(asked, policy.retry_after_max_s)
    return policy.backoff_s * 2 ** (attempt - 1)


def fetch_bytes(url: str, policy: RetryPolicy, client: httpx.Client | None = None, *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """GET ``url`` and return the decoded body (at most ``max_bytes``) within ``policy.deadline_s``.

    Raises
    ------
    FetchError
        After the last attempt fails, naming the URL and the last reason (status code, timeout, connection
        error, size or deadline); ``unreachable`` is set when no connection could be made at all.
    """
    own_client = client is None
    client = client or make_client(policy)
    deadline = time.monotonic() + policy.deadline_s
    reason, status, retry_after, unreachable, connect_failures = "no attempt made", None, None, False, 0
    attempts = 0
    try:
        for attempt in range(policy.retries + 1):
            if attempt:
                wait = _wait_before(attempt, policy, retry_after)
                if time.monotonic() + wait >= deadline:
                    reason += f"; no time left for a retry within the {policy.deadline_s:g} s deadline"
                    break
                time.sleep(wait)
            attempts += 1
            status, retry_after, unreachable = None, None, False
            try:
                result = _attempt(client, url, policy, deadline, max_bytes)
            except _Final as exc:
                reason = str(exc)
                break
            except httpx.TimeoutException:
                reason = f"timed out after {policy.timeout_s:g} s"
                continue
            except httpx.TooManyRedirects as exc:  # a redirect loop (a misconfigured mirror): retrying cannot help
                reason = (f"redirect loop: more than {client.max_redirects} redirects, the last to "
                          f"{redact_url(str(exc.request.url))}")
                break
            except httpx.ConnectError as exc:
                reason, unreachable = f"connection failed ({exc.__class__.__name__}: {exc})", True
                connect_failures += 1
                if connect_failures > CONNECT_RETRIES:
                    break
                continue
            except httpx.TransportError as exc:
                reason = f"connection failed ({exc.__class__.__name__}: {exc})"
                continue
            if result.status == 200:
                return result.body
            status, retry_after = result.status, result.retry_after
            reason = f"HTTP {status}" + (" (not found)" if status == 404 else "")
            if not _transient(status):
                break
    finally:
        if own_client:
            client.close()
    raise FetchError(redact_url(url), f"{reason} after {attempts} attempt{'s' if attempts > 1 else ''}", status,
                     unreachable=unreachable)
