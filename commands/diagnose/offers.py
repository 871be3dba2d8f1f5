"""Next steps a diagnosis offers from what it found, beyond the scenario's own: scenario C's attack
branch offers the IP block of the sources it named (``mitigate <tenant> ip-block <ips>``)."""

from __future__ import annotations

from collections.abc import Iterable

from commands.config import RunbookConfig
from commands.mitigate.ip_block import parse_ranges
from commands.models import Finding, Status, Verdict
from commands.registry import UsageError

# The finding data key under which quota diagnosis lists the attack's source IPs (a list of strings).
ATTACK_SOURCES = "attack_sources"


def attack_sources(findings: Iterable[Finding], config: RunbookConfig) -> list[str]:
    """The sources an attack finding named, as CIDRs (at most the IP block's limit); a value
    that is not an address is left out, never offered."""
    named: list[str] = []
    for finding in findings:
        if finding.status is Status.ERROR:
            continue
        for ip in finding.data.get(ATTACK_SOURCES) or ():
            try:
                cidr = parse_ranges([str(ip)])[0]
            except UsageError:
                continue
            if cidr not in named:
                named.append(cidr)
    return named[: config.mitigations.ip_block_max_entries]


def offer_ip_block(tenant: str, verdicts: Iterable[Verdict], findings: list[Finding], config: RunbookConfig) -> None:
    """An attack verdict's first next step becomes the IP block of its sources (none named: nothing)."""
    sources = attack_sources(findings, config)
    if not sources:
        return
    step = f"mitigate {tenant} ip-block {','.join(sources)}"
    for verdict in verdicts:
        if verdict.cause == "attack" and step not in verdict.next_steps:
            verdict.next_steps.insert(0, step)
