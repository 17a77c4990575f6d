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

from helpers import finra_file
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
