"""`flk`: the bot's command line. `flk serve` runs the bot (the front and its worker processes;
`flk worker` runs workers alone); every runbook verb (the same registry
Slack's `/flk` is parsed from) runs in a terminal, for the day Slack is down; `flk sandbox ...`
runs fractal-lba in a box; `flk audit verify` checks the audit log."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from bot.service.app import Bot
    from bot.service.settings import Settings
    from bot.service.workers import WorkerPool

EXIT_USAGE = 2
# Verbs that only make sense in Slack (they open a modal or list Slack's own help).
_SLACK_ONLY = {"help"}


def _settings(cls: type | None = None):  # type: ignore[no-untyped-def]
    from bot.service.settings import Settings, SettingsError, load_settings

    try:
        return load_settings(cls=cls or Settings)
    except SettingsError as exc:
        print(f"flk: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


async def _serve(socket_mode: bool, workers: int | None) -> int:
    """The front with ``workers`` worker processes; 0: the job worker in the front's process;
    None: no worker at all (they run elsewhere, `flk worker`)."""
    from bot.service.app import Bot
    from bot.service.workers import WorkerPool

    settings, config = _settings()
    bot = Bot(settings, config)
    pool = WorkerPool(workers) if workers else None
    return await _run(bot, settings, http=True, socket_mode=socket_mode, worker=workers == 0, pool=pool)


async def _worker(http: bool) -> int:
    """Job workers alone: no Slack or Alertmanager endpoint (health and metrics with ``http``)."""
    from bot.service.app import Bot

    settings, config = _settings()
    return await _run(Bot(settings, config), settings, http=http, socket_mode=False, front=False)


async def _run(
    bot: Bot,
    settings: Settings,
    *,
    http: bool,
    socket_mode: bool,
    front: bool = True,
    worker: bool = True,
    pool: WorkerPool | None = None,
) -> int:  # type: ignore[no-untyped-def]
    from integrations.store import StoreConfigError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bot.start(http=http, socket_mode=socket_mode, front=front, worker=worker)
        if pool is not None:
            await pool.start()
    except StoreConfigError as exc:
        print(f"flk: FLK_DATABASE_URL: {exc}", file=sys.stderr)
        await bot.stop()
        return EXIT_USAGE
    except OSError as exc:
        print(f"flk: cannot listen on {settings.listen}: {exc.strerror}", file=sys.stderr)
        await bot.stop()
        return 1
    if front:
        mode = " + Socket Mode" if socket_mode else ""
        workers = f" ({len(pool.pids)} worker processes)" if pool is not None else ""
        print(f"flk ready: {bot.url}/slack/events{mode}{workers}", flush=True)
    else:
        print(f"flk worker ready (pid {os.getpid()})" + (f": {bot.url}/healthz" if http else ""), flush=True)
    await stop.wait()
    if pool is not None:
        await pool.stop()
    await bot.stop()
    return 0


async def _verb(args: argparse.Namespace) -> int:
    from bot.service.compose import terminal_deps
    from bot.service.settings import TerminalSettings
    from bot.terminal.verbs import Options, Verbs
    from commands.registry import UsageError, parse

    console = Console(stderr=False)
    options = Options(
        json=args.json,
        out=getattr(args, "out", None),
        yes=getattr(args, "yes", False),
        send=getattr(args, "send", False),
    )
    text = " ".join([args.cmd, *args.words])
    if args.cmd == "mitigate" and args.confirm:
        invocation = None
    else:
        try:
            invocation = parse(text)
        except UsageError as exc:
            console.print(exc.text("flk"), markup=False)
            return EXIT_USAGE
    settings, config = _settings(TerminalSettings)
    deps = await terminal_deps(settings, config)
    try:
        verbs = Verbs(deps, console, options)
        if invocation is None:
            return await verbs.confirm(args.confirm)
        if args.cmd == "undo":
            return await verbs.undo(invocation.args["plan_id"])
        return await verbs.run(invocation.verb.name, invocation.args, text)
    except UsageError as exc:
        console.print(exc.text("flk"), markup=False)
        return EXIT_USAGE
    finally:
        await deps.close()


def parser() -> argparse.ArgumentParser:
    import commands.comms
    import commands.diagnose
    import commands.export
    import commands.incidents
    import commands.mitigate
    import commands.triage
    import commands.verify
    from commands.registry import REGISTRY

    assert commands.comms and commands.diagnose and commands.export and commands.incidents and commands.mitigate
    assert commands.triage and commands.verify
    p = argparse.ArgumentParser(prog="flk", description="Tenant SLO Breach runbook bot")
    sub = p.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP mode; --socket-mode adds Socket Mode)")
    serve.add_argument("--socket-mode", action="store_true")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="job worker processes beside the front (default: cores - 1, at least 1; 0: in the front's process)",
    )
    serve.add_argument(
        "--front-only", action="store_true", help="run no job worker here: they run as `flk worker` elsewhere"
    )
    worker = sub.add_parser("worker", help="run job workers alone (no Slack endpoint), e.g. a worker Deployment")
    worker.add_argument("--no-http", action="store_true", help="serve no /healthz, /readyz and /metrics")
    for verb in REGISTRY.values():
        if verb.name in _SLACK_ONLY:
            continue
        one = sub.add_parser(verb.name, help=verb.summary, description=f"flk {verb.usage}")
        one.add_argument("words", nargs=argparse.REMAINDER, help=verb.usage.partition(" ")[2] or None)
        one.add_argument("--json", action="store_true", help="print the outcome as JSON")
        if verb.name == "export":
            one.add_argument("--out", metavar="FILE.csv", help="where to write the CSV (default: its own name)")
        if verb.name == "rca":
            one.add_argument("--out", metavar="DIR", help="the folder for the RCA files (default: here)")
        if verb.name == "notify":
            one.add_argument("--send", action="store_true", help="send the notice as drafted")
        if verb.name in ("mitigate", "undo", "resolve"):
            one.add_argument("--yes", action="store_true", help="go ahead without asking for the tenant name")
        if verb.name == "mitigate":
            one.add_argument("--confirm", metavar="PLAN_ID", help="confirm and apply a plan made earlier")
    sub.add_parser("sandbox", help="fractal-lba in a box: `flk sandbox up --help`")
    sub.add_parser("audit", help="`flk audit verify [PATH]`: check the audit log's hash chain")
    sub.add_parser(
        "worm", help="`flk worm index ROOT [--cache DIR] [--jobs N]`: index the WORM audit log's closed files"
    )
    doctor = sub.add_parser("doctor", help="check every configured connection, a line each; exit 1 if any fails")
    doctor.add_argument(
        "--slack-manifest", help="Slack app manifest to compare scopes with (default: deploy/slack-app-manifest.yaml)"
    )
    return p


def _split_flags(argv: list[str]) -> list[str]:
    """REMAINDER swallows flags after the first word: move the known ones before it."""
    flags = {"--json", "--yes", "--send"}
    valued = {"--out", "--confirm"}
    head, words, i = argv[:1], [], 1
    while i < len(argv):
        word = argv[i]
        if word in flags:
            head.append(word)
        elif word in valued and i + 1 < len(argv):
            head += [word, argv[i + 1]]
            i += 1
        elif word.split("=", 1)[0] in valued:
            head.append(word)
        else:
            words.append(word)
        i += 1
    return head + words


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        try:
            from sandbox.cli import main as sandbox_main
        except ImportError:
            print("flk: the sandbox runs from a source checkout (it ships in no wheel or image)", file=sys.stderr)
            return EXIT_USAGE
        return sandbox_main(argv[1:])
    if argv[:1] == ["worm"]:
        from integrations.worm.__main__ import main as worm_main

        return worm_main(argv[1:])
    if argv[:1] == ["audit"]:
        from commands.audit import audit_main

        return audit_main(argv[1:])
    args = parser().parse_args(_split_flags(argv))
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
        from bot.service.workers import default_count

        if (args.workers is not None and args.workers < 0) or (args.front_only and args.workers is not None):
            print("flk: --workers takes 0 or more, and not with --front-only", file=sys.stderr)
            return EXIT_USAGE
        workers = None if args.front_only else default_count() if args.workers is None else args.workers
        return asyncio.run(_serve(args.socket_mode, workers))
    if args.cmd == "worker":
        return asyncio.run(_worker(http=not args.no_http))
    return asyncio.run(_verb(args))


if __name__ == "__main__":
    raise SystemExit(main())
