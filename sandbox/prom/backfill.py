"""History for Prometheus: every sample of the metrics model from the start of the world's
history until now, written as OpenMetrics and turned into TSDB blocks by promtool BEFORE the
server starts (blocks copied into a running server appear only ~30 s later, and ``rate()``
over a few seconds of scrapes is wrong by design).

The history and the live exporter both read ``metrics_model.samples``, whose counters are
exact integrals of the world's step functions, so the two meet without a step.

Sample spacing: every ``STEP`` (what a common 30 s scrape stores: 10 points in every 5 m
window, and every series is linear between the world's change points, so ``rate(x[5m])``
is exact there and bends over 5 minutes after a change, as a real server's would), and for
the last 5 minutes every ``tail_step`` (the live scrape interval). ``rate()`` extrapolates a
window's first sample to the window's start only when the gap is below 1.1 x the window's
average spacing: a window holding sparse history and 1 s scrapes would come out up to
STEP / 5 m low. With the dense tail, every window that reaches past the start is evenly
spaced. (15 s costs twice the time on the start's critical path, for half the bend.)

History is cut into block-aligned windows: while Python writes one window's text, promtool
turns another into a block on the other core.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from sandbox.backend.metrics_model import samples as model_samples
from sandbox.prom.process import LaunchError, require_executable
from sandbox.world.live import COUNTERS, HISTORY, LiveWorld

PROMTOOL = "/usr/bin/promtool"
STEP = 30.0
# The longest rate() window the runbook uses: the dense tail covers it.
_TAIL = 300.0
# One promtool run per aligned window, each making one block (promtool aligns blocks to
# multiples of its --max-block-duration).
BLOCK_SECONDS = 6 * 3600

Sample = tuple[str, Mapping[str, str], float]
SampleSource = Callable[[LiveWorld, float], Iterable[Sample]]


def _grid(lo: float, hi: float, step: float) -> range:
    return range(math.ceil(lo / step), math.floor(hi / step) + 1)


def history_times(start: float, end: float, tail_step: float) -> list[float]:
    """Sample times in ``[start, end]``: every ``STEP``, and every ``tail_step`` in the last 5 minutes."""
    times = {k * STEP for k in _grid(start, end - _TAIL, STEP)}
    times.update(k * tail_step for k in _grid(max(start, end - _TAIL), end, tail_step))
    return sorted(times)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    # 12 significant digits: short text for promtool to parse, and far below what rate() can see.
    if value - value == 0:
        return f"{value:.12g}"
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _metric_type(name: str) -> str:
    # The runbook's counters carry no `_total` suffix; promtool accepts them typed as counters.
    return "counter" if name in COUNTERS else "unknown"


def write_openmetrics(
    live: LiveWorld,
    out: Path,
    times: Iterable[float],
    *,
    labels: Mapping[str, str] | None = None,
    samples: SampleSource = model_samples,
) -> int:
    """Write every sample at each of ``times`` (ascending) as OpenMetrics; return the count.

    ``labels`` are added to every series: they must be the labels the scrape adds (job,
    instance), or the history and the live series would be two different series.
    """
    extra = dict(labels or {})
    # (name, labels) -> (name, "name{labels} " text, ["value timestamp" lines])
    series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, str, list[str]]] = {}
    count = 0
    for t in times:
        stamp = f" {t:.3f}\n"
        for name, sample_labels, value in samples(live, t):
            key = (name, tuple(sample_labels.items()))
            entry = series.get(key)
            if entry is None:
                merged = {**sample_labels, **extra}
                pairs = ",".join(f'{k}="{_escape(str(v))}"' for k, v in merged.items())
                entry = series[key] = (name, f"{name}{{{pairs}}} ", [])
            entry[2].append(_number(value) + stamp)
            count += 1
    families: dict[str, list[tuple[str, list[str]]]] = {}
    for name, prefix, lines in series.values():
        families.setdefault(name, []).append((prefix, lines))
    with out.open("w", encoding="utf-8") as handle:
        # OpenMetrics wants each family's samples together, after its TYPE line.
        for name, members in families.items():
            handle.write(f"# TYPE {name} {_metric_type(name)}\n")
            for prefix, lines in members:
                handle.writelines(prefix + line for line in lines)
        handle.write("# EOF\n")
    return count


async def create_blocks(openmetrics: Path, tsdb_dir: Path, *, promtool: str = PROMTOOL) -> None:
    """``promtool tsdb create-blocks-from openmetrics`` into ``tsdb_dir``; one-line error on failure."""
    require_executable("promtool", promtool)
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        f"--max-block-duration={BLOCK_SECONDS}s",
        str(openmetrics),
        str(tsdb_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await proc.communicate()
    except BaseException:
        # Cancelled: promtool must not go on writing into a directory about to be removed.
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode:
        lines = stderr.decode(errors="replace").strip().splitlines() or [f"exit code {proc.returncode}"]
        raise LaunchError(f"promtool: backfill failed: {lines[-1][:300]}")


def _by_block(times: Sequence[float]) -> list[list[float]]:
    """``times`` grouped by the aligned block they fall in, the biggest group first: the
    promtool run that nothing overlaps, the last one, is then the shortest."""
    groups: dict[int, list[float]] = {}
    for t in times:
        groups.setdefault(math.floor(t / BLOCK_SECONDS), []).append(t)
    return sorted(groups.values(), key=len, reverse=True)


async def backfill(
    live: LiveWorld,
    tsdb_dir: Path,
    *,
    labels: Mapping[str, str] | None = None,
    end: float | None = None,
    tail_step: float = 1.0,
    promtool: str = PROMTOOL,
    samples: SampleSource = model_samples,
) -> int:
    """Fill ``tsdb_dir`` (a Prometheus data dir not yet in use) with the world's history.

    Returns the number of samples written. ``end`` defaults to now: the history must end
    before the server's first scrape. ``tail_step`` is the server's scrape interval.
    """
    require_executable("promtool", promtool)
    times = history_times(live.t0 - HISTORY.total_seconds(), time.time() if end is None else end, tail_step)
    count = 0
    with tempfile.TemporaryDirectory(prefix="flk-backfill-") as scratch:
        blocks: list[asyncio.Task[None]] = []
        try:
            for index, group in enumerate(_by_block(times)):
                out = Path(scratch) / f"history-{index}.om"
                count += await asyncio.to_thread(write_openmetrics, live, out, group, labels=labels, samples=samples)
                blocks.append(asyncio.create_task(create_blocks(out, tsdb_dir, promtool=promtool)))
            await asyncio.gather(*blocks)
        finally:
            for block in blocks:
                block.cancel()
            await asyncio.gather(*blocks, return_exceptions=True)
    return count
