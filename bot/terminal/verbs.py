"""Each runbook verb in a terminal: the same flows and steps the bot runs, their outcome printed
with rich (or as JSON with ``--json``). Exit status: 0 ok, 1 a breach or a failure, 2 usage."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.prompt import Prompt
from rich.text import Text

from bot.terminal import render
from bot.terminal.deps import Deps
from bot.terminal.live import live_checklist
from bot.text_report import print_report
from commands import diagnose, triage
from commands.comms import Templates
from commands.export import run_export
from commands.flows.actors import Actor, FlowError, Unknown
from commands.flows.steps import triage_lead
from commands.history import remember
from commands.incidents import open_incidents, status_of
from commands.models import Status
from commands.registry import UsageError
from commands.verify import check_slo
from integrations.errors import BackendError

OK, FAILED, USAGE = 0, 1, 2


@dataclass(frozen=True)
class Options:
    json: bool = False
    out: str | None = None
    confirm: str | None = None
    yes: bool = False
    send: bool = False


class Verbs:
    def __init__(self, deps: Deps, console: Console, options: Options) -> None:
        self.deps = deps
        self.console = console
        self.options = options
        # Drafts shown in a terminal read as Markdown; what is sent is rendered for Slack by the flow.
        self.markdown = Templates(deps.ctx.config.comms.templates_dir)

    async def run(self, verb: str, args: dict[str, Any], text: str) -> int:
        handler = getattr(self, f"do_{verb}", None)
        if handler is None:
            raise UsageError(f"`{verb}` is not available in the terminal yet")
        try:
            return await handler(args, text)
        except Unknown as exc:
            self.console.print(str(exc), markup=False)
            return USAGE
        except FlowError as exc:
            self.console.print(f"refused: {exc}", style="red", markup=False)
            return FAILED
        except BackendError as exc:
            self.console.print(f"{exc.system}: {exc.reason}", style="red", markup=False)
            return FAILED

    def _emit(self, data: Any) -> None:
        render.emit_json(data, self.console)

    async def _known(self, tenant: str) -> None:
        refusal = await self.deps.ctx.tenants.refuse(tenant)
        if refusal:
            raise Unknown(refusal)

    # -- read-only steps ----------------------------------------------------------------------

    async def do_triage(self, args: dict[str, Any], _: str) -> int:
        tenant = args["tenant"]
        if tenant is None:
            breaching = await triage.breaching_tenants(self.deps.ctx)
            if self.options.json:
                self._emit(breaching)
            else:
                render.breaching(breaching, self.console)
            return FAILED if breaching else OK
        await self._known(tenant)
        async with live_checklist(self.console, triage.probes(), quiet=self.options.json) as on_finding:
            report = await triage.run_triage(self.deps.ctx, tenant, on_finding)
        await remember(self.deps.store, report)
        await self._record(report)
        self._report(report)
        return FAILED if report.status is Status.BREACH else OK

    async def do_diagnose(self, args: dict[str, Any], _: str) -> int:
        tenant = args["tenant"]
        await self._known(tenant)
        scenario = args.get("scenario")
        # Without a scenario: the ones the tenant's open incident's latest triage left plausible.
        lead = None
        if not scenario and (open_incident := await self.deps.steps.store.find_open(tenant)) is not None:
            lead = await triage_lead(self.deps.steps.store, open_incident.id)
        shown = scenario or (
            lead.plausible(datetime.now(UTC), self.deps.ctx.config.diagnosis.triage_max_age_s) if lead else None
        )
        async with live_checklist(self.console, diagnose.probes(shown), quiet=self.options.json) as on_finding:
            report = await diagnose.run_diagnose(self.deps.ctx, tenant, scenario, on_finding, lead=lead)
        await remember(self.deps.store, report)
        await self._record(report)
        self._report(report)
        return FAILED if report.status is Status.BREACH else OK

    async def _record(self, report: Any) -> None:
        """On the tenant's incident, as in Slack (opened for a breach, read-only steps need no operator)."""
        actor = self.deps.operator or Actor("terminal", via="terminal")
        incident = await self.deps.steps.record(actor, report)
        if incident is not None and not self.options.json:
            self.console.print(f"on incident #{incident.id}", style="dim")

    def _report(self, report: Any) -> None:
        if self.options.json:
            self._emit(report)
        else:
            print_report(report, self.console)

    async def do_export(self, args: dict[str, Any], _: str) -> int:
        await self._known(args["tenant"])
        export = await run_export(self.deps.ctx, args["tenant"], args.get("n"))
        path = Path(self.options.out or export.filename)
        await asyncio.to_thread(shutil.move, export.path, path)
        if self.options.json:
            self._emit({"file": str(path), "rows": export.rows, "requested": export.requested})
        else:
            self.console.print(f"{export.summary}\nwritten to {path}", markup=False)
        return OK

    async def do_verify(self, args: dict[str, Any], _: str) -> int:
        tenant, delay = args["tenant"], args["delay_s"]
        await self._known(tenant)
        if delay:
            operator = self._operator()
            incident = await self.deps.verification.request(operator, tenant, delay)
            self.console.print(f"SLO check of {tenant} scheduled in {delay} s on incident #{incident.id}")
            return OK
        finding = await check_slo(self.deps.ctx, tenant)
        if self.options.json:
            self._emit(finding)
        else:
            render.finding(finding, self.console)
        return OK if finding.status is Status.OK else FAILED

    async def do_incidents(self, args: dict[str, Any], _: str) -> int:
        lines = await open_incidents(self.deps.store)
        if self.options.json:
            self._emit(lines)
        else:
            render.incidents(lines, self.console)
        return OK

    async def do_status(self, args: dict[str, Any], text: str) -> int:
        if args.get("tenant") is None:
            return await self.do_incidents(args, text)
        status = await status_of(self.deps.store, args["tenant"])
        if self.options.json:
            self._emit(status)
        else:
            render.status(status, self.console)
        return OK

    # -- communications -----------------------------------------------------------------------

    async def do_notify(self, args: dict[str, Any], _: str) -> int:
        """Print the drafted tenant notice; ``--send`` sends it as drafted (queued for Slack)."""
        actor = self._operator()
        notice = await self.deps.comms.notice(actor, args.get("tenant"))
        where = f"to {notice.channel}" if notice.channel else "into the incident thread (no tenant channel set)"
        if not self.options.send:
            self._show(notice.draft, f"notice for {notice.tenant}, not sent; --send sends it {where}")
            return OK
        sent = await self.deps.comms.send_notice(
            actor,
            notice.incident.id,
            notice.tenant,
            None,
            key=f"notice:terminal:{notice.incident.id}:{time.time():.0f}",
        )
        self._show(sent.draft, f"notice for {notice.tenant} queued {where}")
        return OK

    async def do_resolve(self, args: dict[str, Any], _: str) -> int:
        """Print the RESOLVED update; with ``--yes`` (or the tenant typed) resolve the incident."""
        actor = self._operator()
        ready = await self.deps.comms.resolve_draft(actor, args.get("tenant"))
        self._show(ready.draft, f"RESOLVED update for incident #{ready.incident.id}")
        if not self.options.yes:
            if not sys.stdin.isatty():
                self.console.print("to resolve it: add --yes", markup=False)
                return OK
            name = ready.incident.tenant or str(ready.incident.id)
            typed = Prompt.ask(
                f"Type {name} to resolve the incident, anything else leaves it open", console=self.console
            )
            if typed.strip() != name:
                self.console.print("not resolved")
                return FAILED
        done = await self.deps.comms.resolve(actor, ready.incident.id, None, tenant_update=ready.tenant_update)
        said = "RESOLVED posted (queued for the thread" + (
            " and the stakeholders)" if ready.stakeholder_channel else ")"
        )
        self.console.print(said if done.posted else "already resolved by someone else at the same time", markup=False)
        return OK

    async def do_rca(self, args: dict[str, Any], _: str) -> int:
        """Write the RCA draft and the tenant summaries to ``--out DIR`` (default: here)."""
        actor = self.deps.operator or Actor("terminal", via="terminal")
        incident, rca = await self.deps.comms.rca(actor, args.get("tenant"))
        folder = Path(self.options.out or ".")
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        files = {rca.filename: rca.document} | {
            f"rca-summary-{who}-incident-{incident.id}.md": summary for who, summary in rca.tenant_summaries.items()
        }
        for name, text in files.items():
            await asyncio.to_thread((folder / name).write_text, text)
        await self.deps.comms.rca_posted(actor, incident, rca.filename)
        if self.options.json:
            self._emit({"incident": incident.id, "files": [str(folder / n) for n in files]})
        else:
            for name in files:
                self.console.print(f"written {folder / name}", markup=False)
        return OK

    async def do_silence(self, args: dict[str, Any], _: str) -> int:
        actor = self._operator()
        incident, created = await self.deps.comms.silence(actor, args["tenant"], args["duration_s"], args["reason"])
        if self.options.json:
            self._emit({"incident": incident.id, "silence_id": created.id, "ends_at": created.ends_at})
        else:
            self.console.print(f"{created.text} (silence {created.id}, incident #{incident.id})", markup=False)
        return OK

    def _show(self, draft: Any, title: str) -> None:
        text = draft.render(self.markdown)
        if self.options.json:
            self._emit({"title": title, "fields": draft.fields, "text": text})
            return
        self.console.rule(Text(title))
        self.console.print(Text(text))

    # -- mitigations --------------------------------------------------------------------------

    def _operator(self) -> Any:
        if self.deps.operator is None:
            raise FlowError("set FLK_OPERATOR to your name (one of mitigations.terminal_operators) to change anything")
        return self.deps.operator

    async def do_mitigate(self, args: dict[str, Any], text: str) -> int:
        operator = self._operator()
        planned = await self.deps.mitigation.plan(operator, args, text)
        plan = planned.plan
        if self.options.json and not self.options.yes:
            self._emit({"plan_id": plan.id, "state": planned.record.state, "plan": plan.to_dict()})
            return OK
        render.plan(plan, planned.record.state, self.console)
        if planned.record.state == "dry_run":
            return OK
        if not self.options.yes:
            if not sys.stdin.isatty():
                self.console.print(f"to apply it: flk mitigate --confirm {plan.id}", markup=False)
                return OK
            typed = Prompt.ask(
                f"Type the tenant name ({plan.tenant}) to apply, anything else cancels", console=self.console
            )
            if typed.strip() != plan.tenant:
                record = await self.deps.mitigation.cancel(operator, plan.id)
                self.console.print(f"not applied: plan {record.id} cancelled")
                return FAILED
        return await self._apply(plan.id)

    async def confirm(self, plan_id: str) -> int:
        """`flk mitigate --confirm <plan-id>`: a plan made earlier (here or in Slack)."""
        return await self._apply(plan_id)

    async def _apply(self, plan_id: str) -> int:
        operator = self._operator()
        confirmed = await self.deps.mitigation.confirm(operator, plan_id, queue=False)
        if confirmed.state == "approved":
            self.console.print(f"approved by {operator.id}; a second, different approver must confirm {plan_id}")
            return OK
        if confirmed.state != "applying":
            self.console.print(f"plan {plan_id} is {confirmed.record.state}: nothing done")
            return FAILED
        with self.console.status(f"applying {plan_id}…"):
            record = await self.deps.mitigation.apply(plan_id)
        if record is None:
            self.console.print(f"plan {plan_id} is being applied elsewhere")
            return FAILED
        if self.options.json:
            self._emit(
                {"plan_id": record.id, "state": record.state, "applied": record.applied, "reason": record.reason}
            )
        else:
            render.outcome(record, self.console)
        return OK if record.state == "applied" else FAILED

    async def do_extend(self, args: dict[str, Any], _: str) -> int:
        """`flk extend <plan-id> [<duration>]`: keep a temporary mitigation longer."""
        until = await self.deps.mitigation.expiries.extend(self._operator(), args["plan_id"], args["lasts_s"])
        if self.options.json:
            self._emit({"plan_id": args["plan_id"], "until": until.isoformat()})
        else:
            self.console.print(f"plan {args['plan_id']} extended until {until:%Y-%m-%d %H:%M} UTC", markup=False)
        return OK

    async def undo(self, plan_id: str) -> int:
        """`flk undo <plan-id>`: plan the undo, then confirm it as any plan."""
        operator = self._operator()
        planned = await self.deps.mitigation.undo(operator, plan_id)
        render.plan(planned.plan, planned.record.state, self.console)
        if not self.options.yes and sys.stdin.isatty():
            typed = Prompt.ask(f"Type the tenant name ({planned.plan.tenant}) to undo", console=self.console)
            if typed.strip() != planned.plan.tenant:
                await self.deps.mitigation.cancel(operator, planned.record.id)
                self.console.print("not undone: the undo plan is cancelled")
                return FAILED
        elif not self.options.yes:
            self.console.print(f"to apply it: flk mitigate --confirm {planned.record.id}", markup=False)
            return OK
        return await self._apply(planned.record.id)
