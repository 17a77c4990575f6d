"""Team faults that need no server process: a mis-dated FINRA file, hostile config files, the `--server` message,
a redirect loop, and the terminal settings a caller's shell exports.

The FINRA files here are SYNTHETIC (tests/helpers.py ``finra_file``), served by the loopback server to exercise the
real download code.
"""

from __future__ import annotations

from datetime import date

import pytest

from smallcap_regime.data import sources
from smallcap_regime.data.cache import Cache

from helpers import finra_file, run_cli
from loopback import LoopbackServer, point_sources_at

SHRT = "/equity/otcmarket/biweekly/shrt{:%Y%m%d}.csv"


class January2018(date):
    @classmethod
    def today(cls) -> date:
        return date(2018, 1, 31)  # FINRA dates to fetch: 2017-12-29 and 2018-01-15 (a holiday: 2018-01-12)


def test_a_finra_file_whose_rows_say_another_date_is_refused_and_that_date_stays_to_fetch(home, monkeypatch):
    monkeypatch.setattr(sources, "date", January2018)
    with LoopbackServer() as server:
        point_sources_at(monkeypatch, server.url)
        server.serve(SHRT.format(date(2017, 12, 29)), (200, finra_file(date(2017, 12, 29), 4.0)))
        # a mirror serves the 2017-12-29 rows (other values) under the 2018-01-15 name
        server.serve(SHRT.format(date(2018, 1, 15)), (200, finra_file(date(2017, 12, 29), 9.0)))
        [result] = sources.pull(home, ["finra"])
        assert not result.ok
        assert result.message == ("shrt20180115.csv: settlementDate 2017-12-29 (line 2) is not the requested "
                                  "settlement date 2018-01-15; the file is refused")
        assert not Cache(home).has(sources.FINRA_KEY)  # nothing overwritten, nothing marked fetched

        # the mirror is fixed: 2018-01-15 was an exchange holiday, its file is the 12th's (the documented fallback)
        server.serve(SHRT.format(date(2018, 1, 15)), (404, b"not found"))
        server.serve(SHRT.format(date(2018, 1, 12)), (200, finra_file(date(2018, 1, 12), 4.5)))
        [result] = sources.pull(home, ["finra"])
    assert result.ok, result.message
    cache = Cache(home)
    frame = cache.read(sources.FINRA_KEY)
    iwm = frame[frame["symbol"] == "IWM"].set_index("settlement_date")["days_to_cover"]
    assert [(d.date(), v) for d, v in iwm.items()] == [(date(2017, 12, 29), 4.0), (date(2018, 1, 12), 4.5)]
    assert cache.manifest()[sources.FINRA_KEY].extra["fetched_dates"] == ["2017-12-29", "2018-01-15"]


# --- the command line: hostile config files, honest and redacted messages, any shell ---------------------------------


def regime(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The real `regime` entry point in process, in the shell the issue names (80 columns, no colour, dumb, C)."""
    return run_cli(monkeypatch, capsys, *args, env={"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb", "LANG": "C"})


@pytest.mark.parametrize(("content", "problem"), [
    (b'x = "\xff\xfe"\n', "not a UTF-8 text file (byte 0xff at offset 5); TOML files are UTF-8"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(1, 9)) * 4, "invalid TOML ("),
    (b"[experiment\nname = 1\n", "invalid TOML ("),
], ids=["latin1-bytes", "binary", "syntax"])
@pytest.mark.parametrize("command", ["backtest", "train", "tune"])
def test_an_undecodable_or_binary_config_is_one_line_exit_2_and_no_progress_bar(
        command, content, problem, home, tmp_path, monkeypatch, capsys):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    code, out, err = regime(monkeypatch, capsys, command, str(path), "--home", str(home))
    assert code == 2
    assert out == ""  # no empty `walk-forward 0/? folds` bar first
    assert err.startswith(f"error: {path}: {problem}") and err.count("\n") <= 3 and "Traceback" not in err


def test_predict_server_with_a_password_and_nothing_listening_says_so_without_the_password(
        trained_home, tiny_experiment, monkeypatch, capsys):
    from helpers import free_port

    home, _ = trained_home
    server = f"http://u:SECRETpw42@127.0.0.1:{free_port()}"
    code, out, err = regime(monkeypatch, capsys, "predict", "--experiment", str(tiny_experiment), "--server", server,
                            "--home", str(home))
    assert code == 1
    assert "SECRETpw42" not in out + err
    assert " ".join(err.split()) == (f"error: the model server {server.replace('SECRETpw42', '***')}/invocations "
                                     "cannot be reached (connection refused); is `regime serve` running there?")
    assert "refused the feature row" not in err


def test_a_redirect_loop_is_named_with_its_url(home, monkeypatch):
    from smallcap_regime.data.http import RetryPolicy, fetch_bytes
    from smallcap_regime.errors import FetchError

    with LoopbackServer() as server:
        server.serve("/loop", (302, b"", 0, {"Location": "/loop"}))
        with pytest.raises(FetchError) as caught:
            fetch_bytes(f"http://u:pw9@127.0.0.1:{server.url.rsplit(':', 1)[1]}/loop", RetryPolicy(retries=2))
    assert "pw9" not in str(caught.value)
    shown = f"http://u:***@127.0.0.1:{server.url.rsplit(':', 1)[1]}/loop"
    assert str(caught.value) == f"{shown}: redirect loop: more than 20 redirects, the last to {shown} after 1 attempt"


def test_consoles_follow_the_environment_of_the_call_not_of_the_import(monkeypatch):
    from smallcap_regime.display import console, err_console

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "")
    assert console.width == 80 and err_console.width == 80
    monkeypatch.setenv("COLUMNS", "300")
    assert console.width == 300
    first = console.get()
    assert console.get() is first  # the same console while nothing changes (a progress bar and its prints share it)
    monkeypatch.setenv("NO_COLOR", "1")
    assert console.get() is not first and console.no_color


def test_a_mirror_url_with_a_password_is_never_shown_nor_stored(home, monkeypatch, realdata_dir):
    from smallcap_regime.data.cache import Cache

    with LoopbackServer() as server:
        server.serve_realdata(realdata_dir)
        port = server.url.rsplit(":", 1)[1]
        point_sources_at(monkeypatch, f"http://mirror:SECRETpw42@127.0.0.1:{port}")
        monkeypatch.setenv("REGIME_HTTP_RETRIES", "0")
        results = sources.pull(home, ["fred", "finra"])  # FRED files served, FINRA's missing (404)
    messages = " ".join(r.message for r in results)
    assert "SECRETpw42" not in messages and "mirror:***@127.0.0.1" in messages
    assert results[0].ok and not results[-1].ok
    text = str({key: entry.url for key, entry in Cache(home).manifest().items()})
    assert "SECRETpw42" not in text and "mirror:***@" in text
