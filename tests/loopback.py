"""A loopback HTTP server for tests: serves real files in the live sources' URL layout, with scripted faults.

Routes map a request path (with query) to a list of responses served in turn; the last one repeats. A response
is ``(status, body)``, ``(status, body, delay_seconds)``, ``(status, body, delay_seconds, headers)``, or a callable
that receives the request handler and writes (or withholds) the whole response itself, for faults below HTTP
(connection resets, slow drips, short bodies). Unknown paths get 404, like the real sites.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[tuple]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                responses = server.routes.get(self.path)
                if not responses:
                    status, body, delay, headers = 404, b"<html><body>Not Found</body></html>", 0.0, {}
                else:
                    response = responses[min(server.hits[self.path] - 1, len(responses) - 1)]
                    if callable(response):
                        try:
                            response(self)
                        except (BrokenPipeError, ConnectionResetError):
                            pass  # the client gave up (deadline and size tests)
                        return
                    status, body, *rest = response
                    delay = rest[0] if rest else 0.0
                    headers = rest[1] if len(rest) > 1 else {}
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in {"Content-Length": str(len(body)), **headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, path: str, *responses: tuple) -> None:
        self.routes[path] = list(responses)

    def serve_realdata(self, realdata: Path) -> None:
        """Lay out tests/data/realdata like the live sites (README of that folder)."""
        for zip_path in sorted((realdata / "french").glob("*.zip")):
            self.serve(f"/ftp/{zip_path.name}", (200, zip_path.read_bytes()))
        for csv_path in sorted((realdata / "fred").glob("*.csv")):
            self.serve(f"/graph/fredgraph.csv?id={csv_path.stem}", (200, csv_path.read_bytes()))


def point_sources_at(monkeypatch, url: str) -> None:
    """Aim every live source at the loopback server and make retries quick."""
    for source in ("FRENCH", "FRED", "FINRA"):
        monkeypatch.setenv(f"REGIME_{source}_URL", url)
    monkeypatch.setenv("REGIME_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("REGIME_HTTP_TIMEOUT", "5")


def pull_realdata(home: Path, realdata: Path, source_names=("french", "fred")) -> list:
    """The real files to 2018-12 pulled into ``home``'s cache through the real download code, from a loopback server
    that serves them in the live sites' layout; returns the pull results."""
    import pytest

    from smallcap_regime.data.sources import pull

    with pytest.MonkeyPatch.context() as mp, LoopbackServer() as server:
        server.serve_realdata(realdata)
        point_sources_at(mp, server.url)
        return pull(home, list(source_names))


def pull_table(output: str) -> dict[str, tuple[str, str]]:
    """The rows of the `regime data pull` table: dataset -> (status, detail)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if line.startswith("│") and len(cells) == 3:
            rows[cells[0]] = (cells[1], cells[2])
    return rows
