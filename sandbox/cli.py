"""``flk sandbox up``: run the whole sandbox until SIGINT/SIGTERM.

Prints one line once every part answers, with the workspace page's address (and writes the
bot's settings to ``--env-file``);
a bad world spec is one ``file: path: expected`` line and exit 2; a server that cannot
start is one line and exit 1, after a clean shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
from pathlib import Path

import aiohttp

from sandbox.prom.process import LaunchError
from sandbox.up import Sandbox
from sandbox.world.breach import SCENARIOS
from sandbox.world.generate import describe, generate
from sandbox.world.load import WorldError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flk sandbox", description="fractal-lba in a box, on loopback")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start every sandbox part and run until interrupted")
    up.add_argument("--world", type=Path, help="world spec YAML (default: the built-in default world)")
    up.add_argument("--env-file", type=Path, help="write the bot's settings here as KEY=VALUE lines")
    up.add_argument("--rules", type=Path, action="append", default=[], help="a Prometheus rule file (repeatable)")
    up.add_argument("--alert-webhook", help="URL Alertmanager sends notifications to (the bot's alert endpoint)")
    up.add_argument(
        "--bot-url",
        help="the bot's /slack/events URL, where the workspace page sends what a person does "
        "(default: Socket Mode, for a bot started with `flk serve --socket-mode`)",
    )
    up.add_argument("--page-port", type=int, default=0, help="port of the workspace page (default: a free one)")
    hit = commands.add_parser("breach", help="make a tenant breach as a runbook scenario would (or recover)")
    hit.add_argument("tenant")
    hit.add_argument("scenario", choices=SCENARIOS)
    hit.add_argument("--env-file", type=Path, required=True, help="the env file `flk sandbox up` wrote")
    gen = commands.add_parser("generate", help="a random world spec and its truth, the same for the same seed")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", type=Path, help="write the world here (default: print it)")
    return parser


def _env_from_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = shlex.split(value)[0] if value else ""
    return env


async def _breach(args: argparse.Namespace) -> int:
    try:
        admin = _env_from_file(args.env_file)["FLK_ADMIN_URL"]
    except (OSError, KeyError):
        print(f"{args.env_file}: expected the env file of a running `flk sandbox up`", file=sys.stderr)
        return 2
    payload = {"tenant": args.tenant, "scenario": args.scenario}
    try:
        async with aiohttp.ClientSession() as session, session.post(f"{admin}/sandbox/breach", json=payload) as r:
            answer = await r.json(content_type=None)
    except aiohttp.ClientError:
        print(f"sandbox: no sandbox answers at {admin}", file=sys.stderr)
        return 1
    if r.status != 200:
        print(f"sandbox: {answer.get('error', r.status)}", file=sys.stderr)
        return 2
    print(f"{args.tenant}: {args.scenario} from now on ({', '.join(f'{k}={v}' for k, v in answer['set'].items())})")
    return 0


def _env_text(env: dict[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items())


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    # The file holds tokens: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(_env_text(env))


def _ready_line(sb: Sandbox, env_file: Path | None) -> str:
    parts = [
        f"sandbox ready in {sb.startup_seconds:.1f} s",
        f"slack {sb.env['FLK_SLACK_API_URL']}",
        f"prometheus {sb.prometheus_url}",
        f"alertmanager {sb.alertmanager_url}",
        f"kube {sb.kube.url}",
        f"admin {sb.backend.url}",
        f"page {sb.page.url}",
    ]
    if env_file is not None:
        parts.append(f"env {env_file}")
    return "; ".join(parts)


def _one_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0]


async def _up(args: argparse.Namespace) -> int:
    if args.env_file is not None and not args.env_file.parent.is_dir():
        print(f"{args.env_file}: expected a file in an existing folder", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sandbox = Sandbox(
        args.world,
        rule_files=args.rules,
        alert_webhook=args.alert_webhook,
        bot_url=args.bot_url,
        page_port=args.page_port,
    )
    starting = asyncio.create_task(sandbox.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        # Interrupted while starting: Sandbox.start cleans up what it started.
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        return 0
    stopping.cancel()
    try:
        starting.result()
    except WorldError as exc:
        print(exc, file=sys.stderr)
        return 2
    except LaunchError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"sandbox: {_one_line(exc)}", file=sys.stderr)
        return 1
    try:
        if args.env_file is not None:
            try:
                _write_env_file(args.env_file, sandbox.env)
            except OSError as exc:
                print(f"sandbox: cannot write {args.env_file}: {exc.strerror}", file=sys.stderr)
                return 1
        print(_ready_line(sandbox, args.env_file), flush=True)
        await stop.wait()
    finally:
        await sandbox.stop()
        if args.env_file is not None:
            # Its URLs point at ports that are closed now.
            args.env_file.unlink(missing_ok=True)
    return 0


def _generate(args: argparse.Namespace) -> int:
    world = generate(args.seed)
    if args.out is None:
        print(world.yaml_text, end="")
        return 0
    try:
        args.out.write_text(world.yaml_text, encoding="utf-8")
    except OSError as exc:
        print(f"{args.out}: cannot write the world ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"{args.out}: seed {args.seed}, {len(world.truth)} tenants")
    for name, truth in world.truth.items():
        print(f"  {name}: {describe(truth)}")
    if world.isolation:
        print(f"  isolation breach: {world.isolation.label}: {', '.join(world.isolation.tenants)}")
    return 0


def main(argv: list[str]) -> int:
    """``flk sandbox <command> ...``; returns the process exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "breach":
        return asyncio.run(_breach(args))
    if args.command == "generate":
        return _generate(args)
    return asyncio.run(_up(args))
