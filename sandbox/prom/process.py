"""Child processes for the sandbox's real servers: start, watch, explain a failure in one
line, and stop without leaving anything behind."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_LOGFMT_ERR = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')


class LaunchError(Exception):
    """A server that could not be started; the message is one line saying why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(name: str, host: str, port: int) -> None:
    """Fail early and clearly when a requested port is taken.

    SO_REUSEADDR matches what Go servers set, so a socket in TIME_WAIT does not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise LaunchError(f"{name}: port {host}:{port} is already in use") from None


def require_executable(name: str, path: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise LaunchError(f"{name}: executable {path} not found")


def _die_with_parent() -> None:
    # A child of a crashed test run must not outlive it and hold its ports.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One server process whose output goes to a log file that explains its failures."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        require_executable(self.name, self.argv[0])
        with self.log_path.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def failure(self) -> LaunchError:
        """Why the process stopped, from the last error its log names."""
        reason = f"exited with code {self.returncode}"
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            errors = [m.group(1) for line in lines if (m := _LOGFMT_ERR.search(line))]
            if errors:
                reason += f": {errors[-1]}"
            elif lines:
                reason += f": {lines[-1].strip()[:300]}"
        return LaunchError(f"{self.name}: {reason}")

    async def stop(self, grace_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            if proc is not None:
                await proc.wait()
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
