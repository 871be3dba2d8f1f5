"""What the §4 scenarios share: one read of each input per diagnosis, backend log lines parsed
exactly, SLI trends, and the shape of a scenario's outcome."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from commands.config import RunbookConfig
from commands.context import Context
from commands.models import Cause, Confidence, Finding, Scenario, Status, Verdict
from commands.promql import escalation_ratio, pct, signature_error_ratio
from commands.timestamps import parse_time
from commands.triage.health import AGES, breach_start
from integrations.errors import BackendError
from integrations.kube import ConfigMap

T = TypeVar("T")

# logfmt: key=value or key="quoted \"value\"".
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_ESCAPE = re.compile(r"\\(.)")
RANGE_STEP_S = 120


def clock(ts: float | datetime | None) -> str:
    """``16:05 UTC`` within the last day, ``2026-11-12 16:05 UTC`` before that."""
    if ts is None:
        return "unknown time"
    when = (ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)).astimezone(UTC)
    recent = datetime.now(UTC) - when < timedelta(hours=23)
    return when.strftime("%H:%M UTC" if recent else "%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One backend log line, parsed; ``source`` is the last field's ``src=`` (the runbook's $NF)."""

    ts: datetime
    tenant: str
    msg: str
    fields: dict[str, str]
    source: str

    @classmethod
    def parse(cls, line: str) -> LogLine | None:
        fields = {k: _ESCAPE.sub(r"\1", v[1:-1]) if v.startswith('"') else v for k, v in _PAIR.findall(line)}
        ts, tenant = parse_time(fields.get("ts")), fields.get("tenant_id")
        if ts is None or not tenant:
            return None
        last = line.rsplit(None, 1)[-1] if line.strip() else ""
        source = last.removeprefix("src=") if last.startswith("src=") else ""
        return cls(ts, tenant, fields.get("msg", ""), fields, source)


def _needles(tenant: str) -> tuple[str, ...]:
    """Cheap substrings a tenant's line must hold; the parsed tenant_id is then compared exactly
    (`grep "tenant_id=X"` also matches X1)."""
    return (f"tenant_id={tenant}", f'tenant_id="{tenant}"')


@dataclass(frozen=True)
class Trend:
    """An SLI now, 1 h / 6 h / 24 h ago, over the last 24 h, and when its running breach began."""

    name: str
    slo: float
    now: float | None
    ago: dict[str, float | None]
    series: list[tuple[float, float]]
    breach_start: float | None

    @property
    def breaching(self) -> bool:
        return self.now is not None and self.now > self.slo


@dataclass
class Outcome:
    """A scenario's conclusion: ``fired`` when it explains (part of) the breach; ``known``
    False when its evidence could not be read; ``cites`` the findings its verdict rests on."""

    verdict: Verdict
    fired: bool
    known: bool = True
    cites: tuple[str, ...] = ()


def fired(
    scenario: Scenario,
    headline: str,
    evidence: list[str],
    next_steps: list[str],
    *,
    cause: Cause | None,
    confidence: Confidence,
    rule: str,
    cites: tuple[str, ...] = (),
) -> Outcome:
    verdict = Verdict(scenario, headline, evidence, next_steps, cause=cause, confidence=confidence, rule=rule)
    return Outcome(verdict, True, cites=cites)


def quiet(scenario: Scenario, headline: str, evidence: list[str]) -> Outcome:
    return Outcome(Verdict(scenario, headline, evidence), False)


def unknown(scenario: Scenario, reason: str) -> Outcome:
    return Outcome(Verdict(scenario, "cannot tell", [reason]), False, known=False)


def breaching(slis: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The SLIs over their SLO (``Inputs.slis``' data), each with the start of its breach: every
    scenario's verdict checks these before it names a cause."""
    return {
        name: s.get("breach_start") for name, s in slis.items() if s.get("ratio") is not None and s["ratio"] > s["slo"]
    }


def earliest(starts: dict[str, float | None]) -> float | None:
    known = [t for t in starts.values() if t is not None]
    return min(known) if known else None


@dataclass
class Inputs:
    """Each outside read happens once per diagnosis, whichever probes (and scenarios) need it.

    Reads are shared tasks; a probe that times out leaves them running for the others.
    """

    ctx: Context
    tenant: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def once(self, key: str, factory: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            # Retrieved here so that a read whose probes all timed out is not reported as lost.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._tasks[key] = task
        return asyncio.shield(task)

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()

    @property
    def config(self) -> RunbookConfig:
        return self.ctx.config

    def name(self, template: str) -> str:
        return self.ctx.config.name(template, self.tenant)

    # -- reads ----------------------------------------------------------------------------

    def trend(self, which: str) -> Awaitable[Trend]:
        return self.once(f"trend:{which}", lambda: self._trend(which))

    async def _trend(self, which: str) -> Trend:
        cfg = self.ctx.config
        if which == "escalations":
            query, slo = escalation_ratio(cfg, self.tenant), cfg.slo.escalation_ratio
        else:
            query, slo = signature_error_ratio(cfg, self.tenant), cfg.slo.signature_error_ratio
        prom = self.ctx.prometheus
        points, ranges = await asyncio.gather(
            asyncio.gather(*(prom.scalar(query, self.now - age) for _, age in AGES)),
            prom.query_range(query, self.now - timedelta(hours=24), self.now, RANGE_STEP_S),
        )
        series = ranges[0].points if ranges else []
        ago = dict(zip((label for label, _ in AGES), points, strict=True))
        return Trend(which, slo, ago.pop("now"), ago, series, breach_start(series, slo))

    async def slis(self) -> dict[str, dict[str, Any]]:
        """Both SLIs now, their SLOs and breach starts (an SLI that could not be read is left out)."""
        found = await asyncio.gather(self.trend("escalations"), self.trend("signatures"), return_exceptions=True)
        for failed in found:
            if isinstance(failed, BaseException) and not isinstance(failed, BackendError):
                raise failed
        return {
            t.name: {"ratio": t.now, "slo": t.slo, "breach_start": t.breach_start}
            for t in found
            if isinstance(t, Trend)
        }

    def pod_lines(self) -> Awaitable[list[list[str]]]:
        """Each backend pod's raw log lines of the log window (`kubectl logs --since=1h`)."""
        return self.once("pod_lines", self._pod_lines)

    async def _pod_lines(self) -> list[list[str]]:
        res, diagnosis = self.ctx.config.resources, self.ctx.config.diagnosis
        window, cap = diagnosis.log_window_s, diagnosis.log_max_bytes_per_pod
        pods = await self.ctx.kube.backend_pods(res.backend_selector)
        return list(
            await asyncio.gather(
                *(self.ctx.kube.pod_log(p, res.backend_container, since_seconds=window, max_bytes=cap) for p in pods)
            )
        )

    def tenant_lines(self) -> Awaitable[list[LogLine]]:
        """The tenant's lines from every pod, in time order."""
        return self.once("tenant_lines", lambda: self._tenant_lines())

    async def _tenant_lines(self) -> list[LogLine]:
        needles = _needles(self.tenant)
        found = [
            parsed
            for lines in await self.pod_lines()
            for raw in lines
            if any(n in raw for n in needles) and (parsed := LogLine.parse(raw)) and parsed.tenant == self.tenant
        ]
        found.sort(key=lambda line: line.ts)
        return found

    async def latest_line(self, tenant: str) -> LogLine | None:
        """Another tenant's newest line: each pod's log is in time order, so read each from its end."""
        needles, newest = _needles(tenant), None
        for lines in await self.pod_lines():
            for raw in reversed(lines):
                if any(n in raw for n in needles) and (parsed := LogLine.parse(raw)) and parsed.tenant == tenant:
                    if newest is None or parsed.ts > newest.ts:
                        newest = parsed
                    break
        return newest

    def config_map(self, template: str) -> Awaitable[ConfigMap]:
        name = self.name(template)
        return self.once(f"cm:{name}", lambda: self.ctx.kube.config_map(name))

    def flags(self) -> Awaitable[dict[str, Any]]:
        return self.once("flags", self.ctx.admin.flags)


def ratio_finding(key: str, title: str, trend: Trend) -> Finding:
    """An SLI's trend as a finding, with its series for the chart."""
    facts = {"now": pct(trend.now), **{label: pct(v) for label, v in trend.ago.items()}, "SLO": pct(trend.slo)}
    if trend.now is None:
        return Finding(key, title, Status.UNKNOWN, f"no {trend.name} samples", facts=facts)
    status = Status.BREACH if trend.breaching else Status.OK
    summary = f"{pct(trend.now)} now ({'above' if trend.breaching else 'within'} the SLO of {pct(trend.slo)})"
    summary += "; " + ", ".join(f"{pct(v)} {label}" for label, v in trend.ago.items())
    if trend.breach_start is not None:
        summary += f"; breach since {clock(trend.breach_start)}"
        facts["breach since"] = clock(trend.breach_start)
    series_name = "escalations" if trend.name == "escalations" else "signature errors"
    return Finding(
        key,
        title,
        status,
        summary,
        facts=facts,
        series={series_name: trend.series},
        data={"ratio": trend.now, "slo": trend.slo, "breach_start": trend.breach_start, **trend.ago},
    )
