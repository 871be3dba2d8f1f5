"""How an incident's parent message and status lines look in Slack."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.limits import MAX_SECTION_TEXT, clip
from bot.slack.mrkdwn import escape, link
from bot.slack.render import command_button
from bot.slack.render_timeline import clock, line
from commands.comms.markdown import safe_url
from commands.incidents import IncidentLine, IncidentStatus, age
from commands.models import SCENARIO_TITLE
from commands.timeline.events import SLI_NAMES
from integrations.store import Alert, Incident


def _link(url: str | None, label: str) -> str | None:
    """A link only for plain http(s) URLs (alert data must not inject markup), else nothing."""
    return link(url, label) if url and safe_url(url) else None


def _sli_line(alert: Alert) -> str:
    sli = SLI_NAMES.get(alert.labels.get("sli", ""), alert.labels.get("sli", "SLI"))
    value, slo = alert.annotations.get("value"), alert.annotations.get("slo")
    try:
        shown = f"{float(value) * 100:.3g}% vs SLO {float(slo) * 100:.3g}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        shown = "value unknown"
    return f"{escape(sli)} {shown} · since {clock(alert.starts_at)}"


# The block of an incident's own buttons; its id names the incident (a slash command cannot).
INCIDENT_BLOCK = "flk_incident:"


def _next(incident: Incident) -> list[tuple[str, str]]:
    """The communication steps still to do, as (command, label)."""
    if incident.state == "resolved":
        return [("rca", "RCA draft")]
    notify = [("notify", "Notify tenant")] if incident.kind == "tenant" else []
    return [*notify, ("resolve", "Resolve"), ("rca", "RCA draft")]


def parent_message(incident: Incident, alerts: list[Alert], dashboard: str | None) -> tuple[str, list[Block]]:
    firing = [a for a in alerts if a.status == "firing"]
    if incident.kind == "isolation":
        names = ", ".join(incident.tenants[:20]) + ("…" if len(incident.tenants) > 20 else "")
        head = f":rotating_light: *{incident.severity} · Isolation breach · {len(incident.tenants)} tenants* · {names}"
    elif alerts:
        name = alerts[0].labels.get("alertname", "FLKTenantSLOBreach")
        slis = " · ".join(_sli_line(a) for a in (firing or alerts))
        head = f":rotating_light: *{incident.severity} · {escape(name)} · {incident.tenant}* · {slis}"
    else:
        head = f":mag: *{incident.severity} · {incident.tenant}* · opened by a triage request"
    links = [_link(a.generator_url, "alert") for a in alerts[:1]]
    links.append(_link(dashboard, "Tenant Health dashboard"))
    lines = [head, " · ".join(x for x in links if x)]
    status = [f"state: *{incident.state}*"]
    if alerts and firing:
        last = max(a.last_seen_at for a in firing)
        status.append(f"alert firing (last notification {clock(last)})")
    elif alerts:
        ended = max((a.ends_at or a.last_seen_at) for a in alerts)
        status.append(f"alert resolved at {clock(ended)}; the incident stays open until someone resolves it")
    if incident.scenario in SCENARIO_TITLE:
        status.append(f"likely scenario {SCENARIO_TITLE[incident.scenario]}")
    if incident.state == "resolved":
        lines[0] = lines[0].replace(":rotating_light:", ":white_check_mark:", 1)
        status.append(f"resolved at {clock(incident.resolved_at)}")
    text = clip("\n".join(x for x in lines if x), MAX_SECTION_TEXT)
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=text)),
        ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(status), 2000))]),
    ]
    buttons = [b for b in (command_button(c, label) for c, label in _next(incident)) if b is not None]
    if buttons:
        blocks.append(ActionsBlock(block_id=f"{INCIDENT_BLOCK}{incident.id}", elements=buttons))
    fallback = clip(f"{incident.severity} {incident.tenant or 'isolation breach'}: {incident.state}", 300)
    return fallback, blocks


def incidents_blocks(lines: list[IncidentLine]) -> tuple[str, list[Block]]:
    if not lines:
        return "No open incidents", [
            SectionBlock(text=MarkdownTextObject(text=":white_check_mark: No open incidents."))
        ]
    rows = []
    for row in lines[:40]:
        i = row.incident
        last = line(row.last, 80) if row.last else "no events"
        rows.append(f"• *{escape(row.who)}* · {i.state} · open {age(row.age_s)} · last: {last}")
    if len(lines) > 40:
        rows.append(f"_{len(lines) - 40} more not shown_")
    text = clip("\n".join(rows), MAX_SECTION_TEXT)
    return f"{len(lines)} open incident(s)", [SectionBlock(text=MarkdownTextObject(text=text))]


def status_blocks(status: IncidentStatus) -> tuple[str, list[Block]]:
    i = status.incident
    head = (
        f"*{escape(i.tenant or 'isolation breach')}* · {i.severity} · state *{i.state}* · opened {clock(i.opened_at)}"
    )
    if i.scenario in SCENARIO_TITLE:
        head += f" · likely {SCENARIO_TITLE[i.scenario]}"
    alerts = [f"• {escape(a.labels.get('sli', 'SLI'))}: {a.status} since {clock(a.starts_at)}" for a in status.alerts]
    events = [f"• {line(e)}" for e in status.recent]
    text = "\n".join([head, *alerts, "*Latest events*", *events])
    return f"{i.tenant} {i.state}", [SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT)))]
