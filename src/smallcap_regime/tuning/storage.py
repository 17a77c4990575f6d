"""Where Optuna studies live: a journal file under the home (local workers) or a database shared by machines."""

from __future__ import annotations

from pathlib import Path

from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..errors import RegimeError
from ..home import tuning_dir


def default_storage(home: Path) -> str:
    """The default journal file, ``<home>/tuning/journal.log``."""
    return str(tuning_dir(home) / "journal.log")


def _redacted(url: str) -> str:
    """The database URL without its password (for messages and MLflow tags)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # unparsable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def open_storage(url: str | None, home: Path) -> BaseStorage:
    """Open the Optuna storage holding the studies.

    Parameters
    ----------
    url : str or None
        None: the default journal file under ``<home>/tuning``. A path without ``://``: a journal file there (for
        example on a shared file system). ``postgresql://user:pass@host/db`` (or another SQLAlchemy database URL):
        a database that workers on several machines share.
    home : Path
        Home dir.

    Raises
    ------
    RegimeError
        A SQLite URL (not safe for parallel workers), or the database cannot be opened.
    """
    if url is None or "://" not in url:
        path = Path(url).expanduser().resolve() if url else Path(default_storage(home))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.split("://", 1)[0].split("+", 1)[0] == "sqlite":
        raise RegimeError(
            f"--storage {url}: SQLite is not supported for tuning: it locks the whole database on every write, so "
            "parallel workers fail with 'database is locked' (and its locking is unreliable on network file "
            "systems). Omit --storage to use the journal file under $REGIME_HOME/tuning (safe for several local "
            "processes), or use postgresql://... to share a study between machines."
        )
    from sqlalchemy.exc import SQLAlchemyError

    try:
        # pool_pre_ping: long trials leave connections idle; the server may have closed them in the meantime
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:
        raise RegimeError(f"--storage {_redacted(url)}: the database driver is not installed ({exc})") from None
    except (SQLAlchemyError, ValueError) as exc:  # bad URL or unreachable server: report without the password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RegimeError(f"--storage {_redacted(url)}: cannot open ({type(exc).__name__}: {first})") from None


def storage_label(url: str | None, home: Path) -> str:
    """Where the studies are, for messages and MLflow tags (passwords removed)."""
    if url is None:
        return default_storage(home)
    return _redacted(url) if "://" in url else str(Path(url).expanduser().resolve())
