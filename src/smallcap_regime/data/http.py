"""Downloads with timeouts, bounded retries and exponential backoff.

Only transient failures are retried (connection errors, timeouts, HTTP 429 and 5xx). A 404 or another 4xx is final
and reported at once. The body is returned as bytes; judging whether it is the expected file is the parser's job,
except for the one failure every source shares: an HTML page where data was expected.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx

from ..errors import ConfigError, FetchError
from .. import __version__

USER_AGENT = f"smallcap-regime/{__version__} (+https://github.com/; research use)"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one URL.

    Parameters
    ----------
    timeout_s : seconds allowed for connecting and for each read.
    retries : extra attempts after the first one (0 = try once).
    backoff_s : wait before the first retry; doubles on each further retry.
    """

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ConfigError(f"HTTP timeout must be > 0 seconds, got {self.timeout_s} (REGIME_HTTP_TIMEOUT)")
        if self.retries < 0:
            raise ConfigError(f"HTTP retries must be >= 0, got {self.retries} (REGIME_HTTP_RETRIES)")
        if self.backoff_s < 0:
            raise ConfigError(f"HTTP backoff must be >= 0 seconds, got {self.backoff_s} (REGIME_HTTP_BACKOFF)")

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """Policy overridable by ``REGIME_HTTP_TIMEOUT``, ``REGIME_HTTP_RETRIES``, ``REGIME_HTTP_BACKOFF``."""
        return cls(
            timeout_s=float(os.environ.get("REGIME_HTTP_TIMEOUT", cls.timeout_s)),
            retries=int(os.environ.get("REGIME_HTTP_RETRIES", cls.retries)),
            backoff_s=float(os.environ.get("REGIME_HTTP_BACKOFF", cls.backoff_s)),
        )


def make_client(policy: RetryPolicy) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(policy.timeout_s),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


def _transient(status: int) -> bool:
    return status == 429 or status >= 500


def fetch_bytes(url: str, policy: RetryPolicy, client: httpx.Client | None = None) -> bytes:
    """GET ``url`` and return the body.

    Raises
    ------
    FetchError
        After the last attempt fails, naming the URL and the last reason (status code, timeout, connection error).
    """
    own_client = client is None
    client = client or make_client(policy)
    reason, status = "no attempt made", None
    try:
        for attempt in range(policy.retries + 1):
            if attempt:
                time.sleep(policy.backoff_s * 2 ** (attempt - 1))
            try:
                response = client.get(url)
            except httpx.TimeoutException:
                reason, status = f"timed out after {policy.timeout_s:g} s", None
                continue
            except httpx.TransportError as exc:
                reason, status = f"connection failed ({exc.__class__.__name__}: {exc})", None
                continue
            if response.status_code == 200:
                return response.content
            status = response.status_code
            reason = f"HTTP {status}" + (" (not found)" if status == 404 else "")
            if not _transient(status):
                break
    finally:
        if own_client:
            client.close()
    attempts = attempt + 1
    raise FetchError(url, f"{reason} after {attempts} attempt{'s' if attempts > 1 else ''}", status)

