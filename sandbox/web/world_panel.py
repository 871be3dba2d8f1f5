"""The page's world panel: each tenant's live SLIs and settings, breaches on demand, and the
faults the sandbox can cause (the ones sandbox/README.md lists), all sandbox-side controls."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from sandbox.slack.registry import METHODS
from sandbox.web.actions import Answer, bad_input
from sandbox.world.breach import SCENARIOS, BreachError, breach

if TYPE_CHECKING:
    from sandbox.up import Sandbox

# The runbook's SLOs (§1) over its 5 minute window: what the deployed alert rule compares to.
SLO = {"escalation_ratio": 0.02, "signature_error_ratio": 0.01}
WINDOW_S = 300.0
CONFIG_KEYS = ("strict_mode", "token_rate", "burst_rate", "daily_quota", "policy_version")
# Kubernetes refusals a person can switch on: what the bot's mitigations and probes need.
RBAC_TOGGLES = (("patch", "configmaps"), ("patch", "deployments"), ("get", "secrets"), ("list", "events"))
STALLED = ("deployments", "configmaps")
# Slack methods whose next calls can be made to answer 500 (the ones the bot calls most).
SLACK_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "files.completeUploadExternal")


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendFault(_Fault):
    kind: Literal["admin", "metrics"]
    mode: Literal["500", "garbage", "hang"] | None


class RbacFault(_Fault):
    kind: Literal["rbac"]
    verb: str
    resource: str
    on: bool


class StallFault(_Fault):
    kind: Literal["kube_stall"]
    on: bool


class SlackFault(_Fault):
    kind: Literal["slack"]
    method: str
    count: int = Field(ge=0, le=50)
    error: Literal["internal_error", "ratelimited", "message_not_found", "channel_not_found"] = "internal_error"


class GrafanaFault(_Fault):
    kind: Literal["grafana"]
    on: bool


Fault = Annotated[BackendFault | RbacFault | StallFault | SlackFault | GrafanaFault, Field(discriminator="kind")]
_FAULT = TypeAdapter(Fault)


class Breach(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str
    scenario: str


class WorldPanel:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        # The RBAC denials the world spec itself holds: switching a toggle off never lifts them.
        self._spec_denies = {(d.verb, d.resource) for d in sandbox.kube.rbac.denies if d.name is None}

    def state(self) -> dict[str, Any]:
        return {"tenants": self.tenants(), "faults": self.faults(), "scenarios": list(SCENARIOS)}

    def tenants(self, now: float | None = None) -> list[dict[str, Any]]:
        live, now = self.sb.live, time.time() if now is None else now
        rows = []
        for tenant, spec in live.world.tenants.items():
            window = {
                "escalation_ratio": live.ratio(tenant, "flk_escalated_by_tenant", now, WINDOW_S),
                "signature_error_ratio": live.ratio(tenant, "flk_signature_errors_by_tenant", now, WINDOW_S),
            }
            config = self.sb.tenant_config(tenant) or {}
            rows.append(
                {
                    "id": tenant,
                    "scenario": spec.scenario,
                    "region": spec.region,
                    "remedy": spec.remedy.action if spec.remedy else None,
                    "ingest_rps": live.value(tenant, "ingest_rps", now),
                    "quota_exceeded_rps": live.value(tenant, "quota_exceeded_rps", now),
                    "now": {name: live.value(tenant, name, now) for name in SLO},  # type: ignore[arg-type]
                    "window": window,
                    "breaching": [name for name, slo in SLO.items() if window[name] > slo],
                    "config": {key: config[key] for key in CONFIG_KEYS if key in config},
                }
            )
        return rows

    def faults(self) -> dict[str, Any]:
        sb = self.sb
        denied = {(d.verb, d.resource) for d in sb.kube.rbac.denies if d.name is None}
        return {
            "admin": sb.backend.faults.get("admin"),
            "metrics": sb.backend.faults.get("metrics"),
            "rbac": [
                {"verb": v, "resource": r, "on": (v, r) in denied, "from_spec": (v, r) in self._spec_denies}
                for v, r in RBAC_TOGGLES
            ],
            "kube_stall": {"on": bool(sb.kube.stalled), "resources": list(STALLED)},
            "slack": {
                "methods": list(SLACK_METHODS),
                "failing": {m: n for m, n in sb.slack.workspace.failing.items() if n},
            },
            "grafana": sb.grafana.fail_with is not None,
        }

    # --- controls -------------------------------------------------------------------------------

    def breach(self, raw: dict[str, Any]) -> Answer:
        try:
            asked = Breach.model_validate(raw)
            values = breach(self.sb.live, asked.tenant, asked.scenario)
        except ValidationError as exc:
            return bad_input(exc)
        except BreachError as exc:
            return 400, {"error": str(exc)}
        return 200, {"tenant": asked.tenant, "scenario": asked.scenario, "set": values}

    def fault(self, raw: dict[str, Any]) -> Answer:
        try:
            fault = _FAULT.validate_python(raw)
        except ValidationError as exc:
            return bad_input(exc)
        sb = self.sb
        if isinstance(fault, BackendFault):
            sb.backend.faults[fault.kind] = fault.mode
        elif isinstance(fault, RbacFault):
            if (fault.verb, fault.resource) not in RBAC_TOGGLES:
                return 400, {"error": f"no RBAC toggle for {fault.verb} {fault.resource}"}
            if fault.on:
                sb.kube.rbac.deny(fault.verb, fault.resource)
            elif (fault.verb, fault.resource) in self._spec_denies:
                return 400, {"error": f"the world spec denies {fault.verb} {fault.resource}; it stays denied"}
            else:
                sb.kube.rbac.allow(fault.verb, fault.resource)
        elif isinstance(fault, StallFault):
            if fault.on:
                sb.kube.stall(*STALLED)
            else:
                sb.kube.release()
        elif isinstance(fault, SlackFault):
            if fault.method not in METHODS:
                return 400, {"error": f"method: no Slack method {fault.method!r}"}
            sb.slack.fail_next(fault.method, fault.count, fault.error)
        else:
            sb.grafana.fail_with = 500 if fault.on else None
        return 200, self.faults()
