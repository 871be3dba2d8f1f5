"""The hash-chained audit log: appends chain, concurrent appenders (threads and processes) keep
one chain, and every kind of tampering (edit, delete, reorder, cut) is named at its record.
Torn tails are in test_audit_recovery, failing appends in test_audit_failures, keys in
test_audit_keyed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from commands.audit import audit_main
from integrations.audit import GENESIS, AuditLog, head_path, record_hash, verify
from tests.integrations.audit_support import write_log

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_records_chain_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 3)
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev_hash"] == GENESIS
    assert records[1]["prev_hash"] == records[0]["hash"] and records[2]["prev_hash"] == records[1]["hash"]
    stored = [json.loads(line) for line in _lines(path)]
    assert stored == records
    assert all(r["hash"] == record_hash(r) for r in stored)
    assert set(stored[0]) == {"seq", "at", "actor", "action", "incident_id", "tenant", "details", "prev_hash", "hash"}
    assert stored[0]["at"].endswith("Z") and stored[0]["details"] == {"n": 1, "ok": True}
    result = verify(path)
    assert result.ok and (result.records, result.first_broken) == (3, None)


def test_a_new_appender_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    record = AuditLog(path).append("U9", "undo.applied", details={"plan": "p-1"})
    assert record["seq"] == 3
    assert verify(path).ok and verify(path).records == 3


def test_records_larger_than_the_tail_read_still_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path, fsync=False).append("U1", "export", details={"rows": "r," * 150_000})
    assert AuditLog(path, fsync=False).append("U1", "command")["seq"] == 2
    AuditLog(path, fsync=False).append("U1", "export", details={"rows": "s," * 150_000})
    assert AuditLog(path, fsync=False).append("U1", "command")["seq"] == 4
    assert verify(path).ok and verify(path).records == 4


@pytest.mark.parametrize("number", [1, 3, 5])
def test_an_edited_record_is_named(tmp_path: Path, number: int) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    lines = _lines(path)
    lines[number - 1] = lines[number - 1].replace('"actor":"U', '"actor":"X')
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == number and result.records == number - 1
    assert result.reason == f"record {number} was altered (its hash does not match its content)"


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    lines = _lines(path)
    record = json.loads(lines[1])
    record["details"] = {"n": 999}
    record["hash"] = record_hash(record)
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == 3
    assert "does not follow the record before it" in result.reason


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    lines = _lines(path)
    del lines[2]
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == 3
    assert result.reason == "record 3 has seq 4 where 3 belongs (a record was deleted or moved)"


def test_reordered_records_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    lines = _lines(path)
    lines[1], lines[3] = lines[3], lines[1]
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == 2


def test_a_record_cut_short_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 20], encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == 3 and result.records == 2
    assert result.reason.startswith("record 3 is cut short (no line end): a torn write")


def test_records_cut_from_the_end_are_noticed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    lines = _lines(path)
    path.write_text("".join(lines[:3]), encoding="utf-8")
    result = verify(path)
    assert not result.ok and result.first_broken == 4 and result.records == 3
    assert result.reason == "records 4–5 cut from the end (the head names record 5)"
    path.write_text("", encoding="utf-8")
    assert verify(path).first_broken == 1


def test_the_head_must_be_there_and_match(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    head = head_path(path)
    good = head.read_text(encoding="utf-8")
    head.write_text(json.dumps({"seq": 3, "hash": "f" * 64}), encoding="utf-8")
    assert not verify(path).ok and "does not match" in verify(path).reason
    head.write_text("{", encoding="utf-8")
    assert not verify(path).ok and "unreadable" in verify(path).reason
    head.unlink()
    assert not verify(path).ok and "missing" in verify(path).reason
    head.write_text(good, encoding="utf-8")
    assert verify(path).ok
    # A crash between a record and its head leaves the head one behind: still consistent.
    lines = _lines(path)
    AuditLog(path).append("U4", "command")
    head.write_text(good, encoding="utf-8")
    assert verify(path).ok and verify(path).records == len(lines) + 1


def test_empty_and_missing_logs(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert not verify(path).ok and "cannot read" in verify(path).reason
    path.write_text("", encoding="utf-8")
    assert verify(path).ok and verify(path).records == 0


def test_secret_values_are_never_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    slack_token = "xoxb-" + "1234567890-abcdefghij"
    AuditLog(path).append(
        "U1",
        "command",
        tenant="t-1",
        details={
            "token": "plain-credential-value",
            "text": f"/flk x {slack_token}",
            "token_rate": "200",
            "auth": {"password": "hunter2-hunter2"},
            "header": "Bearer abcdefghijklmnop",
        },
    )
    text = path.read_text(encoding="utf-8")
    for secret in ("plain-credential-value", slack_token, "hunter2-hunter2", "abcdefghijklmnop"):
        assert secret not in text
    assert '"token_rate":"200"' in text
    assert verify(path).ok


def test_concurrent_threads_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)

    def work(worker: int) -> None:
        for i in range(50):
            log.append(f"T{worker}", "command", details={"i": i})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify(path)
    assert result.ok and result.records == 400


def test_appends_waiting_for_a_write_share_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    real_commit = log._commit
    batches: list[list[str]] = []

    def commit(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batches.append([b["actor"] for b in bodies])
        # Hold the first write (and its fsyncs) until the seven other appends are waiting.
        deadline = time.monotonic() + 10
        while len(batches) == 1 and len(log._queue) < 7 and time.monotonic() < deadline:
            time.sleep(0.001)
        return real_commit(bodies)

    log._commit = commit  # type: ignore[method-assign]
    got: dict[str, dict[str, Any]] = {}
    threads = [
        threading.Thread(target=lambda n=n: got.update({f"T{n}": log.append(f"T{n}", "command")})) for n in range(8)
    ]
    threads[0].start()
    while not batches:
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join()
    assert batches[0] == ["T0"] and len(batches) == 2 and sorted(batches[1]) == [f"T{n}" for n in range(1, 8)]
    assert sorted(r["seq"] for r in got.values()) == list(range(1, 9))
    assert all(record["actor"] == actor for actor, record in got.items())
    assert [json.loads(line)["actor"] for line in _lines(path)] == ["T0", *batches[1]]
    assert verify(path).ok and verify(path).records == 8


def test_concurrent_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\nfrom integrations.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1], fsync=False)\n"
        "for i in range(60): log.append('P' + sys.argv[2], 'command', details={'i': i})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)], cwd=ROOT) for n in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]
    result = verify(path)
    assert result.ok and result.records == 240
    actors = [json.loads(line)["actor"] for line in _lines(path)]
    assert {a: actors.count(a) for a in set(actors)} == {f"P{n}": 60 for n in range(4)}


async def test_async_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    record = await log.append_async("U1", "plan", tenant="t-1", details={"plan": "abc"})
    assert record["seq"] == 1 and verify(path).ok


def test_cli_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    assert audit_main(["verify", str(path)]) == 0
    unkeyed = "SHA-256, unkeyed: anyone who can write the file can rewrite it consistently"
    assert capsys.readouterr().out == f"{path}: chain intact ({unkeyed}) · 4 records\n"
    monkeypatch.setenv("FLK_AUDIT_LOG", str(path))
    assert audit_main(["verify"]) == 0
    capsys.readouterr()
    lines = _lines(path)
    del lines[1]
    path.write_text("".join(lines), encoding="utf-8")
    assert audit_main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN (no key) · record 2 has seq 3 where 2 belongs" in out
    assert "(first broken record: 2); 1 records before it are intact" in out
    monkeypatch.delenv("FLK_AUDIT_LOG")
    assert audit_main(["verify"]) == 2
    assert audit_main(["frobnicate"]) == 2
    assert audit_main([]) == 2
    assert "Traceback" not in capsys.readouterr().err
