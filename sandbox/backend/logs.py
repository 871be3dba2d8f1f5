"""The backend's log lines, one logfmt line per event, the source IP always last::

    ts=2026-11-26T16:05:03.123Z level=warn msg="signature verification failed" tenant_id=northwind
    policy_version=v41 pcs_id=pcs-… key_id=key-2026-10 reason=unknown_key src=10.20.1.11

Every tenant logs ``msg="pcs verified"`` at ``backend.baseline_log_per_min``, plus each of its
``LogPattern``s. Time is cut into one-minute chunks whose draws are seeded by the world's
seed, the stream and the chunk, so any span of time generates the same lines whenever it is
asked for: the last 24 h are made on first use, and later calls extend them up to "now".

A pattern of a tenant in trouble follows its scenario's traffic field live: once a
mitigation lowers ``signature_error_ratio`` to 2 % of the spec's value, only 2 % of the
pattern's lines are still logged.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter

from sandbox.backend.draws import digest, rfc3339_ms, seeded, stable_id, uniforms
from sandbox.backend.pods import backend_pod_names
from sandbox.backend.policy import PolicyTimeline
from sandbox.world.live import Field, LiveWorld
from sandbox.world.spec import LogPattern, Scenario

RETENTION_S = 24 * 3600.0
CHUNK_S = 60.0
# Lines older than the retention are dropped in batches, not one by one.
_TRIM_BATCH = 4096
_FOLLOWS: dict[Scenario, Field] = {
    "signatures": "signature_error_ratio",
    "escalations": "escalation_ratio",
    "policy": "escalation_ratio",
    "quota": "quota_exceeded_rps",
}

TenantConfig = Callable[[str], Mapping[str, str] | None]
# (time, pod index, line)
_Event = tuple[float, int, str]


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\\') and value.isprintable():
        return value
    return _quoted(value)


def _agent_address(seed: int, tenant: str, index: int) -> str:
    """A tenant's own healthy agents: two stable addresses in 10.100.0.0/16."""
    digits = stable_id(seed, tenant, "agent", index, length=8)
    return f"10.100.{int(digits[:4], 16) % 250 + 1}.{int(digits[4:], 16) % 240 + 10}"


@dataclass(frozen=True)
class _Stream:
    tenant: str
    key: int  # 0 = the baseline, n = the tenant's n-th pattern
    level: str
    message: str  # quoted, as logged
    per_min: float
    since: float
    until: float  # math.inf: goes on live
    fixed: bool
    jitter: float  # fixed timing only: each line moves by up to this share of the interval
    sources: tuple[str, ...]
    fields: str  # pre-rendered " k=v" pairs
    skew_s: float
    follows: Field | None


class BackendLogs:
    """Log lines per backend pod; ``for_pod`` is what ``kubectl logs <pod>`` shows."""

    def __init__(self, live: LiveWorld, tenant_config: TenantConfig | None = None) -> None:
        self.live = live
        self._pods = backend_pod_names(live.world)
        self._policy = PolicyTimeline(live)
        self._tenant_config = tenant_config
        self._streams = list(self._make_streams())
        self._lines: list[list[tuple[float, str]]] = [[] for _ in self._pods]
        self._until: float | None = None
        self._lock = threading.Lock()

    def pod_names(self) -> list[str]:
        return list(self._pods)

    def use_config(self, tenant_config: TenantConfig) -> None:
        """Read each tenant's live ``policy_version`` through ``tenant_config`` from now on."""
        self._tenant_config = tenant_config

    def __call__(self, pod: str) -> list[tuple[float, str]]:
        """What the Kubernetes fake asks for: a pod's lines up to now (none for an unknown pod)."""
        return self.for_pod(pod) if pod in self._pods else []

    def for_pod(self, pod: str, *, since: float | None = None, now: float | None = None) -> list[tuple[float, str]]:
        """Time-ordered ``(unix time, line)`` of ``pod`` from ``since`` (default: 24 h ago) to now."""
        try:
            index = self._pods.index(pod)
        except ValueError:
            raise KeyError(f"no backend pod named {pod!r}") from None
        now = time.time() if now is None else now
        with self._lock:
            self._extend(now)
            lines = self._lines[index]
            first = now - RETENTION_S if since is None else max(since, now - RETENTION_S)
            lo = bisect.bisect_left(lines, first, key=itemgetter(0))
            hi = bisect.bisect_right(lines, now, key=itemgetter(0))
            return lines[lo:hi]

    def _make_streams(self) -> Iterator[_Stream]:
        world = self.live.world
        for tid, tenant in world.tenants.items():
            agents = (_agent_address(world.seed, tid, 0), _agent_address(world.seed, tid, 1))
            yield _Stream(
                tid,
                0,
                "info",
                _quoted("pcs verified"),
                world.backend.baseline_log_per_min,
                -math.inf,
                math.inf,
                False,
                0.0,
                agents,
                "",
                0.0,
                None,
            )
            for key, pattern in enumerate(tenant.logs, start=1):
                yield self._pattern_stream(tid, key, pattern, _FOLLOWS.get(tenant.scenario))

    def _pattern_stream(self, tenant: str, key: int, p: LogPattern, follows: Field | None) -> _Stream:
        fields = "".join(f" {k}={_logfmt_value(v)}" for k, v in p.fields.items())
        # A pattern that runs "until now" keeps running while the sandbox does.
        until = math.inf if p.until == timedelta(0) else self.live.at(p.until)
        return _Stream(
            tenant,
            key,
            p.level,
            _quoted(p.message),
            p.per_min,
            self.live.at(p.since),
            until,
            p.timing == "fixed",
            p.jitter,
            p.sources,
            fields,
            p.skew_s,
            follows,
        )

    def _extend(self, now: float) -> None:
        start = now - RETENTION_S if self._until is None else self._until
        if now <= start:
            return
        # Settings can only have changed since the sandbox started.
        self._observe_config(max(start, self.live.t0))
        events: list[_Event] = []
        for stream in self._streams:
            events.extend(self._events(stream, start, now))
        events.sort(key=itemgetter(0))
        for t, pod, line in events:
            self._lines[pod].append((t, line))
        self._until = now
        for lines in self._lines:
            stale = bisect.bisect_left(lines, now - RETENTION_S, key=itemgetter(0))
            if stale >= _TRIM_BATCH:
                del lines[:stale]

    def _observe_config(self, when: float) -> None:
        if self._tenant_config is None:
            return
        for tenant in self.live.world.tenants:
            config = self._tenant_config(tenant)
            version = config.get("policy_version") if config else None
            if version:
                self._policy.observe(tenant, version, when)

    def _events(self, s: _Stream, lo: float, hi: float) -> Iterator[_Event]:
        lo, hi = max(lo, s.since), min(hi, s.until)
        if lo >= hi or s.per_min <= 0:
            return
        draws = self._fixed_draws(s, lo, hi) if s.fixed else self._poisson_draws(s, lo, hi)
        factor = self._follow_factor(s, lo, hi)
        for t, pod, src, pcs, keep in draws:
            if factor is not None and keep >= factor(t):
                continue
            sig = f" sig_ts={rfc3339_ms(t - s.skew_s)}" if s.skew_s else ""
            line = (
                f"ts={rfc3339_ms(t)} level={s.level} msg={s.message} tenant_id={s.tenant} "
                f"policy_version={self._policy.version(s.tenant, t)} pcs_id=pcs-{pcs}"
                f"{s.fields}{sig} src={src}"
            )
            yield t, pod, line

    def _fixed_draws(self, s: _Stream, lo: float, hi: float) -> Iterator[tuple[float, int, str, str, float]]:
        """A retry loop: evenly spaced (give or take the jitter), round robin over the pods and the sources.

        A line's jitter is drawn from its own index, so each line falls in exactly one [lo, hi).
        """
        interval = 60.0 / s.per_min
        seed, pods = self.live.world.seed, len(self._pods)
        reach = 1 if s.jitter else 0
        first = max(math.ceil((lo - s.since) / interval) - reach, 0)
        for j in range(first, math.ceil((hi - s.since) / interval) + reach):
            draw = digest(seed, s.tenant, s.key, j)
            t = s.since + j * interval
            if s.jitter:
                t += (2 * uniforms(draw[16:24])[0] - 1) * s.jitter * interval
            if lo <= t < hi:
                yield t, j % pods, s.sources[j % len(s.sources)], draw[:8].hex(), uniforms(draw[8:16])[0]

    def _poisson_draws(self, s: _Stream, lo: float, hi: float) -> Iterator[tuple[float, int, str, str, float]]:
        """Independent arrivals; each one-minute chunk has its own generator."""
        t0, rate, pods = self.live.t0, s.per_min / 60.0, len(self._pods)
        for chunk in range(math.floor((lo - t0) / CHUNK_S), math.ceil((hi - t0) / CHUNK_S)):
            rng = seeded(self.live.world.seed, s.tenant, s.key, chunk)
            t = max(t0 + chunk * CHUNK_S, s.since)
            end = min(t0 + (chunk + 1) * CHUNK_S, s.until)
            uniform, sources = rng.random, s.sources
            while True:
                t -= math.log(1.0 - uniform()) / rate
                if t >= end:
                    break
                pod, src = int(uniform() * pods), sources[int(uniform() * len(sources))]
                pcs, keep = f"{rng.getrandbits(64):016x}", uniform()
                if lo <= t < hi:
                    yield t, pod, src, pcs, keep

    def _follow_factor(self, s: _Stream, lo: float, hi: float) -> Callable[[float], float] | None:
        """Live value over spec value of the followed field: what a mitigation has left of the pattern.

        Both are step functions, so the ratio is evaluated once per step, not once per line.
        """
        if s.follows is None:
            return None
        name, live = s.follows, self.live
        series = getattr(live.world.tenants[s.tenant].traffic, name)
        starts = live.breakpoints(s.tenant, (name,), lo, hi)
        factors = []
        for start in starts:
            spec = series.at(timedelta(seconds=start - live.t0))
            factors.append(live.value(s.tenant, name, start) / spec if spec > 0 else 1.0)
        return lambda t: factors[bisect.bisect_right(starts, t) - 1]
