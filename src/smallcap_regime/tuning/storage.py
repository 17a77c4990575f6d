"""Where Optuna studies live: a journal file under the home (local workers) or a database shared by machines."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial

from ..errors import RegimeError
from ..home import tuning_dir
from ..urls import redact_url, scrub, split_userinfo

# grace period of a trial's heartbeat, in heartbeat intervals: a loaded machine may delay one beat, not three
GRACE_BEATS = 3
POSTGRES_EXTRA = "pip install '.[postgres]' in the checkout (or pip install 'psycopg[binary]')"
log = logging.getLogger("smallcap_regime.tuning")


def default_storage(home: Path) -> str:
    """The default journal file, ``<home>/tuning/journal.log``."""
    return str(tuning_dir(home) / "journal.log")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def database_url(url: str) -> str:
    """The SQLAlchemy URL to open for ``url``, as people write it.

    ``postgres://`` (the libpq/Heroku spelling SQLAlchemy refuses) and ``postgresql://`` go to the installed driver:
    psycopg 3 (the ``postgres`` extra; SQLAlchemy 2.1's default for ``postgresql://``), else psycopg2. A password
    holding an unencoded ``@`` is percent-encoded, so ``user:p@ss@host`` reaches ``host`` with password ``p@ss``.

    Raises
    ------
    RegimeError
        A PostgreSQL URL and no driver installed; the message says what to install.
    """
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        if _installed("psycopg"):
            scheme = "postgresql+psycopg"
        elif _installed("psycopg2"):
            scheme = "postgresql+psycopg2"
        else:
            raise RegimeError(f"storage {redact_url(url)}: no PostgreSQL driver is installed; {POSTGRES_EXTRA}")
    split = split_userinfo(rest)
    if split is not None:
        rest = split[0].replace("@", "%40") + split[1]
    return f"{scheme}://{rest}"


def report_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Stale trial callback (Optuna's heartbeats, or a dead local journal worker): say which trial was failed."""
    log.warning("study %s: trial %d of worker %s was abandoned (worker killed or lost); marked failed, a new "
                "trial replaces it", study.study_name, trial.number, trial.user_attrs.get("worker", "unknown"))


def open_storage(url: str | None, home: Path, heartbeat: int | None = None) -> BaseStorage:
    """Open the Optuna storage holding the studies.

    Parameters
    ----------
    url : str or None
        None: the default journal file under ``<home>/tuning``. A path without ``://``: a journal file there (for
        example on a shared file system). ``postgresql://user:pass@host/db`` (or another SQLAlchemy database URL,
        see :func:`database_url`): a database that workers on several machines share.
    home : Path
        Home dir.
    heartbeat : int, optional
        Database storage only: seconds between the heartbeats of a running trial. A trial whose worker has sent
        none for ``GRACE_BEATS`` intervals (killed, machine lost) is marked failed by the next worker that looks.

    Raises
    ------
    RegimeError
        A SQLite URL (not safe for parallel workers), a missing driver, or the database cannot be opened; the
        message never shows the password.
    """
    if url is None or "://" not in url:
        path = Path(url).expanduser().resolve() if url else Path(default_storage(home))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    shown = redact_url(url)
    if url.split("://", 1)[0].split("+", 1)[0] == "sqlite":
        raise RegimeError(
            f"storage {shown}: SQLite is not supported for tuning: it locks the whole database on every write, so "
            "parallel workers fail with 'database is locked' (and its locking is unreliable on network file "
            "systems). Omit --storage to use the journal file under $REGIME_HOME/tuning (safe for several local "
            "processes), or use postgresql://... to share a study between machines."
        )
    from sqlalchemy.exc import SQLAlchemyError

    beats: dict[str, Any] = {} if heartbeat is None else {
        "heartbeat_interval": heartbeat, "grace_period": GRACE_BEATS * heartbeat,
        "heartbeat_stale_trial_callback": report_stale}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # pool_pre_ping: long trials leave connections idle; the server may have closed them in the meantime
            return RDBStorage(database_url(url), engine_kwargs={"pool_pre_ping": True}, **beats)
    except ImportError as exc:
        hint = "; or write postgresql://... for psycopg 3" if url.split("://", 1)[0].endswith("+psycopg2") else ""
        raise RegimeError(f"storage {shown}: the database driver is not installed ({scrub(str(exc), url)}); "
                          f"{POSTGRES_EXTRA}{hint}") from None
    except (SQLAlchemyError, ValueError) as exc:  # bad URL or unreachable server: report without the password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RegimeError(f"storage {shown}: cannot open ({type(exc).__name__}: {scrub(first, url)})") from None


def storage_label(url: str | None, home: Path) -> str:
    """Where the studies are, for messages and MLflow tags (passwords removed)."""
    if url is None:
        return default_storage(home)
    return redact_url(url) if "://" in url else str(Path(url).expanduser().resolve())
