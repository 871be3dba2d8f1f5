"""Trend charts: the escalation and signature-error ratios over 1 h / 6 h / 24 h as one PNG, with
the SLO lines and the rollout / key-rotation times marked.

Input is what the findings already hold (``Finding.series``, and ``data["markers"]`` as
``[{"label", "ts"}]``); nothing is queried again. matplotlib is imported only when a chart is
drawn, with the Agg canvas and no pyplot state, so charts may be drawn in worker threads:
``await asyncio.to_thread(trend_chart, findings, config)``.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commands.config import RunbookConfig
from commands.models import Finding

# (label, span, tick step) in seconds.
SPANS: tuple[tuple[str, float, float], ...] = (
    ("1 h", 3600.0, 900.0),
    ("6 h", 6 * 3600.0, 3600.0),
    ("24 h", 24 * 3600.0, 4 * 3600.0),
)
# Series name (as findings carry it) -> row title.
ROWS: tuple[tuple[str, str], ...] = (("escalations", "Escalation ratio"), ("signature errors", "Signature-error ratio"))

Points = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Marker:
    label: str
    ts: float


def chart_inputs(findings: Iterable[Finding]) -> tuple[dict[str, Points], list[Marker]]:
    """The series (longest per name) and the distinct markers found in ``findings``."""
    series: dict[str, Points] = {}
    markers: dict[tuple[str, float], Marker] = {}
    for finding in findings:
        for name, points in finding.series.items():
            if len(points) > len(series.get(name, ())):
                series[name] = points
        for raw in finding.data.get("markers") or ():
            if isinstance(raw, Mapping) and isinstance(raw.get("ts"), int | float):
                marker = Marker(str(raw.get("label", "")), float(raw["ts"]))
                markers[(marker.label, marker.ts)] = marker
    return series, sorted(markers.values(), key=lambda m: m.ts)


def trend_chart(
    findings: Iterable[Finding], config: RunbookConfig, *, title: str = "", now: float | None = None
) -> bytes | None:
    """The PNG for a report's findings, or None when they carry no ratio series."""
    series, markers = chart_inputs(findings)
    if not any(series.get(name) for name, _ in ROWS):
        return None
    slos = {"escalations": config.slo.escalation_ratio, "signature errors": config.slo.signature_error_ratio}
    return render_trends(series, slos, markers, title=title, now=now)


def render_trends(
    series: Mapping[str, Points],
    slos: Mapping[str, float],
    markers: Sequence[Marker] = (),
    *,
    title: str = "",
    now: float | None = None,
) -> bytes:
    """One PNG: a row per ratio (one y scale per row), a column per span, the SLO dashed in red."""
    from matplotlib.figure import Figure

    end = time.time() if now is None else now
    rows = [(name, label) for name, label in ROWS if name in series or name in slos]
    fig = Figure(figsize=(12, 2.5 * len(rows) + 0.5), dpi=90)
    axes = fig.subplots(len(rows), len(SPANS), squeeze=False, sharey="row")
    for r, (name, label) in enumerate(rows):
        points = [(t, v * 100) for t, v in series.get(name, ()) if math.isfinite(v) and t >= end - SPANS[-1][1]]
        slo = slos.get(name)
        top = max([v for _, v in points] + [(slo or 0) * 100, 0.01])
        for c, span in enumerate(SPANS):
            _panel(axes[r][c], points, slo, markers, end, span)
        axes[r][0].set_ylim(0, top * 1.25)
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    # Fixed margins: tight_layout would draw the figure once more just to measure it.
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.08, top=0.86 if title else 0.92, wspace=0.06, hspace=0.4)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _panel(
    ax: Any,
    points: list[tuple[float, float]],
    slo: float | None,
    markers: Sequence[Marker],
    end: float,
    span: tuple[str, float, float],
) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

    label, length, step = span
    start = end - length
    narrower = max((s[1] for s in SPANS if s[1] < length), default=0.0)
    shown = [(t, v) for t, v in points if t >= start]
    ax.plot([t for t, _ in shown], [v for _, v in shown], color="#1f6fb4", linewidth=1.3)
    if slo is not None:
        ax.axhline(slo * 100, color="#d62728", linestyle="--", linewidth=1)
        ax.text(
            0.01,
            slo * 100,
            f" SLO {slo * 100:g}%",
            color="#d62728",
            fontsize=7,
            va="bottom",
            transform=ax.get_yaxis_transform(),
        )
    for m in markers:
        if start <= m.ts <= end:
            ax.axvline(m.ts, color="#7b3fa0", linestyle=":", linewidth=1.2)
        # Labelled once, in the narrowest span that shows it: wider spans crowd them together.
        if start <= m.ts <= end and m.ts < end - narrower:
            ax.text(
                m.ts,
                0.97,
                f" {m.label}",
                color="#7b3fa0",
                fontsize=7,
                va="top",
                rotation=90,
                transform=ax.get_xaxis_transform(),
            )
    if not shown:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    # Plain unix seconds on x with fixed ticks: much cheaper to draw than date axes.
    ax.set_xlim(start, end)
    first = math.ceil(start / step) * step
    ax.xaxis.set_major_locator(FixedLocator([first + k * step for k in range(int((end - first) // step) + 1)]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: time.strftime("%H:%M", time.gmtime(x))))
    ax.yaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25)
    # An explicit y spares matplotlib from measuring the tick labels to place the title.
    ax.set_title(f"last {label}", fontsize=9, y=1.0)
