"""The whole chain with no typed command: a tenant breaches in the sandbox, the real Prometheus
evaluates the deployed FLKTenantSLOBreach rule, the real Alertmanager calls the bot, the bot
opens one thread with the tenant's triage; the breach recedes and the parent message says so.

Time is compressed (a 20 s rate window instead of 5 m, in the rule and in the bot's SLIs) so
the breach fires and resolves in seconds; tests/deploy checks the rule itself as deployed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp

from sandbox.slack import SlackDriver
from sandbox.testing import compressed_rules, sandbox_for, small_world_yaml
from tests.bot.harness import Harness, start_bot, verdict_line


async def test_a_breach_fires_the_rule_and_opens_one_thread_with_triage() -> None:
    folder = Path(tempfile.mkdtemp(prefix="flk-e2e-"))
    rules = compressed_rules(folder)
    config = folder / "runbook.yaml"
    config.write_text("slo: {window: 20s}\n")
    world = small_world_yaml({"kappa-2": 0.004, "lumen": 0.003, "marsh-7": 0.005}, namespace="e2e")
    async with sandbox_for(world, rule_files=[rules]) as sb:
        bot = await start_bot(sb, FLK_CONFIG=str(config))
        driver = SlackDriver(sb.slack, f"{bot.url}/slack/events")
        try:
            await sb.set_alert_webhook(f"{bot.url}/alerts/alertmanager")
            h = Harness(sb, bot, driver)
            async with aiohttp.ClientSession() as http:
                answer = await http.post(
                    f"{sb.backend.url}/sandbox/breach", json={"tenant": "lumen", "scenario": "signatures"}
                )
                assert answer.status == 200
                summary = await h.wait_summary("lumen", wait_s=60)
                assert "Likely scenario A · signature failures" in verdict_line(summary)
                parent = h.parent("lumen")
                assert parent is not None
                assert "P2 · FLKTenantSLOBreach · lumen*" in parent.all_text()
                assert "signature-error ratio" in parent.all_text()
                top_level = [m for m in sb.slack.channel_messages(h.channel) if "lumen" in m.all_text()]
                assert len(top_level) == 1
                # Only the breaching tenant got an incident.
                assert await bot.rt.store.find_open("kappa-2") is None  # type: ignore[union-attr]
                answer = await http.post(
                    f"{sb.backend.url}/sandbox/breach", json={"tenant": "lumen", "scenario": "recover"}
                )
                assert answer.status == 200
                await sb.slack.wait_for(lambda: "alert resolved at" in h.parent("lumen").all_text(), timeout=60)  # type: ignore[union-attr]
            incident = await bot.rt.store.find_open("lumen")  # type: ignore[union-attr]
            assert incident is not None and incident.state == "open"
        finally:
            await driver.close()
            await bot.stop()
