"""The bot process: the Bolt app served over HTTP (and/or Socket Mode), the Alertmanager webhook,
/healthz, /readyz and /metrics, and the job worker that runs what the store queued."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import partial

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

import commands.incidents
import commands.triage
from bot.service.alerts import AlertWebhook
from bot.service.context import open_audit_log
from bot.service.jobs import JobHandler, JobWorker, Waker
from bot.service.leader import Leadership
from bot.service.readiness import Readiness
from bot.service.runtime import Runtime
from bot.service.scheduled import counted
from bot.service.settings import Settings
from bot.service.telemetry import REQUEST_SECONDS
from bot.slack import listeners_actions, listeners_commands, listeners_events, listeners_views, steps
from bot.slack.authz import Authoriser
from bot.slack.comms import Communications
from bot.slack.comms_ops import CommsOps
from bot.slack.dispatch import Dispatcher
from bot.slack.incidents import IncidentThreads
from bot.slack.interactions import InteractionRunner, Interactions
from bot.slack.mitigations import Mitigations
from bot.slack.mrkdwn import SLACK
from bot.slack.thread import ThreadMessages, tell_given_up
from commands.comms import Templates
from commands.config import RunbookConfig
from commands.flows.comms import CommsFlow
from commands.flows.gate import Gate
from commands.flows.incidents import IncidentOpener
from commands.flows.jobs import Job, JobQueue
from commands.flows.mitigation import MitigationFlow
from commands.flows.queued_thread import QueuedThread
from commands.flows.record import Recorder
from commands.flows.verification import Verification
from integrations.store.leader import LeaderLock

log = logging.getLogger(__name__)
assert commands.incidents and commands.diagnose and commands.export and commands.mitigate


def create_bolt_app(rt: Runtime, dispatcher: Dispatcher, interactions: Interactions) -> AsyncApp:
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

    listeners_commands.register(app, dispatcher, interactions)
    listeners_actions.register(app, dispatcher, interactions)
    listeners_views.register(app, dispatcher, interactions)
    listeners_events.register(app, rt, interactions)
    return app


class Bot:
    """One bot process; `start()` returns once it listens. ``front``: the Slack and Alertmanager
    endpoints (verify, parse, ack, queue); ``worker``: the job worker. Both (the default) is one
    process doing everything; `flk serve` runs the front with worker processes beside it."""

    def __init__(self, settings: Settings, config: RunbookConfig, *, channel_rate: float = 1.0) -> None:
        self.settings = settings
        self.config = config
        self.channel_rate = channel_rate
        self.rt: Runtime | None = None
        self.app: AsyncApp | None = None
        self.jobs: JobWorker | None = None
        self.leader: Leadership | None = None
        self.mitigations: Mitigations | None = None
        self.comms: Communications | None = None
        self.comms_ops: CommsOps | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._readiness: Readiness | None = None
        self.url = ""

    async def start(
        self, *, http: bool = True, socket_mode: bool = False, front: bool = True, worker: bool = True
    ) -> None:
        self.rt = rt = await Runtime.create(self.settings, self.config, channel_rate=self.channel_rate)
        threads = IncidentThreads(rt, rt.store)
        authoriser = Authoriser(rt.io.client, self.config.mitigations.authorised_groups)
        # Only the replica holding the store's leader lock sweeps the queue for given-up jobs.
        self.leader = Leadership(LeaderLock(rt.store.engine))
        # A worker here is woken by what this process queues; a front alone queues for others.
        waker = Waker(rt.wake) if worker else None
        jobs = JobQueue(rt.store, kick=waker.now, wake_at=waker.at) if waker else JobQueue(rt.store)
        recorder = Recorder(rt.store, open_audit_log(self.settings))
        thread = QueuedThread(jobs)
        opener = IncidentOpener(rt.store, jobs, self.settings.incident_channel)
        gate = Gate(authoriser, recorder)
        verification = Verification(rt.ctx, rt.store, jobs, recorder, thread, opener, gate)
        flow = MitigationFlow(rt.ctx, rt.store, gate, recorder, thread, jobs, opener, verification)
        self.mitigations = Mitigations(flow, verification)
        messages = ThreadMessages(rt.store, rt.io, threads.thread)
        comms_flow = CommsFlow(
            rt.ctx,
            rt.store,
            gate,
            recorder,
            jobs,
            Templates(self.config.comms.templates_dir, messages=SLACK),
        )
        self.comms = Communications(rt, threads, comms_flow)
        self.comms_ops = CommsOps(rt, threads)
        dispatcher = Dispatcher(rt, threads, self.mitigations, self.comms)
        if worker:
            handlers = self._handlers(rt, threads, messages)
            handlers[Job.INTERACTION] = InteractionRunner(dispatcher, self.comms_ops).op_interaction
            self.jobs = JobWorker(
                rt.store,
                handlers,
                # Alone, it learns of the front's jobs by its poll (a read): poll often.
                poll_s=0.25 if front else 0.1,
                on_quarantine=partial(tell_given_up, jobs),
                waker=waker,
                leader=self.leader,
                lease=timedelta(seconds=self.settings.job_lease_s),
            )
            self.jobs.start()
            self.leader.start()
        webhook: AlertWebhook | None = None
        if front:
            self.app = create_bolt_app(rt, dispatcher, Interactions(jobs))
            token = self.settings.alert_webhook_token
            webhook = AlertWebhook(
                threads,
                token.get_secret_value() if token else None,
                threshold=self.config.incidents.isolation_threshold,
                window_s=self.config.incidents.isolation_window_s,
            )
        if front or http:
            self._runner = web.AppRunner(self._web_app(webhook), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port if http else 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://{self.settings.host}:{port}"
        if socket_mode and front:
            if self.settings.slack_app_token is None:
                raise RuntimeError("SLACK_APP_TOKEN: required for Socket Mode")
            assert self.app is not None
            self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
            await self._socket.connect_async()

    def _handlers(self, rt: Runtime, threads: IncidentThreads, messages: ThreadMessages) -> dict[Job, JobHandler]:
        """Every job kind's handler but the interactions' (see start)."""
        assert self.mitigations is not None and self.comms_ops is not None
        return {
            Job.POST_PARENT: threads.op_post_parent,
            Job.POST_BLOCKS: threads.op_post_blocks,
            Job.UPDATE_PARENT: threads.op_update_parent,
            Job.POST: threads.op_post,
            Job.POST_PLAN: messages.op_post_plan,
            Job.UPDATE_PLAN: messages.op_update_plan,
            Job.POST_OUTCOME: messages.op_post_outcome,
            Job.THREAD_NOTICE: messages.op_thread_notice,
            Job.TRIAGE: partial(steps.op_triage, rt, threads),
            Job.DIAGNOSE: partial(steps.op_diagnose, rt, threads),
            Job.EXPORT: partial(steps.op_export, rt, threads),
            Job.ISOLATION_TRIAGE: partial(steps.op_isolation_triage, rt, threads),
            Job.APPLY_PLAN: self.mitigations.op_apply,
            Job.MITIGATION_EXPIRY: self.mitigations.op_expiry,
            Job.POST_NOTICE: self.comms_ops.op_post_notice,
            Job.POST_TO: self.comms_ops.op_post_to,
            Job.ANNOTATE: self.comms_ops.op_annotate,
            Job.EXPIRE_SILENCES: self.comms_ops.op_expire_silences,
            # Metric labels as before the checks became jobs: dashboards keep their series.
            Job.SLO_CHECK: counted("slo", self.mitigations.run_check),
            Job.RCA_REMINDER: counted("rca_reminder", self.comms_ops.remind_rca),
        }

    def _web_app(self, webhook: AlertWebhook | None) -> web.Application:
        web_app = web.Application()
        if webhook is not None:  # a worker alone serves only its health and metrics
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
        if self.leader is not None:
            await self.leader.stop()
        if self.jobs is not None:
            await self.jobs.stop()
        if self.rt is not None:
            await self.rt.close()
