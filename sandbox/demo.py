"""`make demo`: fractal-lba in a box, the bot beside it, and an incident from the alert onwards.

The sandbox starts with the default world (or --world), the real Prometheus evaluates the
deployed FLKTenantSLOBreach rule (without its `for:` delay, so the demo need not wait two
minutes), the real Alertmanager calls the bot, and the bot opens one thread per breaching
tenant and triages it. The demo then asks for a triage of a healthy tenant by slash command,
as a person would, and prints every thread as it unfolds; the workspace page shows the same
threads as Slack would, live, and ends the demo's output (`--keep`: the world, the bot and the
page keep running until Ctrl-C). The bot runs as its own process (`flk serve`), exactly as
deployed; this module never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
import time
from pathlib import Path

from rich.console import Console

from sandbox.bot_process import bot_process
from sandbox.slack import SlackDriver
from sandbox.slack.models import Message, block_texts
from sandbox.testing import compressed_rules
from sandbox.up import Sandbox

console = Console(highlight=False)


def _headline(message: Message) -> str:
    """The first line a person sees: the first block's text, else the fallback text."""
    texts = block_texts(message.blocks) or [message.text]
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


class Transcript:
    """Prints new messages and edits of the incident channel as they happen."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.seen: dict[str, int] = {}

    def poll(self) -> None:
        channel = self.sb.incident_channel
        for parent in self.sb.slack.channel_messages(channel):
            self._show(parent, "")
            for reply in self.sb.slack.thread(channel, parent.ts)[1:]:
                self._show(reply, "  └ ")

    def _show(self, message: Message, prefix: str) -> None:
        version = len(message.edits)
        if self.seen.get(message.ts) == version:
            return
        verb = "edited" if message.ts in self.seen else "posted"
        self.seen[message.ts] = version
        text = _headline(message)
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {prefix}[cyan]{verb}[/] {text[:150]}", markup=True)


async def demo(world: Path | None, keep: bool = False) -> int:
    work = Path(tempfile.mkdtemp(prefix="flk-demo-"))
    rules = compressed_rules(work, window="5m")
    console.rule("flk-chatops demo")
    console.print("starting the sandbox: Slack emulator, Kubernetes fake, FLK backend, Prometheus, Alertmanager…")
    async with Sandbox(world, rule_files=[rules]) as sb:
        console.print(f"sandbox ready in {sb.startup_seconds:.1f} s; watch the workspace live at {sb.page.url}")
        # The default world has four unrelated breaches at once; show them as four incidents.
        runbook = (
            "incidents: {isolation_threshold: 10}\n"
            # Time compressed for the demo: SLIs over 20 s, checks 10 s and 20 s after a mitigation.
            "slo: {window: 20s}\n"
            "mitigations: {authorised_groups: [S_ONCALL], oncall_group: S_ONCALL, verify_delays_s: [10, 20]}\n"
            # The mitigated tenant's Slack Connect channel is #general here; stakeholders read #sre.
            f"comms: {{tenant_channels: {{{_remedied(sb)}: C_GENERAL}}, stakeholder_channel: C_SRE}}\n"
        )
        # The transcript is the show; the bot's own log lines, if any, as plain text.
        env = {"FLK_PROGRESS_INTERVAL_S": "0.5", "FLK_LOG_FORMAT": "text"}
        async with bot_process(sb, work, runbook, **env) as ready:
            console.print(ready)
            console.print("Alertmanager now notifies the bot; FLKTenantSLOBreach fires for every breaching tenant\n")
            assert sb.bot_url is not None
            code = await _follow(sb, Transcript(sb), sb.bot_url)
            console.rule("the workspace")
            console.print(f"every thread above, as Slack shows it, and yours to use: [bold]{sb.page.url}[/]")
            if keep:
                console.print("the world and the bot keep running; Ctrl-C stops them")
                await _until_interrupted()
            return code


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _follow(sb: Sandbox, transcript: Transcript, bot_url: str) -> int:
    tenants = sb.live.world.tenants
    breaching = [t for t, s in tenants.items() if s.scenario != "none"]
    healthy = [t for t, s in tenants.items() if s.scenario == "none"]
    typed = False
    deadline = time.monotonic() + 120
    async with SlackDriver(sb.slack, bot_url) as driver:
        while time.monotonic() < deadline:
            transcript.poll()
            verdicts = _verdicts(sb)
            if not typed and len(verdicts) >= len(breaching):
                for tenant in healthy:
                    console.print(f"\n[bold]@alice types[/] /flk triage {tenant}")
                    await driver.slash(f"triage {tenant}")
                typed = True
            if typed and len(verdicts) >= len(tenants):
                break
            await asyncio.sleep(0.5)
        transcript.poll()
        code = _summary(sb, _verdicts(sb))
        mitigated = await _mitigate(sb, transcript, driver)
        communicated = await _communicate(sb, transcript, driver)
    return code or (0 if mitigated and communicated else 1)


def _remedied(sb: Sandbox) -> str:
    """The tenant the demo mitigates, notifies and resolves: the first one with a remedy."""
    return next(t for t, s in sb.live.world.tenants.items() if s.remedy is not None)


async def _submit_modal(sb: Sandbox, driver: SlackDriver, callback_id: str) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        views = [v for v in sb.slack.views("U_ALICE", open_only=True) if v.callback_id == callback_id]
        if views:
            fields = [b.get("block_id") for b in views[-1].view.get("blocks", []) if b.get("type") == "input"]
            console.print(f"  modal [cyan]{callback_id}[/] pre-filled: {', '.join(map(str, fields))}; @alice submits")
            await driver.submit_view(views[-1].id)
            return True
        await asyncio.sleep(0.2)
    console.print(f"[red]no {callback_id} modal opened[/]")
    return False


async def _communicate(sb: Sandbox, transcript: Transcript, driver: SlackDriver) -> bool:
    """The runbook's §5.1, §6 and §7: the tenant notice, the resolve, the RCA draft written here."""
    tenant = _remedied(sb)
    console.rule(f"communicating about {tenant}")
    console.print(f"[bold]@alice types[/] /flk notify {tenant}")
    await driver.slash(f"notify {tenant}")
    if not await _submit_modal(sb, driver, "flk_notify") or not await _wait_text(sb, transcript, "notice was sent"):
        return False
    console.print(f"[bold]#general (the tenant's channel) reads:[/]\n{sb.slack.channel_messages('C_GENERAL')[-1].text}")
    console.print(f"[bold]@alice types[/] /flk resolve {tenant}")
    await driver.slash(f"resolve {tenant}")
    if not await _submit_modal(sb, driver, "flk_resolve") or not await _wait_text(sb, transcript, "RESOLVED"):
        return False
    console.print(f"[bold]#sre (stakeholders) reads:[/]\n{sb.slack.channel_messages('C_SRE')[-1].text}")
    console.print(f"[bold]@alice types[/] /flk rca {tenant}")
    before = len(sb.slack.files())
    await driver.slash(f"rca {tenant}")
    with contextlib.suppress(TimeoutError):
        await sb.slack.wait_for(lambda: len(sb.slack.files()) >= before + 2, timeout=15)
    files = sb.slack.files()[before:]
    if not files:
        console.print("[red]no RCA draft was uploaded[/]")
        return False
    for file in files:
        (Path.cwd() / file.name).write_bytes(file.content or b"")
        console.print(f"  wrote [cyan]{file.name}[/] ({file.length} bytes): {file.title}")
    return True


async def _mitigate(sb: Sandbox, transcript: Transcript, driver: SlackDriver) -> bool:
    """The runbook's §5 and §6 for one tenant: plan its remedy, confirm, watch the checks."""
    tenant, spec = next((t, s) for t, s in sb.live.world.tenants.items() if s.remedy is not None)
    assert spec.remedy is not None
    console.rule(f"mitigating {tenant}")
    console.print(f"[bold]@alice types[/] /flk mitigate {tenant} {spec.remedy.action}")
    await driver.slash(f"mitigate {tenant} {spec.remedy.action}")
    plan = await _wait_text(sb, transcript, "dry run")
    if plan is None:
        return False
    console.print("[bold]@alice presses[/] Confirm")
    await driver.click("flk_confirm", user="U_ALICE", channel=sb.incident_channel)
    last = await _wait_text(sb, transcript, "SLO check 2/2", wait_s=60)
    console.print(f"\nafter the mitigation: {last}" if last else "\nno verification check was posted")
    return bool(last and last.startswith(":white_check_mark:"))


async def _wait_text(sb: Sandbox, transcript: Transcript, marker: str, wait_s: float = 30) -> str | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        transcript.poll()
        channel = sb.incident_channel
        for parent in reversed(sb.slack.channel_messages(channel)):
            for reply in reversed(sb.slack.thread(channel, parent.ts)):
                text = reply.all_text()
                if marker in text:
                    return text.splitlines()[0]
        await asyncio.sleep(0.5)
    return None


def _verdicts(sb: Sandbox) -> dict[str, str]:
    found: dict[str, str] = {}
    channel = sb.incident_channel
    for parent in sb.slack.channel_messages(channel):
        for reply in sb.slack.thread(channel, parent.ts):
            # A triage summary: its header reads "Triage · <tenant> · <status>", then the verdict.
            texts = block_texts(reply.blocks)
            if texts and texts[0].startswith("Triage · ") and len(texts) > 1:
                found[texts[0].split(" · ")[1]] = texts[1].splitlines()[0].strip("*")
    return found


# What the bot's verdict says for each scenario of a world spec.
EXPECTED = {
    "signatures": "scenario A",
    "escalations": "scenario B",
    "quota": "scenario C",
    "policy": "scenario D",
    "none": "No breach",
}


def _summary(sb: Sandbox, verdicts: dict[str, str]) -> int:
    console.rule("what the bot concluded")
    ok = True
    for tenant, spec in sb.live.world.tenants.items():
        verdict = verdicts.get(tenant, "(no triage)")
        right = EXPECTED[spec.scenario] in verdict
        ok &= right
        mark = "[green]✓[/]" if right else "[red]✗[/]"
        console.print(f"{mark} {tenant:<12} world: {spec.scenario:<11} bot: {verdict}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo")
    parser.add_argument("--world", type=Path, help="world spec (default: the built-in default world)")
    parser.add_argument("--keep", action="store_true", help="keep the world, the bot and the page running until Ctrl-C")
    args = parser.parse_args(argv)
    return asyncio.run(demo(args.world, args.keep))


if __name__ == "__main__":
    raise SystemExit(main())
