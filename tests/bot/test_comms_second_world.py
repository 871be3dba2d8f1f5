"""Communications on the second world (other tenant names and numbers): the incident opened by a
triage, then notified, resolved and its RCA drafted through Slack; what is said comes from that
world's own verdict."""

from __future__ import annotations

import re

from commands.models import SCENARIO_TITLE
from sandbox.up import Sandbox
from tests.bot.harness import runbook_files, running
from tests.bot.test_comms_slack import channel_texts, initial, open_view

_PHRASE = r"(an elevated share of escalated requests|elevated signature verification failures)"
_NUMBERS = r" \([0-9.]+% of requests; objective: at most [0-9.]+%\)"
MEASURED = re.compile(f"{_PHRASE}{_NUMBERS}( and {_PHRASE}{_NUMBERS})?")


async def test_a_second_world_incident_from_triage_to_rca(second_sandbox: Sandbox) -> None:
    tenant, spec = next((t, s) for t, s in second_sandbox.live.world.tenants.items() if s.scenario != "none")
    config = (
        "mitigations: {authorised_groups: [S_ONCALL]}\n"
        f"comms: {{tenant_channels: {{{tenant}: C_GENERAL}}, stakeholder_channel: C_SRE}}\n"
    )
    slack = second_sandbox.slack
    async with running(second_sandbox, **runbook_files(config, "flk-comms2-")) as h:
        driver = h.driver
        await driver.slash(f"triage {tenant}")
        await h.wait_summary(tenant)
        await driver.slash(f"notify {tenant}")
        view = await slack.wait_for(lambda: open_view(h, "flk_notify"))
        # No alert opened this incident: the notice states what the triage measured, against its SLO.
        degraded = initial(view, "degraded")
        assert MEASURED.fullmatch(degraded), degraded
        await driver.submit_view(view.id)
        await slack.wait_for(
            lambda: any(
                t.startswith(f"*[P2] Service degradation for tenant {tenant}*") for t in channel_texts(h, "C_GENERAL")
            )
        )
        await driver.click("flk_run:resolve", channel=h.channel, ts=await h.thread_ts(tenant))
        view = await slack.wait_for(lambda: open_view(h, "flk_resolve"))
        root_cause = initial(view, "root_cause")
        assert SCENARIO_TITLE[spec.scenario] in root_cause, root_cause
        await driver.submit_view(view.id)
        await slack.wait_for(
            lambda: any(f"*RESOLVED: {tenant} SLO breach*" in t and root_cause in t for t in channel_texts(h, "C_SRE"))
        )
        await driver.slash(f"rca {tenant}")
        prefix = f"rca-{tenant}-"
        rca = await slack.wait_for(lambda: next((f for f in slack.files() if f.name.startswith(prefix)), None))
        document = (rca.content or b"").decode()
        assert tenant in document and SCENARIO_TITLE[spec.scenario] in document
        degraded_section = document.split("## What was degraded\n\n", 1)[1].split("\n\n", 1)[0]
        assert "measured at" in degraded_section and "(SLO " in degraded_section, degraded_section
