"""`flk`: the bot's command line. `flk serve` runs the bot; `flk triage <tenant>` runs a step in a
terminal, for the day Slack is down; `flk sandbox ...` runs fractal-lba in a box."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from rich.console import Console

EXIT_USAGE = 2


def _settings():  # type: ignore[no-untyped-def]
    from bot.service.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        print(f"flk: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


async def _serve(socket_mode: bool) -> int:
    from bot.service.app import Bot
    from integrations.store import StoreConfigError

    settings, config = _settings()
    bot = Bot(settings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bot.start(http=True, socket_mode=socket_mode)
    except StoreConfigError as exc:
        print(f"flk: FLK_DATABASE_URL: {exc}", file=sys.stderr)
        await bot.stop()
        return EXIT_USAGE
    except OSError as exc:
        print(f"flk: cannot listen on {settings.listen}: {exc.strerror}", file=sys.stderr)
        await bot.stop()
        return 1
    mode = " + Socket Mode" if socket_mode else ""
    print(f"flk ready: {bot.url}/slack/events{mode}", flush=True)
    await stop.wait()
    await bot.stop()
    return 0


async def _triage(tenant: str) -> int:
    import commands.triage  # noqa: F401
    from bot.service.runtime import build_context
    from bot.terminal.report import print_report
    from commands.registry import UsageError, parse
    from commands.triage import run_triage

    console = Console()
    try:
        invocation = parse(f"triage {tenant}")
    except UsageError as exc:
        console.print(exc.text("flk"), markup=False)
        return EXIT_USAGE
    settings, config = _settings()
    ctx = await build_context(settings, config)
    try:
        refusal = await ctx.tenants.refuse(invocation.args["tenant"])
        if refusal:
            console.print(refusal, markup=False)
            return EXIT_USAGE
        with console.status(f"triage of {tenant}…"):
            report = await run_triage(ctx, invocation.args["tenant"])
        print_report(report, console)
    finally:
        await ctx.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        from sandbox.cli import main as sandbox_main

        return sandbox_main(argv[1:])
    if argv[:1] == ["audit"]:
        from commands.audit import audit_main

        return audit_main(argv[1:])
    parser = argparse.ArgumentParser(prog="flk", description="Tenant SLO Breach runbook bot")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP mode; --socket-mode adds Socket Mode)")
    serve.add_argument("--socket-mode", action="store_true")
    triage = sub.add_parser("triage", help="runbook §3 triage of a tenant, in the terminal")
    triage.add_argument("tenant")
    sub.add_parser("sandbox", help="fractal-lba in a box: `flk sandbox up --help`")
    sub.add_parser("audit", help="`flk audit verify [PATH]`: check the audit log's hash chain")
    doctor = sub.add_parser("doctor", help="check every configured connection, a line each; exit 1 if any fails")
    doctor.add_argument(
        "--slack-manifest", help="Slack app manifest to compare scopes with (default: deploy/slack-app-manifest.yaml)"
    )
    args = parser.parse_args(argv)
    from bot.service.logs import configure
    from bot.service.settings import secret_values

    # From the environment, before the settings are validated, so that no line ever holds a
    # secret; a bad FLK_LOG_FORMAT stops start-up with the other settings' errors.
    fmt = "text" if os.environ.get("FLK_LOG_FORMAT") == "text" else "json"
    configure(fmt, secret_values(os.environ))
    if args.cmd == "doctor":
        from bot.service.doctor import doctor as run_doctor

        return asyncio.run(run_doctor(manifest=args.slack_manifest))
    if args.cmd == "serve":
        return asyncio.run(_serve(args.socket_mode))
    return asyncio.run(_triage(args.tenant))


if __name__ == "__main__":
    raise SystemExit(main())
