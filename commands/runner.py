"""Run a step's probes concurrently; each ends as a finding, whatever happens to the others."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from commands.models import Finding, Probe, Report
from integrations.errors import BackendError

log = logging.getLogger(__name__)

ProbeFn = Callable[[], Awaitable[Finding]]
OnFinding = Callable[[Finding], Awaitable[None]]


@dataclass(frozen=True)
class ProbeSpec:
    probe: Probe
    run: ProbeFn


async def _guarded(spec: ProbeSpec, timeout_s: float) -> Finding:
    started = time.perf_counter()
    try:
        finding = await asyncio.wait_for(spec.run(), timeout_s)
    except TimeoutError:
        finding = Finding.error(spec.probe.key, spec.probe.title, f"no answer within {timeout_s:g} s", "timeout")
    except BackendError as exc:
        finding = Finding.error(spec.probe.key, spec.probe.title, f"{exc.system}: {exc.reason}", exc.system)
    except Exception:
        log.exception("probe %s failed", spec.probe.key)
        finding = Finding.error(
            spec.probe.key, spec.probe.title, "internal error (details in the bot's log)", "internal"
        )
    finding.duration_ms = (time.perf_counter() - started) * 1000
    return finding


async def run_probes(
    step: str, tenant: str, specs: list[ProbeSpec], timeout_s: float, on_finding: OnFinding | None = None
) -> Report:
    started = datetime.now(UTC)
    findings: dict[str, Finding] = {}

    async def one(spec: ProbeSpec) -> None:
        finding = await _guarded(spec, timeout_s)
        findings[spec.probe.key] = finding
        if on_finding is not None:
            try:
                await on_finding(finding)
            except Exception:
                # Progress display must never cost a finding.
                log.exception("progress callback failed for %s", spec.probe.key)

    await asyncio.gather(*(one(s) for s in specs))
    ordered = [findings[s.probe.key] for s in specs]
    return Report(step=step, tenant=tenant, findings=ordered, started_at=started, finished_at=datetime.now(UTC))
