"""`make screenshots`: PNGs of the workspace page's main views for the README, taken in Debian's
chromium (Playwright, a dev dependency) from the default world with the bot running beside it:
an incident's triage thread with its chart, a mitigation plan with its Confirm dialog, and the
resolve modal. Written to docs/screenshots/ (or --out)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from sandbox.bot_process import bot_process
from sandbox.testing import compressed_rules
from sandbox.up import Sandbox

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TENANT = "acme"  # the default world's scenario B tenant, with a degraded-mode remedy
RUNBOOK = (
    "incidents: {isolation_threshold: 10}\n"
    "slo: {window: 20s}\n"
    "mitigations: {authorised_groups: [S_ONCALL], oncall_group: S_ONCALL}\n"
    "comms: {stakeholder_channel: C_SRE}\n"
)
WAIT_MS = 90_000


async def take(out: Path, chromium: str) -> list[Path]:
    from playwright.async_api import async_playwright, expect

    work = Path(tempfile.mkdtemp(prefix="flk-screenshots-"))
    shots: list[Path] = []
    async with (
        Sandbox(rule_files=[compressed_rules(work, window="5m")]) as sb,
        bot_process(sb, work, RUNBOOK, FLK_LOG_FORMAT="text"),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=chromium)
        page = await browser.new_page(viewport={"width": 1600, "height": 1100}, device_scale_factor=1)
        await page.goto(f"{sb.page.url}#user=U_ALICE")
        parent = page.locator("#messages .message", has_text=f"FLKTenantSLOBreach · {TENANT}")
        await parent.locator(".thread-summary").click(timeout=WAIT_MS)
        thread = page.locator("#thread")
        summary = thread.locator(".message", has=page.locator(".block-header", has_text=f"Triage · {TENANT}"))
        await summary.wait_for(timeout=WAIT_MS)
        chart = thread.locator(".file-image img")
        await chart.wait_for(timeout=WAIT_MS)
        await chart.evaluate("img => img.decode()")
        # The thread at its widest (the world panel folded away), from the verdict to the chart.
        await page.locator("#world-toggle").click()
        await page.set_viewport_size({"width": 1600, "height": 1750})
        await summary.evaluate("node => node.scrollIntoView({block: 'start'})")
        shots.append(out / "triage-thread.png")
        await page.screenshot(path=shots[-1])
        await page.locator("#world-toggle").click()
        await page.set_viewport_size({"width": 1600, "height": 1100})

        await page.locator("#composer-input").fill(f"/flk mitigate {TENANT} degraded-mode")
        await page.locator("#composer-input").press("Enter")
        plan = thread.locator(".message", has_text=f"Mitigation degraded-mode for {TENANT}: dry run")
        await plan.locator('[data-action-id="flk_confirm"]').click(timeout=WAIT_MS)
        await page.locator(".dialog").wait_for()
        shots.append(out / "plan-confirm.png")
        await page.screenshot(path=shots[-1])
        await page.locator(".dialog-confirm").click()
        await expect(thread.locator(".message", has_text=f"Applied degraded-mode for {TENANT}")).to_have_count(1)

        await parent.locator('[data-action-id="flk_run:resolve"]').click()
        await page.locator('.modal[data-callback-id="flk_resolve"]').wait_for(timeout=WAIT_MS)
        shots.append(out / "resolve-modal.png")
        await page.screenshot(path=shots[-1])
        await browser.close()
    shutil.rmtree(work, ignore_errors=True)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the PNGs (default: {OUT})")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("screenshots: Debian's chromium is not installed (`make debs` installs it)", file=sys.stderr)
        return 1
    try:
        import playwright  # noqa: F401  (a dev dependency)
    except ImportError:
        print("screenshots: Playwright is a dev dependency (`make venv` installs it)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for shot in asyncio.run(take(args.out, chromium)):
        print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
