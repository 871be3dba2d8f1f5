"""The terminal's composition root: the same flows the bot runs, over the same store and audit
log, with the terminal operator's authority. Slack, when configured, only adds the group check;
what the terminal does is queued for the thread, which a running bot posts."""

from __future__ import annotations

from bot.service.context import build_context, open_audit_log
from bot.service.settings import TerminalSettings
from bot.slack.authz import Authoriser
from bot.slack.mrkdwn import SLACK
from bot.slack.sender import make_client
from bot.terminal.authority import TerminalAuthority
from bot.terminal.deps import Deps
from commands.comms import Templates
from commands.config import RunbookConfig
from commands.flows.actors import Actor
from commands.flows.comms import CommsFlow
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import JobQueue
from commands.flows.mitigation import MitigationFlow
from commands.flows.queued_thread import QueuedThread
from commands.flows.record import Recorder
from commands.flows.steps import StepRecords
from commands.flows.verification import Verification
from integrations.store import Store


async def terminal_deps(settings: TerminalSettings, config: RunbookConfig) -> Deps:
    ctx = await build_context(settings, config)
    try:
        store = await Store.connect(settings.database_url)
    except BaseException:
        await ctx.close()
        raise
    client = None
    if settings.slack_bot_token is not None:
        client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    groups = Authoriser(client, config.mitigations.authorised_groups) if client is not None else None
    authority = TerminalAuthority(config.mitigations.terminal_operators, groups)
    jobs = JobQueue(store)
    recorder = Recorder(store, open_audit_log(settings))
    thread = QueuedThread(jobs)
    opener = IncidentOpener(store, jobs, settings.incident_channel)
    gate = Gate(authority, recorder)
    verification = Verification(ctx, store, jobs, recorder, thread, opener, gate)
    mitigation = MitigationFlow(ctx, store, gate, recorder, thread, jobs, opener, verification)

    async def close() -> None:
        await ctx.close()
        await store.close()
        if client is not None and client.session is not None:
            await client.session.close()

    operator = Actor(settings.operator, via="terminal") if settings.operator else None
    templates = Templates(config.comms.templates_dir, messages=SLACK)
    comms = CommsFlow(ctx, store, gate, recorder, jobs, templates)
    steps = StepRecords(store, jobs, opener)
    return Deps(ctx, store, mitigation, verification, comms, steps, operator, close)
