"""History for Prometheus: every sample of the metrics model from the start of the world's
history until now, written as OpenMetrics and turned into TSDB blocks by promtool BEFORE the
server starts (blocks copied into a running server appear only ~30 s later, and ``rate()``
over a few seconds of scrapes is wrong by design).

The history and the live exporter both read ``metrics_model.samples``, whose counters are
exact integrals of the world's rate functions, so the two meet without a step.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sandbox.prom.process import LaunchError, require_executable
from sandbox.world.live import COUNTERS, HISTORY, LiveWorld

PROMTOOL = "/usr/bin/promtool"
# 20 points in every 5 m window keep rate() exact; 25 h of history is 6,000 timestamps.
DEFAULT_STEP = 15.0
# Day-long blocks instead of promtool's 2 h: 0.3 s instead of 1.3 s for 25 h of history.
_BLOCK_DURATION = "24h"

Sample = tuple[str, Mapping[str, str], float]
SampleSource = Callable[[LiveWorld, float], Iterable[Sample]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _metric_type(name: str) -> str:
    # The runbook's counters carry no `_total` suffix; promtool accepts them typed as counters.
    return "counter" if name in COUNTERS else "unknown"


def _default_source() -> SampleSource:
    from sandbox.backend.metrics_model import samples

    return samples


def write_openmetrics(
    live: LiveWorld,
    out: Path,
    *,
    end: float,
    step: float = DEFAULT_STEP,
    labels: Mapping[str, str] | None = None,
    samples: SampleSource | None = None,
) -> int:
    """Write every sample on a ``step`` grid from the start of history to ``end``; return the count.

    ``labels`` are added to every series: they must be the labels the scrape adds (job,
    instance), or the history and the live series would be two different series.
    """
    source = samples or _default_source()
    extra = dict(labels or {})
    first = math.ceil((live.t0 - HISTORY.total_seconds()) / step)
    last = math.floor(end / step)
    families: dict[str, list[str]] = {}
    series_text: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    count = 0
    for index in range(first, last + 1):
        t = index * step
        stamp = f" {t:.3f}\n"
        for name, sample_labels, value in source(live, t):
            key = (name, tuple(sample_labels.items()))
            text = series_text.get(key)
            if text is None:
                merged = {**sample_labels, **extra}
                pairs = ",".join(f'{k}="{_escape(str(v))}"' for k, v in merged.items())
                text = series_text[key] = f"{name}{{{pairs}}} "
            families.setdefault(name, []).append(text + _number(value) + stamp)
            count += 1
    with out.open("w", encoding="utf-8") as handle:
        # OpenMetrics wants each family's samples together, after its TYPE line.
        for name, lines in families.items():
            handle.write(f"# TYPE {name} {_metric_type(name)}\n")
            handle.writelines(lines)
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
        f"--max-block-duration={_BLOCK_DURATION}",
        str(openmetrics),
        str(tsdb_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    if proc.returncode:
        lines = stderr.decode(errors="replace").strip().splitlines() or [f"exit code {proc.returncode}"]
        raise LaunchError(f"promtool: backfill failed: {lines[-1][:300]}")


async def backfill(
    live: LiveWorld,
    tsdb_dir: Path,
    *,
    labels: Mapping[str, str] | None = None,
    end: float | None = None,
    step: float = DEFAULT_STEP,
    promtool: str = PROMTOOL,
    samples: SampleSource | None = None,
) -> int:
    """Fill ``tsdb_dir`` (a Prometheus data dir not yet in use) with the world's history.

    Returns the number of samples written. ``end`` defaults to now: the history must end
    before the server's first scrape.
    """
    with tempfile.TemporaryDirectory(prefix="flk-backfill-") as scratch:
        out = Path(scratch) / "history.om"
        count = await asyncio.to_thread(
            write_openmetrics,
            live,
            out,
            end=time.time() if end is None else end,
            step=step,
            labels=labels,
            samples=samples,
        )
        await create_blocks(out, tsdb_dir, promtool=promtool)
    return count
