"""The bot process: the Bolt app served over HTTP (and/or Socket Mode), the Alertmanager webhook,
/healthz, /readyz and /metrics, and the outbox worker that sends what the store queued."""

from __future__ import annotations

import logging
import time
from functools import partial

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

import commands.incidents
import commands.triage
from bot.service.alerts import AlertWebhook
from bot.service.checks import CheckScheduler
from bot.service.context import open_audit_log
from bot.service.leader import Leadership
from bot.service.outbox import OutboxWorker
from bot.service.readiness import Readiness
from bot.service.runtime import Runtime
from bot.service.settings import Settings
from bot.service.telemetry import REQUEST_SECONDS
from bot.slack import listeners_actions, listeners_commands, listeners_events, listeners_views, steps
from bot.slack.authz import Authoriser
from bot.slack.comms import Communications
from bot.slack.comms_ops import CommsOps
from bot.slack.dispatch import Dispatcher
from bot.slack.incidents import IncidentThreads
from bot.slack.mitigations import Mitigations
from bot.slack.mrkdwn import SLACK
from bot.slack.thread import ThreadMessages, tell_given_up
from commands.comms import Templates
from commands.comms.lifecycle import RCA_REMINDER
from commands.config import RunbookConfig
from commands.flows.comms import CommsFlow
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import JobQueue
from commands.flows.mitigation import MitigationFlow
from commands.flows.queued_thread import QueuedThread
from commands.flows.record import Recorder
from commands.flows.verification import Verification
from integrations.store import ScheduledCheck
from integrations.store.leader import LeaderLock

log = logging.getLogger(__name__)
assert commands.incidents and commands.diagnose and commands.export and commands.mitigate


def create_bolt_app(
    rt: Runtime, threads: IncidentThreads, mitigations: Mitigations, comms: Communications, ops: CommsOps
) -> AsyncApp:
    app = AsyncApp(
        client=rt.io.client,
        signing_secret=rt.settings.slack_signing_secret.get_secret_value(),
        # Listeners ack and hand the work to a task, so Bolt may answer as soon as they return;
        # with False it polls for the ack every 10 ms, which is the whole ack latency.
        process_before_response=True,
    )

    @app.error
    async def on_error(error: Exception) -> None:
        log.error("unhandled error in a Slack listener", exc_info=error)

    dispatcher = Dispatcher(rt, threads, mitigations, comms)
    listeners_commands.register(app, dispatcher)
    listeners_actions.register(app, dispatcher)
    listeners_views.register(app, dispatcher)
    listeners_events.register(app, rt, ops)
    return app


class Bot:
    """One bot process; `start()` returns once it listens."""

    def __init__(self, settings: Settings, config: RunbookConfig, *, channel_rate: float = 1.0) -> None:
        self.settings = settings
        self.config = config
        self.channel_rate = channel_rate
        self.rt: Runtime | None = None
        self.app: AsyncApp | None = None
        self.outbox: OutboxWorker | None = None
        self.checks: CheckScheduler | None = None
        self.leader: Leadership | None = None
        self.mitigations: Mitigations | None = None
        self.comms: Communications | None = None
        self.comms_ops: CommsOps | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._readiness: Readiness | None = None
        self.url = ""

    async def start(self, *, http: bool = True, socket_mode: bool = False) -> None:
        self.rt = rt = await Runtime.create(self.settings, self.config, channel_rate=self.channel_rate)
        threads = IncidentThreads(rt, rt.store)
        authoriser = Authoriser(rt.io.client, self.config.mitigations.authorised_groups)
        # Only the replica holding the store's leader lock sweeps the scheduled checks.
        self.leader = Leadership(LeaderLock(rt.store.engine))
        self.checks = CheckScheduler(rt.store, self._run_check, leader=self.leader)
        jobs = JobQueue(rt.store, kick=rt.kick_outbox)
        recorder = Recorder(rt.store, open_audit_log(self.settings))
        thread = QueuedThread(jobs)
        opener = IncidentOpener(rt.store, jobs, self.settings.incident_channel)
        gate = Gate(authoriser, recorder)
        verification = Verification(rt.ctx, rt.store, self.checks, recorder, thread, opener, gate)
        flow = MitigationFlow(rt.ctx, rt.store, gate, recorder, thread, jobs, opener, verification)
        self.mitigations = Mitigations(flow, verification)
        messages = ThreadMessages(rt.store, rt.io, threads.thread)
        comms_flow = CommsFlow(
            rt.ctx,
            rt.store,
            gate,
            recorder,
            jobs,
            self.checks,
            Templates(self.config.comms.templates_dir, messages=SLACK),
        )
        self.comms = Communications(rt, threads, comms_flow)
        self.comms_ops = CommsOps(rt, threads)
        self.outbox = OutboxWorker(
            rt.store,
            {
                "post_parent": threads.op_post_parent,
                "post_blocks": threads.op_post_blocks,
                "update_parent": threads.op_update_parent,
                "post": threads.op_post,
                "post_plan": messages.op_post_plan,
                "update_plan": messages.op_update_plan,
                "post_outcome": messages.op_post_outcome,
                "thread_notice": messages.op_thread_notice,
                "triage": partial(steps.op_triage, rt, threads),
                "diagnose": partial(steps.op_diagnose, rt, threads),
                "export": partial(steps.op_export, rt, threads),
                "isolation_triage": partial(steps.op_isolation_triage, rt, threads),
                "apply_plan": self.mitigations.op_apply,
                "mitigation_expiry": self.mitigations.op_expiry,
                "post_notice": self.comms_ops.op_post_notice,
                "post_to": self.comms_ops.op_post_to,
                "annotate": self.comms_ops.op_annotate,
                "expire_silences": self.comms_ops.op_expire_silences,
            },
            on_quarantine=partial(tell_given_up, jobs),
            wake=rt.wake,
        )
        self.outbox.start()
        self.leader.start()
        self.checks.start()
        self.app = create_bolt_app(rt, threads, self.mitigations, self.comms, self.comms_ops)
        token = self.settings.alert_webhook_token
        webhook = AlertWebhook(
            threads,
            token.get_secret_value() if token else None,
            threshold=self.config.incidents.isolation_threshold,
            window_s=self.config.incidents.isolation_window_s,
        )
        self._runner = web.AppRunner(self._web_app(webhook), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port if http else 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.settings.host}:{port}"
        if socket_mode:
            if self.settings.slack_app_token is None:
                raise RuntimeError("SLACK_APP_TOKEN: required for Socket Mode")
            self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
            await self._socket.connect_async()

    async def _run_check(self, check: ScheduledCheck, late_s: float) -> dict:
        """A scheduled check of either kind: an SLO check after a mitigation, or the RCA reminder."""
        assert self.mitigations is not None
        if check.kind == RCA_REMINDER:
            return await self.comms_ops.remind_rca(check, late_s)
        return await self.mitigations.run_check(check, late_s)

    def _web_app(self, webhook: AlertWebhook) -> web.Application:
        web_app = web.Application()
        web_app.router.add_post("/slack/events", self._slack_events)
        web_app.router.add_post("/alerts/alertmanager", webhook.handle)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        web_app.router.add_get("/metrics", self._metrics)
        return web_app

    async def _slack_events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        assert self.app is not None
        response = await self.app.async_dispatch(await to_bolt_request(request))
        REQUEST_SECONDS.observe(time.perf_counter() - started)
        return await to_aiohttp_response(response)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        assert self.rt is not None
        if self._readiness is None:
            self._readiness = Readiness(self.rt)
        verdict = await self._readiness.check()
        return web.Response(status=200 if verdict.ready else 503, text=verdict.reason)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.checks is not None:
            self.checks.stop()
        if self.leader is not None:
            await self.leader.stop()
        if self.outbox is not None:
            await self.outbox.stop()
        if self.rt is not None:
            await self.rt.close()
