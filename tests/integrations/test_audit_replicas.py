"""Replicas keep one audit chain each. Processes on one host take turns on one file with flock
(test_audit.py shows it), but replicas on different nodes share a network volume, where flock
does not serialise two clients' appends: so FLK_AUDIT_LOG with `{replica}` gives each pod a file
of its own, and `flk audit verify` checks every replica's chain, naming a broken one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.service.settings import load_settings
from commands.audit import audit_main
from integrations.audit import verify

REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-t",
    "SLACK_SIGNING_SECRET": "s",
    "FLK_INCIDENT_CHANNEL": "C_INCIDENTS",
    "FLK_PROMETHEUS_URL": "http://prometheus:9090",
}
ROOT = Path(__file__).resolve().parents[2]
WRITER = (
    "import sys\nfrom integrations.audit import AuditLog\n"
    "log = AuditLog(sys.argv[1], fsync=False)\n"
    "for i in range(40): log.append(sys.argv[2], 'command', details={'i': i})\n"
)


def audit_path(monkeypatch: pytest.MonkeyPatch, pattern: str, pod: str) -> str:
    """FLK_AUDIT_LOG as a pod named ``pod`` resolves it."""
    monkeypatch.setattr(socket, "gethostname", lambda: pod)
    settings, _ = load_settings({**REQUIRED, "FLK_AUDIT_LOG": pattern})
    return settings.audit_log


def test_each_replica_writes_its_own_chain_and_verify_checks_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(tmp_path / "audit-{replica}.jsonl")
    paths = [audit_path(monkeypatch, pattern, pod) for pod in ("flk-chatops-7d9f-abcde", "flk-chatops-7d9f-x/y z")]
    assert paths == [
        str(tmp_path / "audit-flk-chatops-7d9f-abcde.jsonl"),
        str(tmp_path / "audit-flk-chatops-7d9f-x_y_z.jsonl"),
    ]
    # Both replicas append at the same time, each to its own file.
    workers = [subprocess.Popen([sys.executable, "-c", WRITER, p, f"R{n}"], cwd=ROOT) for n, p in enumerate(paths)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0]
    for n, path in enumerate(paths):
        result = verify(path)
        assert result.ok and result.records == 40
        assert {json.loads(line)["actor"] for line in Path(path).read_text().splitlines()} == {f"R{n}"}
    assert audit_main(["verify", pattern]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == sorted(paths)
    assert all("chain intact" in line and "40 records" in line for line in out)
    # A folder verifies the same logs; FLK_AUDIT_LOG with {replica} is the default.
    assert audit_main(["verify", str(tmp_path)]) == 0
    monkeypatch.setenv("FLK_AUDIT_LOG", pattern)
    assert audit_main(["verify"]) == 0
    capsys.readouterr()
    # One replica's chain broken: the exit code says so, and each log has its own line.
    lines = Path(paths[1]).read_text().splitlines(keepends=True)
    del lines[3]
    Path(paths[1]).write_text("".join(lines))
    assert audit_main(["verify", pattern]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{paths[0]}: chain intact") and out[1].startswith(f"{paths[1]}: BROKEN")


def test_a_pattern_matching_no_log_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_main(["verify", str(tmp_path / "audit-{replica}.jsonl")]) == 2
    assert "no audit log matches" in capsys.readouterr().err
