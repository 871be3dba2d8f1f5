"""The attack branch and temporary mitigations from a terminal with no Slack: `flk mitigate <t>
ip-block … for 2h --yes` applies the block with its expiry, `flk extend` moves the expiry (audited),
`flk undo --yes` takes the block out again; bad addresses are a
usage error that changes nothing."""

from __future__ import annotations

import json
import re

from commands.mitigate import DENYLIST
from tests.bot.test_terminal_verbs import Terminal, term

assert term  # the module-scoped fixture, shared with the other terminal tests' sandbox


def denylist(t: Terminal, tenant: str) -> str | None:
    obj = t.sandbox.kube_store.get("ingresses", t.sandbox.live.world.namespace, f"tenant-{tenant}")
    assert obj is not None
    return (obj["metadata"].get("annotations") or {}).get(DENYLIST)


async def test_an_ip_block_applied_extended_and_undone_from_the_terminal(term: Terminal) -> None:
    tenant = term.tenant("quota")
    before = denylist(term, tenant)
    code, out = await term.flk(
        "mitigate", tenant, "ip-block", "203.0.113.60,198.51.100.7", "for", "2h", "--yes", FLK_OPERATOR="ann"
    )
    assert code == 0, out
    assert denylist(term, tenant) == ",".join(filter(None, [before, "203.0.113.60/32,198.51.100.7/32"]))
    plan_id = re.search(r"plan ([0-9a-f]{12}): applied", out).group(1)  # type: ignore[union-attr]
    assert "temporary: lasts 2 h" in out and f"flk extend {plan_id}" in out
    code, out = await term.flk("extend", plan_id, "1h", "--json", FLK_OPERATOR="ann")
    assert code == 0, out
    extended = [r for r in term.audit() if r["action"] == "mitigation.extended"][-1]
    assert extended["actor"] == "ann" and extended["details"]["until"] == json.loads(out)["until"]
    code, out = await term.flk("undo", plan_id, "--yes", FLK_OPERATOR="ann")
    assert code == 0, out
    assert denylist(term, tenant) == before


async def test_bad_addresses_from_the_terminal_are_usage_and_change_nothing(term: Terminal) -> None:
    tenant = term.tenant("quota")
    before = denylist(term, tenant)
    code, out = await term.flk("mitigate", tenant, "ip-block", "10.0.0.300", "--yes", FLK_OPERATOR="ann")
    assert code == 2 and "`10.0.0.300` is not an IP address or CIDR range" in out, out
    assert denylist(term, tenant) == before
