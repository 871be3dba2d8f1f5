"""Timeline rows in the old shape (a kind, Slack prose, loose ``details``) as typed events' fields.

The one mapping for both the migration that converted the stored rows (``0002``) and
``Store.add_event``, the legacy writer that callers not yet typed still use. It reads the
``details`` (and, for a mitigation, the plan the store kept under ``plan:<id>``), never the
prose: a row whose details do not carry an event's fields becomes ``legacy``, the old text
kept as it was. The result is plain JSON, because the store never imports ``commands``: the
read side (``commands.timeline``) validates it against the typed events and shows whatever does
not fit as ``legacy`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LEGACY = "legacy"
# ``ObjectRef.__str__`` as the mitigations recorded it: "configmap/tenant-x (namespace lba)".
_OBJECT = re.compile(r"^(?P<object>\S+) \(namespace (?P<namespace>[^)]*)\)$")
_STEPS = {
    "triage.finished": "triage",
    "diagnose.finished": "diagnose",
    "isolation triage.finished": "isolation",
    "isolation.finished": "isolation",
}
_STOPPED = {"mitigation.partial": "partial", "mitigation.failed": "failed"}

Data = dict[str, Any]


@dataclass(frozen=True)
class LegacyRow:
    kind: str
    text: str
    details: Mapping[str, Any]
    actor: str
    tenant: str | None = None  # the incident's own (None: an isolation incident)


def plan_key(row: LegacyRow) -> str | None:
    """The idempotency key of the plan a mitigation row names, for ``typed``'s ``plan``."""
    plan_id = row.details.get("plan_id")
    return f"plan:{plan_id}" if row.kind.startswith("mitigation.") and plan_id else None


def typed(row: LegacyRow, plan: Mapping[str, Any] | None = None) -> tuple[str, Data]:
    """``(kind, data)`` of the typed event the row records, else ``("legacy", …)`` with its text.

    ``plan``: the stored plan record (``{"plan": Plan.to_dict(), …}``) of ``plan_key(row)``.
    """
    convert = _CONVERTERS.get(row.kind)
    if convert is None and row.kind.startswith("check."):
        convert = _check
    found = None
    if convert is not None:
        try:
            found = convert(row, (plan or {}).get("plan") or None)
        except (KeyError, TypeError, ValueError, AttributeError):
            found = None  # details of another shape than this kind ever had
    return found or (LEGACY, {"legacy_kind": row.kind, "text": row.text})


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ref(ref: Mapping[str, Any]) -> tuple[str, str]:
    return f"{str(ref['kind']).lower()}/{ref['name']}", str(ref["namespace"])


def _plan_changes(plan: Mapping[str, Any]) -> list[Data]:
    changes = []
    for obj in plan["objects"]:
        name, namespace = _ref(obj["ref"])
        for c in obj["changes"]:
            changes.append(
                {"object": name, "namespace": namespace, "key": c["key"], "before": c["before"], "after": c["after"]}
            )
    return changes


def _recorded_changes(raw: Any) -> list[Data]:
    changes = []
    for c in raw or ():
        where = _OBJECT.match(str(c["object"]))
        name, namespace = (where["object"], where["namespace"]) if where else (str(c["object"]), "")
        changes.append(
            {"object": name, "namespace": namespace, "key": c["key"], "before": c["before"], "after": c["after"]}
        )
    return changes


def _restart(plan: Mapping[str, Any]) -> str | None:
    return _ref(plan["restart"])[0] if plan.get("restart") else None


def _opened(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    isolation = "tenants" in d
    source = "isolation" if isolation else ("alert" if row.actor == "alertmanager" else "command")
    tenants = list(d["tenants"]) if isolation else [d["tenant"]]
    return row.kind, {"title": row.text, "severity": d["severity"], "tenants": tenants, "source": source}


def _tenants_added(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "incident.tenants_added", {"tenants": list(row.details["tenants"])}


def _state(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    before, after = row.details["from"], row.details["to"]
    reason = "" if row.text == f"{before} → {after}" else row.text  # the store's own default said nothing more
    return "incident.state", {"state": after, "previous": before, "reason": reason}


def _alert(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    return row.kind, {"fingerprint": d["fingerprint"], "tenant": row.tenant or "", "value": _float(d.get("value"))}


def _command(row: LegacyRow, _plan: Any) -> tuple[str, Data] | None:
    words = row.text.split()
    if len(words) < 2 or words[0] != "/flk":
        return None
    return "command", {"verb": words[1], "text": row.text.removeprefix("/flk ").strip()}


def _verdict(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    findings = d.get("findings") or {}
    scenario = d.get("scenario") or None
    return "verdict", {
        "step": _STEPS[row.kind],
        "scenario": scenario,
        "headline": row.text,
        "evidence": [str(e) for e in d.get("evidence") or ()],
        "findings": [{"key": k, "status": v["status"], "summary": v["summary"]} for k, v in findings.items()],
        "tenant": d.get("tenant"),
        "breach": scenario is not None,
    }


def _planned(row: LegacyRow, plan: Mapping[str, Any] | None) -> tuple[str, Data] | None:
    if plan is None:
        return None
    return "mitigation.planned", {
        "plan_id": plan["id"],
        "action": plan["action"],
        "tenant": plan["tenant"],
        "changes": _plan_changes(plan),
        "restart": _restart(plan),
        "needs_second_approver": bool(plan.get("needs_second_approver")),
        "dry_run": bool(row.details.get("dry_run")),
        "undoes": plan.get("undoes"),
        "expires_at": plan.get("expires_at"),
    }


def _applied(row: LegacyRow, plan: Mapping[str, Any] | None) -> tuple[str, Data] | None:
    if plan is None:
        return None
    d = row.details
    return "mitigation.applied", {
        "plan_id": plan["id"],
        "action": plan["action"],
        "tenant": plan["tenant"],
        "changes": _recorded_changes(d.get("changes")),
        "confirmed_by": d.get("confirmed_by") or row.actor,
        "restart": _restart(plan),
        "undoes": plan.get("undoes"),
    }


def _stopped(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "mitigation.stopped", {"plan_id": row.details["plan_id"], "outcome": _STOPPED[row.kind], "reason": row.text}


def _resumed(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "mitigation.resumed", {"plan_id": row.details["plan_id"]}


def _refused(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "refused", {"action": "mitigation", "reason": row.details.get("reason") or row.text}


def _slis(data: Mapping[str, Any]) -> list[Data]:
    """The SLIs of an SLO check's finding data (``commands.verify.check_slo``)."""
    slo = data.get("slo") or {}
    pairs = (("escalations", "escalation_ratio"), ("signature_errors", "signature_error_ratio"))
    return [{"sli": sli, "value": _float(data.get(key)), "slo": float(slo[key])} for sli, key in pairs if key in slo]


def _check(row: LegacyRow, _plan: Any) -> tuple[str, Data] | None:
    d = row.details
    ok = d.get("ok")
    if not isinstance(ok, bool):
        ok = {"check.passed": True, "check.failed": False}.get(row.kind)
    if ok is None:
        return None
    data = d.get("data") or {}
    slis = _slis(data)
    if ok:
        status = "ok"
    elif "system" in data:
        status = "error"
    else:
        breached = any(s["value"] is not None and s["value"] > s["slo"] for s in slis)
        status = "breach" if breached else "unknown"
    return "check", {
        "n": int(d.get("n", 1)),
        "of": int(d.get("of", 1)),
        "ok": ok,
        "plan_id": d.get("plan_id"),
        "slis": slis,
        "status": status,
    }


def _notice(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    channel = d.get("channel") if row.kind == "notice.sent" else None
    return "notice.sent", {"notice": d["notice"], "tenant": d.get("tenant") or row.tenant, "channel": channel}


def _resolve(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    return row.kind, {"fields": dict(d["fields"]), "stakeholder_channel": d.get("stakeholder_channel")}


def _silence(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    data: Data = {"silence_id": str(d["silence_id"])}
    if row.kind == "silence.created":
        data |= {"tenant": d.get("tenant", ""), "reason": d.get("reason", ""), "ends_at": d.get("ends_at")}
    else:
        data["gone"] = row.text == "silence already gone from Alertmanager"
    return row.kind, data


def _rca(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return row.kind, {"filename": str(row.details.get("filename", ""))}


def _note(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    d = row.details
    return "note", {
        "text": row.text,
        "author": row.actor,
        "message_ts": str(d.get("ts", "")),
        "pinned_by": str(d.get("pinned_by") or ""),
    }


def _thread(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "thread.opened", {"ts": str(row.details["ts"])}


def _annotation(row: LegacyRow, _plan: Any) -> tuple[str, Data]:
    return "annotation.added", {"annotation_id": str(row.details["annotation_id"])}


_Converter = Callable[[LegacyRow, Any], "tuple[str, Data] | None"]
_CONVERTERS: dict[str, _Converter] = {
    "incident.opened": _opened,
    "incident.tenants_added": _tenants_added,
    "state.changed": _state,
    "alert.firing": _alert,
    "alert.resolved": _alert,
    "command": _command,
    **dict.fromkeys(_STEPS, _verdict),
    "mitigation.planned": _planned,
    "mitigation.applied": _applied,
    "mitigation.undone": _applied,
    **dict.fromkeys(_STOPPED, _stopped),
    "mitigation.resumed": _resumed,
    "mitigation.refused": _refused,
    "notice.sent": _notice,
    "notice.drafted": _notice,
    "resolve.posted": _resolve,
    "silence.created": _silence,
    "silence.expired": _silence,
    "rca.posted": _rca,
    "rca.reminded": _rca,
    "note": _note,
    "slack.thread": _thread,
    "grafana.annotated": _annotation,
}
