"""The real PostgreSQL server (Debian package) on loopback, for tests and benchmarks.

``async with Postgres() as pg: pg.url`` gives a throw-away cluster in a temporary
directory: ``initdb`` once, then the ``postgres`` binary as a child process (run as the
``postgres`` OS user when we are root, because the server refuses to run as root),
durability switched off for speed, trust authentication on 127.0.0.1 only. ``stop()``
removes everything; ``restart()`` keeps the data and the port, so that clients can be
tested for reconnection.

``await shared_server()`` hands every caller in the process the same running server
(stopped at exit), so fixtures in different test folders do not start one each.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

_SEARCH_DIRS = ("/usr/lib/postgresql",)
_SERVER_OPTIONS = {
    # A test cluster: losing it in a crash costs nothing, waiting for disks costs seconds.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


class PostgresError(RuntimeError):
    """The server could not be set up, started or used."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL ``bin`` directory holding ``initdb``."""
    candidates = []
    for base in _SEARCH_DIRS:
        for initdb in Path(base).glob("*/bin/initdb"):
            with contextlib.suppress(ValueError):
                candidates.append((int(initdb.parent.parent.name), initdb.parent))
    if not candidates:
        raise PostgresError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """One throw-away PostgreSQL cluster on 127.0.0.1."""

    def __init__(self, *, database: str = "flk", bindir: Path | None = None, start_timeout: float = 15.0) -> None:
        self.database = database
        self.bindir = bindir or find_bindir()
        self.start_timeout = start_timeout
        self.port = 0
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    # -- public API -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def start(self) -> Postgres:
        if self._root is None:
            await asyncio.to_thread(self._initdb)
            self.port = _free_port()
        await self._launch()
        await self.create_database(self.database)
        return self

    async def stop(self) -> None:
        """Stop the server and delete its files."""
        await self.halt()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        atexit.unregister(self._atexit)

    async def restart(self, *, down_for: float = 0.0) -> None:
        """Stop the server (fast shutdown: open sessions are cut), wait, start it again."""
        await self.halt()
        if down_for:
            await asyncio.sleep(down_for)
        await self._launch()

    async def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its URL."""
        async with await self._admin() as conn:
            exists = await (await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))).fetchone()
            if not exists:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    async def drop_database(self, name: str) -> None:
        async with await self._admin() as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    async def __aenter__(self) -> Postgres:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- internals ------------------------------------------------------------------

    def _run_kwargs(self) -> dict[str, object]:
        return {"user": self._user} if self._user else {}

    def _initdb(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="flk-pg-"))
        atexit.register(self._atexit)
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self._root / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            cwd=self._root,
            check=False,
            **self._run_kwargs(),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip()[-500:]
            raise PostgresError(f"initdb failed ({result.returncode}): {tail}")

    async def _launch(self) -> None:
        self._proc = await asyncio.to_thread(self._spawn)
        await self._wait_ready()

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self._root is not None
        args = [
            str(self.bindir / "postgres"),
            "-D",
            str(self._root / "data"),
            "-p",
            str(self.port),
            "-k",
            str(self._root),
        ]
        for key, value in _SERVER_OPTIONS.items():
            args += ["-c", f"{key}={value}"]
        with (self._root / "server.log").open("ab") as log:
            return subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._root,
                start_new_session=True,
                **self._run_kwargs(),  # type: ignore[call-overload]
            )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise PostgresError(f"postgres exited at start: {self._log_tail()}")
            try:
                conn = await psycopg.AsyncConnection.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
                )
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres not ready after {self.start_timeout}s") from None
                await asyncio.sleep(0.02)
            else:
                await conn.close()
                return

    async def _admin(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if not self.running:
            raise PostgresError("postgres is not running")
        return await psycopg.AsyncConnection.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    async def halt(self) -> None:
        """Stop the server but keep its files, so that ``restart()`` can bring it back."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # "fast" shutdown: abort sessions, checkpoint, exit
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    def _log_tail(self) -> str:
        if self._root is None:
            return ""
        with contextlib.suppress(OSError):
            return (self._root / "server.log").read_text(errors="replace").strip()[-500:]
        return ""

    def _atexit(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGQUIT)  # immediate shutdown: we are exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)


_shared: Postgres | None = None
_shared_lock = asyncio.Lock()


async def shared_server() -> Postgres:
    """The process-wide server, started on first use and stopped when the process exits."""
    global _shared
    async with _shared_lock:
        if _shared is None or not _shared.running:
            server = Postgres()
            await server.start()
            _shared = server
        return _shared
