"""Every Slack listener the real Bolt app registers, and every `/flk` verb, is classified here: a
listener or verb that changes the cluster or speaks outside the incident thread is driven by an
outsider (U_CAROL, in no authorised group) with a signed request, and must change nothing and
leave a `refused` record naming its action on the audit log. A listener or verb added without a
row here fails the test, so a new mutating path cannot skip the gate unnoticed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from commands.flows.jobs import Job
from commands.registry import REGISTRY
from sandbox.slack.models import View
from sandbox.up import Sandbox
from tests.bot.harness import Harness, runbook_files, running
from tests.bot.test_properties import forged_click

CONFIG = """\
mitigations: {authorised_groups: [S_ONCALL]}
comms: {stakeholder_channel: C_SRE}
"""

# (kind, what it listens to) -> the mutating actions it leads to, or () when it changes nothing
# and speaks only in the incident thread (or to the person who asked).
LISTENERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("command", "^/flk"): ("by verb",),
    ("action", "^flk_(confirm|cancel|undo|retry_restart|extend)$"): (
        "mitigation.confirm",
        "mitigation.cancel",
        "mitigation.undo",
        "mitigation.retry_restart",
        "mitigation.extend",
    ),
    ("action", "^flk_run:"): ("by verb",),
    ("view_submission", "flk_notify"): ("notify.send",),
    ("view_submission", "flk_resolve"): ("resolve.submit",),
    ("event", "reaction_added"): (),  # a pinned thread message joins the bot's own timeline
}
# `/flk` verbs (typed, or run by a flk_run: button) and the gate action each must pass.
MUTATING_VERBS = {
    "mitigate": "mitigation.plan",
    "undo": "mitigation.undo",
    "extend": "mitigation.extend",
    "verify": "verify.schedule",
    "notify": "notify.open",
    "resolve": "resolve.open",
    "silence": "silence.create",
}
# Reads, or posts in the incident thread only (a triage, a diagnosis, an export, the RCA draft).
READ_VERBS = {"triage", "diagnose", "export", "status", "incidents", "help", "rca"}


def _constraint(listener: Any) -> tuple[str, str]:
    """What a Bolt listener listens to: the builtin matcher's kind and its constraint."""
    for matcher in listener.matchers:
        for cell in getattr(matcher, "func", lambda: None).__closure__ or ():
            inner = cell.cell_contents
            if not callable(inner) or not getattr(inner, "__closure__", None):
                continue
            kind = inner.__qualname__.split(".")[0]
            for c in inner.__closure__:
                value = c.cell_contents
                if isinstance(value, re.Pattern):
                    return kind, value.pattern
                if isinstance(value, str):
                    return kind, value
                if isinstance(value, dict) and "type" in value:
                    return kind, str(value["type"])
    raise AssertionError(f"cannot tell what {listener.ack_function.__name__} listens to")


@dataclass
class Gated:
    h: Harness
    tenant: str
    plan_id: str
    notify: View
    resolve: View


@pytest.fixture(scope="module")
async def gated(sandbox: Sandbox) -> AsyncIterator[Gated]:
    """A bot of its own; U_ALICE (authorised) has a plan posted and both modals open."""
    async with running(sandbox, **runbook_files(CONFIG, "flk-gate-")) as h:
        tenant = next(t for t, s in sandbox.live.world.tenants.items() if s.scenario == "quota")
        assert (await h.driver.slash(f"mitigate {tenant} quota", user="U_ALICE")).status == 200
        await h.thread_ts(tenant)

        def plan_id() -> str | None:
            found = [re.search(r"Plan `([^`]+)`", m.all_text()) for m in h.thread(tenant)]
            return next((f.group(1) for f in found if f), None)

        pid = await sandbox.slack.wait_for(plan_id, 15)
        views = []
        for verb, callback in (("notify", "flk_notify"), ("resolve", "flk_resolve")):
            assert (await h.driver.slash(f"{verb} {tenant}", user="U_ALICE")).status == 200

            def opened(callback: str = callback) -> View | None:
                found = [v for v in sandbox.slack.views("U_ALICE", open_only=True) if v.callback_id == callback]
                return found[-1] if found else None

            views.append(await sandbox.slack.wait_for(opened, 15))
        yield Gated(h, tenant, pid, *views)


def test_every_listener_and_verb_is_classified(gated: Gated) -> None:
    app = gated.h.bot.app
    assert app is not None
    registered = [_constraint(listener) for listener in app._async_listeners]
    assert len(registered) == len(set(registered)), registered
    assert set(registered) == set(LISTENERS), "classify each Slack listener in LISTENERS"
    assert set(REGISTRY) == set(MUTATING_VERBS) | READ_VERBS, "classify each /flk verb"
    assert not set(MUTATING_VERBS) & READ_VERBS


def world(h: Harness) -> tuple[Any, ...]:
    """What an outsider must not move in the world: every ConfigMap and every channel's messages
    (the modal they submit closes, as Slack closes any submitted modal)."""
    ns = h.sandbox.live.world.namespace
    maps = sorted(
        (o["metadata"]["name"], json.dumps(o.get("data"))) for o in h.sandbox.kube_store.list("configmaps", ns)
    )
    slack = h.sandbox.slack
    channels = [len(slack.channel_messages(c, replies=True)) for c in slack.workspace.channels]
    return tuple(maps), tuple(channels)


async def store_state(h: Harness) -> tuple[Any, ...]:
    assert h.bot.rt is not None
    store = h.bot.rt.store
    incidents = [(i.id, i.state) for i in await store.open_incidents()]
    checks: list[tuple[Any, ...]] = []
    plans: list[tuple[Any, ...]] = []
    for incident_id, _ in incidents:
        checks += [(c.id, c.state) for c in await store.jobs.for_incident(incident_id, ops=[Job.SLO_CHECK])]
        plans += [(p.id, p.state) for p in await store.plans.for_incident(incident_id)]
    return tuple(incidents), tuple(checks), tuple(plans)


def refusals(h: Harness) -> list[tuple[str, str]]:
    lines = Path(h.bot.settings.audit_log).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["actor"], r["details"]["action"]) for r in records if r["action"] == "refused"]


Drive = Callable[[Gated], Awaitable[Any]]


def slash(text: str) -> Drive:
    async def drive(g: Gated) -> Any:
        return await g.h.driver.slash(text.format(t=g.tenant, plan=g.plan_id), user="U_CAROL")

    return drive


def button(action_id: str, value: str = "{plan}") -> Drive:
    """The button as the outsider sends it (whether or not it is on a message they can see)."""

    async def drive(g: Gated) -> Any:
        body = forged_click(g.h, action_id, value.format(t=g.tenant, plan=g.plan_id), "U_CAROL")
        return await g.h.driver._interactive(body, False, "valid", None, None)

    return drive


def submit(which: str) -> Drive:
    async def drive(g: Gated) -> Any:
        view: View = getattr(g, which)
        return await g.h.driver.submit_view(view.id, user="U_CAROL")

    return drive


# Each mutating path and the refusal it must leave.
OUTSIDER = [
    ("/flk mitigate", slash("mitigate {t} quota"), "mitigation.plan"),
    ("/flk undo", slash("undo {plan}"), "mitigation.undo"),
    ("/flk verify", slash("verify {t} in 1m"), "verify.schedule"),
    ("/flk notify", slash("notify {t}"), "notify.open"),
    ("/flk resolve", slash("resolve {t}"), "resolve.open"),
    ("/flk silence", slash("silence {t} 1h noisy"), "silence.create"),
    ("Confirm", button("flk_confirm"), "mitigation.confirm"),
    ("Cancel", button("flk_cancel"), "mitigation.cancel"),
    ("Undo", button("flk_undo"), "mitigation.undo"),
    ("Retry the restart", button("flk_retry_restart"), "mitigation.retry_restart"),
    ("Extend", button("flk_extend"), "mitigation.extend"),
    ("/flk extend", slash("extend {plan} 1h"), "mitigation.extend"),
    ("flk_run: mitigate", button("flk_run:mitigate", "mitigate {t} quota"), "mitigation.plan"),
    ("notify Send", submit("notify"), "notify.send"),
    ("resolve Submit", submit("resolve"), "resolve.submit"),
]


def test_the_outsider_rows_cover_every_mutating_action() -> None:
    covered = {action for _, _, action in OUTSIDER}
    listed = {a for actions in LISTENERS.values() for a in actions if a != "by verb"}
    assert listed | set(MUTATING_VERBS.values()) == covered


@pytest.mark.parametrize(("what", "drive", "action"), OUTSIDER, ids=[row[0] for row in OUTSIDER])
async def test_an_outsider_changes_nothing_and_is_audited_as_refused(
    gated: Gated, what: str, drive: Drive, action: str
) -> None:
    h = gated.h
    before, stored = world(h), await store_state(h)
    seen = refusals(h).count(("U_CAROL", action))
    delivery = await drive(gated)
    assert delivery.status == 200, (what, delivery)
    deadline = asyncio.get_running_loop().time() + 10
    while refusals(h).count(("U_CAROL", action)) <= seen:
        assert asyncio.get_running_loop().time() < deadline, f"{what}: no `refused` record for {action}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything the path did after the refusal would show by now
    assert world(h) == before, what
    assert await store_state(h) == stored, what
