"""Trend charts: one PNG from the series and markers the findings already carry; matplotlib
is loaded only when a chart is drawn."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from commands.charts import Marker, chart_inputs, render_trends, trend_chart
from commands.config import RunbookConfig
from commands.models import Finding, Status

NOW = 2_000_000_000.0
PNG = b"\x89PNG\r\n\x1a\n"


def series(level: float, jump_at: float | None = None, to: float = 0.0) -> list[tuple[float, float]]:
    """24 h at a 2 min step, jumping from ``level`` to ``to`` at ``jump_at``."""
    return [
        (t, to if jump_at is not None and t >= jump_at else level) for t in (NOW - 86400 + 120 * i for i in range(721))
    ]


def size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.size


def test_chart_is_a_png_with_a_row_per_ratio() -> None:
    png = render_trends(
        {"escalations": series(0.004, NOW - 2400, 0.041), "signature errors": series(0.001)},
        {"escalations": 0.02, "signature errors": 0.01},
        [Marker("policy v9", NOW - 1800), Marker("KeyRotated", NOW - 5 * 3600)],
        title="t1",
        now=NOW,
    )
    assert png.startswith(PNG)
    width, height = size(png)
    one_row = render_trends({"escalations": series(0.004)}, {"escalations": 0.02}, now=NOW)
    assert size(one_row)[0] == width and size(one_row)[1] < height


def test_empty_and_odd_series_still_draw() -> None:
    png = render_trends(
        {"escalations": [], "signature errors": [(NOW - 60, float("nan")), (NOW, float("inf"))]},
        {"escalations": 0.02, "signature errors": 0.01},
        now=NOW,
    )
    assert png.startswith(PNG)


def test_inputs_come_from_the_findings() -> None:
    findings = [
        Finding("health.trend", "Trend", Status.BREACH, "", series={"escalations": series(0.01)[-30:]}),
        Finding("escalations.ratio", "Ratio", Status.BREACH, "", series={"escalations": series(0.03)}),
        Finding(
            "signatures.rotations",
            "Rotations",
            Status.WARN,
            "",
            data={"markers": [{"label": "KeyRotated", "ts": NOW - 600}, {"label": "bad", "ts": "soon"}]},
        ),
        Finding(
            "policy.registry",
            "Registry",
            Status.OK,
            "",
            data={"markers": [{"label": "policy v9", "ts": NOW - 1200}, {"label": "KeyRotated", "ts": NOW - 600}]},
        ),
    ]
    got, markers = chart_inputs(findings)
    assert len(got["escalations"]) == 721  # the longest series of a name wins
    assert markers == [Marker("policy v9", NOW - 1200), Marker("KeyRotated", NOW - 600)]
    png = trend_chart(findings, RunbookConfig(), title="t1", now=NOW)
    assert png is not None and png.startswith(PNG)


def test_no_series_no_chart() -> None:
    findings = [Finding("quota.config", "Quota", Status.OK, "", data={"markers": []})]
    assert trend_chart(findings, RunbookConfig()) is None


def test_matplotlib_is_imported_only_when_drawing() -> None:
    probe = "import sys, commands.charts, commands.diagnose, commands.export; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_now_defaults_to_the_clock() -> None:
    start = time.time()
    png = render_trends({"escalations": [(start - 60, 0.01), (start, 0.01)]}, {"escalations": 0.02})
    assert png.startswith(PNG)
