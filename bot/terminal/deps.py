"""What the terminal's verbs are handed, built by the composition root (``bot.service.compose``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commands.context import Context
from commands.flows.actors import Actor
from commands.flows.comms import CommsFlow
from commands.flows.mitigation import MitigationFlow
from commands.flows.steps import StepRecords
from commands.flows.verification import Verification
from integrations.store import Store


@dataclass
class Deps:
    ctx: Context
    store: Store
    mitigation: MitigationFlow
    verification: Verification
    comms: CommsFlow
    steps: StepRecords
    # The terminal operator (FLK_OPERATOR), None when unset: read-only verbs only.
    operator: Actor | None
    close: Callable[[], Awaitable[None]]
