"""/flk diagnose and /flk export through Slack: streamed into the incident thread, with the
chart and the CSV as files; the verdict each world intends, on two worlds."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.bot.harness import Harness, triage_once


async def diagnose_once(h: Harness, tenant: str, scenario: str = "") -> str:
    before = len(h.summaries(tenant, step="Diagnose"))
    delivery = await h.driver.slash(f"diagnose {tenant} {scenario}".strip())
    assert delivery.status == 200
    await h.thread_ts(tenant)
    await h.sandbox.slack.wait_for(lambda: len(h.summaries(tenant, step="Diagnose")) > before, timeout=30)
    return h.summaries(tenant, step="Diagnose")[-1].all_text()


async def check_diagnoses(h: Harness) -> None:
    tenants = h.sandbox.live.world.tenants
    for tenant in tenants:
        await triage_once(h, tenant)
    # No scenario given: each diagnosis runs the one its triage found likely (all for the healthy one).
    texts = await asyncio.gather(*(diagnose_once(h, t) for t in tenants))
    for (tenant, spec), text in zip(tenants.items(), texts, strict=True):
        expected = spec.verdict if spec.scenario != "none" else "nothing wrong found"
        assert expected in text, (tenant, text[:400])
    breaching = next(t for t, s in tenants.items() if s.scenario != "none")
    chart = await h.sandbox.slack.wait_for(
        lambda: next((f for f in h.sandbox.slack.files() if f.name == f"diagnose-{breaching}-trend.png"), None),
        timeout=20,
    )
    assert chart.content is not None and chart.content.startswith(b"\x89PNG")


async def test_diagnose_reaches_the_intended_verdict_on_the_default_world(harness: Harness) -> None:
    await check_diagnoses(harness)


async def test_diagnose_reaches_the_intended_verdict_on_a_second_world(second_harness: Harness) -> None:
    await check_diagnoses(second_harness)


async def test_export_uploads_the_newest_escalations_as_csv(harness: Harness) -> None:
    tenant = next(t for t, s in harness.sandbox.live.world.tenants.items() if s.scenario == "escalations")
    before = len(harness.sandbox.slack.files())
    await harness.driver.slash(f"export {tenant} escalations 25")
    upload = await harness.sandbox.slack.wait_for(
        lambda: next((f for f in harness.sandbox.slack.files()[before:] if f.name.endswith(".csv")), None), timeout=30
    )
    rows = list(csv.DictReader(io.StringIO(upload.content.decode())))
    assert len(rows) == 25
    assert rows == sorted(rows, key=lambda r: r["ts"], reverse=True)


@pytest.mark.parametrize("text", ["export acme escalations lots", "export acme escalations 100000000", "export acme"])
async def test_export_bad_input_gets_usage(harness: Harness, text: str) -> None:
    delivery = await harness.driver.slash(text)
    assert delivery.status == 200
    # Slack shows &lt; as <: the usage reads `/flk export <tenant> escalations [n]`.
    assert "Usage: `/flk export &lt;tenant&gt; escalations [n]`" in delivery.body
