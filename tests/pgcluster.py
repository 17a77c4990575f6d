"""A throwaway PostgreSQL cluster on a loopback port, for the team tests (stdlib only: `.ci/run` calls it with the
system python3 before the venv exists, and tests/conftest.py imports it).

Usage: python3 tests/pgcluster.py start DIR   (prints the cluster's postgresql:// URL)
       python3 tests/pgcluster.py stop DIR

The cluster lives in DIR/data, listens on 127.0.0.1 only (no Unix socket), and requires a password over TCP
(scram-sha-256, a random one) so the tests exercise URLs that carry a secret. PostgreSQL
refuses to run as root, so as root every server command runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

USER = "postgres"


class ClusterError(RuntimeError):
    """No cluster can be started here; the message says why (tests skip with it)."""


def server_bin() -> Path:
    """The newest PostgreSQL server bin dir: Debian's ``/usr/lib/postgresql/<major>/bin``, else ``pg_ctl`` on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    raise ClusterError("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    try:
        import pwd

        pwd.getpwnam(USER)
    except KeyError:
        raise ClusterError(f"running as root and there is no {USER!r} user to run PostgreSQL as") from None
    return ["runuser", "-u", USER, "--", *command]


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"{Path(command[0]).name} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-1500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(base: Path) -> str:
    """Create and start a cluster under ``base``; returns ``postgresql://postgres:<password>@127.0.0.1:<port>/postgres``.

    Raises
    ------
    ClusterError
        No binaries, no user to run them as, or initdb/pg_ctl failed (message with their output).
    """
    bindir = server_bin()
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    pwfile = base / "password"  # read by initdb only, removed right after
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(base, USER)
        shutil.chown(pwfile, USER)
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(base / "data"), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
              "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"])
    finally:
        pwfile.unlink()
    (base / "port").write_text(str(port))
    resume(base)
    return f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres"


def resume(base: Path) -> None:
    """Start the cluster under ``base`` (made by :func:`start`, since stopped) again on its port."""
    base = base.resolve()
    port = int((base / "port").read_text())
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
    _run([str(server_bin() / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "server.log"), "-o", options,
          "-w", "-t", "60", "start"])


def stop(base: Path) -> None:
    """Stop the cluster under ``base`` (fast shutdown); nothing if it is not running."""
    data = base.resolve() / "data"
    if (data / "postmaster.pid").exists():
        _run([str(server_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit(__doc__.split("\n\n")[1])
    try:
        if sys.argv[1] == "start":
            print(start(Path(sys.argv[2])))
        else:
            stop(Path(sys.argv[2]))
    except ClusterError as exc:
        sys.exit(f"pgcluster: {exc}")
