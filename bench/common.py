"""What the issue-3 benchmarks share: the machine they ran on, percentiles, result files with
a ``summary`` the table in ``bench/results/README.md`` is built from, and ``flk serve`` run as
a child process with a sandbox's environment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from sandbox.prom.process import free_port

RESULTS_DIR = Path(__file__).parent / "results"
READY_LINE = "flk ready"


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, Python and the load average: others may share this machine."""
    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal:"))
        memory_gib = round(int(line.split()[1]) / 2**20, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def code_version() -> dict[str, Any]:
    """The commit the bot ran from, and whether its code had uncommitted changes (others work in this checkout)."""
    root = Path(__file__).parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "bot", "commands", "integrations", "sandbox")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": changed.splitlines()}


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated between the two nearest ranks."""
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    if len(data) == 1 or p <= 0:
        return data[0]
    if p >= 100:
        return data[-1]
    return statistics.quantiles(data, n=1000, method="inclusive")[round(p * 10) - 1]


def latency_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max / mean of durations in seconds, as milliseconds."""
    data = list(seconds)
    return {
        "count": len(data),
        "p50_ms": round(percentile(data, 50) * 1000, 2),
        "p90_ms": round(percentile(data, 90) * 1000, 2),
        "p99_ms": round(percentile(data, 99) * 1000, 2),
        "max_ms": round(max(data) * 1000, 2),
        "mean_ms": round(statistics.fmean(data) * 1000, 2),
    }


def figure(name: str, value: float | str, goal: str, met: bool) -> dict[str, Any]:
    """One line of the results table."""
    return {"figure": name, "value": value, "goal": goal, "met": met}


def write_results(name: str, report: Mapping[str, Any]) -> Path:
    """``bench/results/<name>.json``; ``report`` should carry ``summary`` (a list of figures)."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def print_summary(summary: Iterable[Mapping[str, Any]]) -> None:
    for row in summary:
        mark = "met" if row["met"] else "MISSED"
        print(f"  {row['figure']}: {row['value']} (goal {row['goal']}: {mark})")


# -- `flk serve` as a child process ------------------------------------------------------------


def flk_command(*args: str) -> list[str]:
    """`flk ...` as installed beside this interpreter (the console script), else `python -m bot.cli`."""
    script = Path(sys.executable).with_name("flk")
    if script.exists():
        return [str(script), *args]
    found = shutil.which("flk")
    return [found, *args] if found else [sys.executable, "-m", "bot.cli", *args]


@dataclass
class ServedBot:
    """A bot process listening on ``url``; ``ready_line_s`` and ``healthz_s`` count from the spawn."""

    process: asyncio.subprocess.Process
    url: str
    ready_line_s: float
    healthz_s: float
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


async def _wait_healthz(url: str, process: asyncio.subprocess.Process, deadline: float) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the bot exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.005)
    raise RuntimeError(f"{url}/healthz did not answer in time")


async def _read_ready_line(stdout: asyncio.StreamReader, marker: str) -> None:
    while line := await stdout.readline():
        if line.decode(errors="replace").startswith(marker):
            return
    raise RuntimeError("the bot's stdout closed before its ready line")


@contextlib.asynccontextmanager
async def serve_bot(
    env: Mapping[str, str], command: list[str] | None = None, *, ready_marker: str = READY_LINE, timeout_s: float = 30
) -> AsyncIterator[ServedBot]:
    """Run ``flk serve`` (or ``command``, which must print ``ready_marker`` and serve /healthz on
    ``FLK_LISTEN``) with ``env`` on a free loopback port; SIGTERM it on the way out. Unless ``env``
    names a database, the bot gets a fresh SQLite file of its own (the default is in the cwd)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log, tempfile.TemporaryDirectory(prefix="flk-bench-") as workdir:
        full_env = {
            **os.environ,
            "FLK_DATABASE_URL": f"sqlite:///{workdir}/flk.sqlite",
            # bench/alert_transcript.py counts the warnings in the text form (" WARNING logger ...").
            "FLK_LOG_FORMAT": "text",
            **env,
            "FLK_LISTEN": f"127.0.0.1:{port}",
            "PYTHONUNBUFFERED": "1",
        }
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *(command or flk_command("serve")), env=full_env, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        assert process.stdout is not None
        times: dict[str, float] = {}

        async def mark(name: str, awaitable: Any) -> None:
            await awaitable
            times[name] = time.monotonic() - began

        try:
            await asyncio.wait_for(
                asyncio.gather(
                    mark("line", _read_ready_line(process.stdout, ready_marker)),
                    mark("healthz", _wait_healthz(url, process, began + timeout_s)),
                ),
                timeout_s,
            )
        except Exception as exc:
            await stop_process(process)
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{exc or type(exc).__name__}; bot log tail: {' | '.join(tail)}") from None
        # Keep draining stdout so that the child never blocks on a full pipe.
        drain = asyncio.create_task(process.stdout.read())
        try:
            yield ServedBot(process, url, times["line"], times["healthz"], log)
        finally:
            drain.cancel()
            await stop_process(process)


async def stop_process(process: asyncio.subprocess.Process, grace_s: float = 15) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            process.kill()
            await process.wait()


def rss_mb(pid: int) -> float:
    """VmRSS of a live process, in MB (2**20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
