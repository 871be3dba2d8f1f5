"""Breaches on demand: make a tenant breach as a runbook scenario would, from now on, or recover.

Used by `flk sandbox breach` and the backend's `POST /sandbox/breach`, so that the real
Prometheus rule fires and the real Alertmanager calls the bot.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.world.live import Field, LiveWorld

# What each scenario does to the tenant's traffic (ratios, or a share of ingest for quota).
EFFECTS: dict[str, dict[Field, float]] = {
    "signatures": {"signature_error_ratio": 0.06},
    "escalations": {"escalation_ratio": 0.045},
    "policy": {"escalation_ratio": 0.05},
    "quota": {"escalation_ratio": 0.03},
}
QUOTA_SHARE = 0.3
SCENARIOS = (*EFFECTS, "recover")


class BreachError(ValueError):
    pass


def breach(live: LiveWorld, tenant: str, scenario: str, when: float | None = None) -> dict[str, float]:
    """Apply ``scenario`` to ``tenant`` from ``when`` (default now); returns the values set."""
    if tenant not in live.world.tenants:
        raise BreachError(f"unknown tenant {tenant!r}")
    if scenario not in SCENARIOS:
        raise BreachError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    if scenario == "recover":
        return recover(live, tenant, when)
    values: dict[Field, float] = dict(EFFECTS[scenario])
    if scenario == "quota":
        ingest = live.world.tenants[tenant].traffic.ingest_rps.at(timedelta(0))
        values["quota_exceeded_rps"] = round(ingest * QUOTA_SHARE, 3)
    for name, value in values.items():
        live.set(tenant, name, value, when)
    return dict(values)


def recover(live: LiveWorld, tenant: str, when: float | None = None) -> dict[str, float]:
    """Back to the tenant's healthy baseline: the values its spec starts the day with."""
    traffic = live.world.tenants[tenant].traffic
    values: dict[Field, float] = {
        name: getattr(traffic, name).points[0][1]
        for name in ("escalation_ratio", "signature_error_ratio", "quota_exceeded_rps")
    }
    for name, value in values.items():
        live.set(tenant, name, value, when)
    return dict(values)
