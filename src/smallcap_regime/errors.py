"""Exceptions with messages meant for users: each names the input and what is wrong with it."""


class RegimeError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class DataFormatError(RegimeError, ValueError):
    """A downloaded or user-supplied file does not have the expected layout or contents.

    The message always starts with the file or URL name so that the failing input is obvious.
    """

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class FetchError(RegimeError):
    """A download failed after all retries (HTTP error, timeout, connection refused)."""

    def __init__(self, url: str, reason: str, status: int | None = None, *, unreachable: bool = False):
        self.url = url
        self.reason = reason
        self.status = status
        self.unreachable = unreachable  # no connection could be made at all (no network, DNS, refused)
        super().__init__(f"{url}: {reason}")


class ConfigError(RegimeError, ValueError):
    """A TOML config is missing, malformed or refers to something that does not exist."""


class NoDataError(RegimeError):
    """The data a command needs is not in the cache (run `regime data pull` first)."""


class CacheCorruptError(RegimeError):
    """A cache file (``manifest.json`` or a Parquet vintage) cannot be read; `regime data pull` repairs it."""


class HomeBusyError(RegimeError):
    """Another process holds the home's lock for longer than the configured wait."""


class OlderVintageError(RegimeError):
    """A download ends before the cached vintage of the same dataset (a stale mirror or an old copy)."""


class StaleInputError(RegimeError):
    """An input series is too old for the model to forecast: the message names it and how to refresh it."""


class StoreUnavailable(RegimeError):
    """A remote store (tracking server or database, Optuna storage) cannot be reached within its retry budget.

    Exit code 1 (an outage, not bad input); the message names the store with its password removed.
    """

    exit_code = 1
