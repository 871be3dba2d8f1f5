"""The /flk verbs: one registry that the parser, the help text and the CLI are generated from."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from commands.tenants import well_formed


class UsageError(Exception):
    """Bad input: the message is shown to the user with the verb's usage."""

    def __init__(self, message: str, verb: Verb | None = None) -> None:
        super().__init__(message)
        self.verb = verb

    def text(self, command: str = "/flk") -> str:
        usage = f"\nUsage: `{command} {self.verb.usage}`" if self.verb else f"\nTry `{command} help`."
        return f"{self}{usage}"


ArgParser = Callable[[list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Verb:
    name: str
    usage: str
    summary: str
    parse: ArgParser
    mutating: bool = False
    examples: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Invocation:
    verb: Verb
    args: dict[str, Any]


REGISTRY: dict[str, Verb] = {}


def register(verb: Verb) -> Verb:
    REGISTRY[verb.name] = verb
    return verb


def parse(text: str) -> Invocation:
    try:
        words = shlex.split(text)
    except ValueError:
        raise UsageError("could not read the arguments (unbalanced quotes?)") from None
    if not words:
        words = ["help"]
    name, rest = words[0].lower(), words[1:]
    verb = REGISTRY.get(name)
    if verb is None:
        raise UsageError(f"unknown command `{name[:40]}`")
    try:
        return Invocation(verb, verb.parse(rest))
    except UsageError as exc:
        raise UsageError(str(exc), verb) from None


def help_lines(command: str = "/flk") -> list[str]:
    return [f"`{command} {v.usage}` · {v.summary}" for v in REGISTRY.values()]


def tenant_arg(value: str) -> str:
    if not well_formed(value):
        raise UsageError(f"`{value[:60]}` is not a valid tenant id")
    return value


def no_args(args: list[str]) -> dict[str, Any]:
    if args:
        raise UsageError("this command takes no arguments")
    return {}


def optional_tenant(args: list[str]) -> dict[str, Any]:
    if len(args) > 1:
        raise UsageError("too many arguments")
    return {"tenant": tenant_arg(args[0]) if args else None}


register(Verb("help", "help", "what the bot can do", no_args))
