"""A URL's password never reaches a message, a log line or an MLflow tag, whatever the scheme (issue 12 item 12)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smallcap_regime import tuning
from smallcap_regime.cli import app
from smallcap_regime.errors import RegimeError
from smallcap_regime.tracking import store
from smallcap_regime.tuning import storage as tuning_storage
from smallcap_regime.urls import redact_url, scrub


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:s3cret@db/optuna", "postgresql://u:***@db/optuna"),
    ("postgresql+psycopg://u:s3cret@db:5432/optuna", "postgresql+psycopg://u:***@db:5432/optuna"),
    ("postgresql+psycopg2://u:s3cret@db/optuna", "postgresql+psycopg2://u:***@db/optuna"),
    ("postgresql://u:p@ss:w@rd@db/optuna", "postgresql://u:***@db/optuna"),  # unencoded @ and :
    ("postgresql://u:p%40ss@db/optuna", "postgresql://u:***@db/optuna"),
    ("postgresql://db/optuna?sslmode=require&password=s3cret", "postgresql://db/optuna?sslmode=require&password=***"),
    ("sqlite://u:s3cret@/x.db", "sqlite://u:***@/x.db"),
    ("sqlite+pysqlcipher://:s3cret@/x.db?cipher=aes-256-cfb", "sqlite+pysqlcipher://:***@/x.db?cipher=aes-256-cfb"),
    ("http://u:s3cret@mlflow:5000", "http://u:***@mlflow:5000"),
    ("sqlite:////home/me/runs@2024/mlflow.db", "sqlite:////home/me/runs@2024/mlflow.db"),  # a path, not a user
    ("postgresql://u@db/optuna", "postgresql://u@db/optuna"),
    ("/shared/tuning/journal.log", "/shared/tuning/journal.log"),
])
def test_redacted_urls_keep_everything_but_the_password(url, shown):
    assert redact_url(url) == shown


def test_driver_messages_are_scrubbed_of_the_password_as_written_and_decoded():
    url = "postgresql://u:p%40ss w@db/x"
    assert scrub("auth failed for 'p@ss w' (p%40ss w)", url) == "auth failed for '***' (***)"


@pytest.mark.parametrize("url", ["sqlite://u:s3cret@/x.db", "sqlite+pysqlcipher://:s3cret@/x.db"])
def test_a_refused_sqlite_url_is_not_echoed_with_its_password(url, home):
    with pytest.raises(RegimeError, match=r"storage sqlite.*:\*\*\*@/x\.db: SQLite is not supported") as err:
        tuning.open_storage(url, home)
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(("url", "problem"), [
    ("postgresql://u:p@ss@localhost:1/db", "OperationalError"),  # unencoded @: reaches localhost, shows no part
    ("postgresql://u:s3cret@localhost:port/db", "ValueError"),  # a non-numeric port
    ("postgresql+psycopg://u:s3cret@localhost:1/db", "OperationalError"),
])
def test_a_storage_that_cannot_be_opened_is_named_without_its_password(url, problem, home):
    with pytest.raises(RegimeError, match=rf"storage postgresql[+a-z]*://u:\*\*\*@localhost:\w+/db: cannot open "
                                          rf"\({problem}") as err:
        tuning.open_storage(url, home)
    for part in ("s3cret", "p@ss", ":p@", "ss@localhost"):
        assert part not in str(err.value)


def test_postgresql_urls_go_to_the_installed_driver(home, monkeypatch):
    assert tuning_storage.database_url("postgresql://u:p@db/x") == "postgresql+psycopg://u:p@db/x"
    assert tuning_storage.database_url("postgres://u:p@db/x") == "postgresql+psycopg://u:p@db/x"
    assert tuning_storage.database_url("postgresql+psycopg2://u:p@db/x") == "postgresql+psycopg2://u:p@db/x"
    assert tuning_storage.database_url("postgresql://u:p@ss@db/x") == "postgresql+psycopg://u:p%40ss@db/x"
    monkeypatch.setattr(tuning_storage, "_installed", lambda module: module == "psycopg2")
    assert tuning_storage.database_url("postgresql://u:p@db/x") == "postgresql+psycopg2://u:p@db/x"
    monkeypatch.setattr(tuning_storage, "_installed", lambda module: False)
    with pytest.raises(RegimeError, match=r"storage postgresql://u:\*\*\*@db/x: no PostgreSQL driver is installed; "
                                          r"pip install '\.\[postgres\]'"):
        tuning.open_storage("postgresql://u:s3cret@db/x", home)


def test_a_missing_psycopg2_says_which_url_works_instead(home):
    pytest.importorskip("psycopg")
    try:
        import psycopg2  # noqa: F401
        pytest.skip("psycopg2 is installed here")
    except ImportError:
        pass
    with pytest.raises(RegimeError, match=r"storage postgresql\+psycopg2://u:\*\*\*@db/x: the database driver is "
                                          r"not installed .*; pip install '\.\[postgres\]'.*; "
                                          r"or write postgresql://\.\.\. for psycopg 3"):
        tuning.open_storage("postgresql+psycopg2://u:s3cret@db/x", home)


def test_tracking_uri_comes_from_the_environment_and_is_shown_redacted(home, monkeypatch):
    assert store.tracking_uri(home) == f"sqlite:///{home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://u:s3cret@10.0.0.5:5000")
    assert store.tracking_uri(home) == "http://u:s3cret@10.0.0.5:5000"
    assert store.tracking_label(home) == "http://u:***@10.0.0.5:5000"
    result = CliRunner().invoke(app, ["ui", "--home", str(home)])
    assert result.exit_code == 0
    assert "the MLflow tracking server is the UI: open http://u:***@10.0.0.5:5000" in result.output
    assert "s3cret" not in result.output


def test_the_cli_never_echoes_a_storage_password(home, monkeypatch, tmp_path):
    monkeypatch.setenv("REGIME_TUNING_STORAGE", "sqlite://u:s3cret@/x.db")
    result = CliRunner().invoke(app, ["tune", "quickstart", "--trials", "1", "--home", str(home)])
    assert result.exit_code != 0
    assert "SQLite is not supported" in str(result.exception)
    assert "s3cret" not in result.output + str(result.exception)
