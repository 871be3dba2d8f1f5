"""Torn tails: what a crash or a full disk leaves after the last record is dropped by ``recover()``
or the next append, an ``audit.recovered`` record names its size and SHA-256 (never the bytes),
the chain verifies afterwards, and anything worse than a torn write is refused, not papered over."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.audit import audit_main
from integrations.audit import AuditLog, AuditUnavailable, head_path, verify
from integrations.audit_records import RECOVERED, canonical, record_hash
from tests.integrations.audit_support import KEY, line_of, lines, records_of, write_log

ROOT = Path(__file__).resolve().parents[2]


def _next_line(last: dict) -> bytes:
    """The line the next append would have written after ``last``."""
    record = {**last, "seq": last["seq"] + 1, "prev_hash": last["hash"], "actor": "U-next", "details": {"n": 0}}
    record["hash"] = record_hash(record)
    return line_of(record)


TORN_SHAPES = {
    "half a JSON line": lambda last: _next_line(last)[:70],
    # A whole record but for its line end: its append failed before the line end was on disk, and
    # its caller was told so, so it is dropped like any torn write rather than kept.
    "a valid record without its line end": lambda last: _next_line(last)[:-1],
    "NUL padding after a crash": lambda last: b"\0" * 4096,
    "half a line, then NUL padding": lambda last: _next_line(last)[:50] + b"\0" * 512,
    "a line end after NULs (a page never written)": lambda last: b"\0" * 100 + _next_line(last)[100:],
    "a bad line, then an unfinished one": lambda last: b"\0" * 10 + b"\n" + _next_line(last)[:30],
}


@pytest.mark.parametrize("shape", TORN_SHAPES)
def test_a_torn_tail_is_dropped_and_recorded(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "audit.jsonl"
    written = write_log(path, 3)
    good = path.read_bytes()
    torn = TORN_SHAPES[shape](written[-1])
    with open(path, "ab") as handle:
        handle.write(torn)
    assert not verify(path).ok
    recovered = AuditLog(path).recover()
    assert recovered is not None and recovered["seq"] == 4 and recovered["prev_hash"] == written[-1]["hash"]
    assert (recovered["actor"], recovered["action"]) == ("flk", RECOVERED)
    assert recovered["details"] == {
        "bytes_dropped": len(torn),
        "sha256": hashlib.sha256(torn).hexdigest(),
        "after_seq": 3,
    }
    data = path.read_bytes()
    assert data == good + line_of(recovered)
    result = verify(path)
    assert result.ok and result.records == 4
    assert [(r.seq, r.bytes_dropped) for r in result.recoveries] == [(4, len(torn))]
    # Appends after the recovery chain on.
    after = AuditLog(path).append("U5", "mitigation.applied")
    assert after["seq"] == 5 and verify(path).ok and verify(path).records == 5
    assert AuditLog(path).recover() is None


def test_the_first_append_recovers_without_recover(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = write_log(path, 2)
    with open(path, "ab") as handle:
        handle.write(_next_line(written[-1])[:40])
    record = AuditLog(path, fsync=False).append("U3", "mitigation.confirmed", tenant="t-1")
    assert record["seq"] == 4
    stored = records_of(path)
    assert [r["action"] for r in stored] == [
        "mitigation.applied",
        "mitigation.applied",
        RECOVERED,
        "mitigation.confirmed",
    ]
    assert stored[2]["details"]["bytes_dropped"] == 40
    assert verify(path).ok
    with pytest.raises(ValueError, match=r"audit\.recovered records are the audit log's own"):
        AuditLog(path).append("U1", RECOVERED)


def test_a_torn_first_record_goes_back_to_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":1,"at":"2026-')
    recovered = AuditLog(path).recover()
    assert recovered is not None and recovered["seq"] == 1 and recovered["prev_hash"] == "0" * 64
    assert verify(path).ok and verify(path).records == 1


def test_dropped_bytes_are_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1)
    with open(path, "ab") as handle:
        handle.write(b'{"actor":"U1","details":{"customer_note":"do-not-keep-this-text"')
    AuditLog(path).recover()
    assert b"do-not-keep-this-text" not in path.read_bytes()
    assert b"do-not-keep-this-text" not in head_path(path).read_bytes()


def test_more_than_a_torn_write_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    with open(path, "ab") as handle:
        handle.write(b"not a record\nnor this\n{half")
    before = path.read_bytes()
    with pytest.raises(AuditUnavailable, match="not a torn write; run `flk audit verify`"):
        AuditLog(path).recover()
    with pytest.raises(AuditUnavailable):
        AuditLog(path).append("U1", "command")
    assert path.read_bytes() == before


@pytest.mark.parametrize("cut", ["whole last record", "half the last record"])
def test_an_acknowledged_record_lost_is_not_a_torn_write(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    kept = b"".join(lines(path)[:2])
    last = lines(path)[2]
    # The head names record 3, which only an fsync of its whole line would have let it name.
    path.write_bytes(kept if cut == "whole last record" else kept + last[: len(last) // 2])
    before = path.read_bytes()
    with pytest.raises(AuditUnavailable, match="the head names record 3 but the last whole record is 2"):
        AuditLog(path).append("U4", "command")
    assert path.read_bytes() == before


def test_the_head_one_behind_after_a_crash_still_recovers(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    head_at_2 = head_path(path).read_bytes()
    third = AuditLog(path, fsync=False).append("U3", "command")
    # A crash after record 3 was on disk but before the head named it, then a torn record 4.
    head_path(path).write_bytes(head_at_2)
    with open(path, "ab") as handle:
        handle.write(_next_line(third)[:33])
    recovered = AuditLog(path).recover()
    assert recovered is not None and recovered["seq"] == 4 and recovered["prev_hash"] == third["hash"]
    assert verify(path).ok


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=4),
    unfinished=st.binary(max_size=300).filter(lambda b: b"\n" not in b),
    bad_line=st.one_of(st.none(), st.binary(max_size=200).filter(lambda b: b"\n" not in b)),
    key=st.sampled_from([None, KEY]),
)
def test_any_torn_tail_is_recovered(count: int, unfinished: bytes, bad_line: bytes | None, key: bytes | None) -> None:
    torn = (b"" if bad_line is None else bad_line + b"\n") + unfinished
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        path.touch()
        write_log(path, count, key=key)
        good = path.read_bytes()
        with open(path, "ab") as handle:
            handle.write(torn)
        recovered = AuditLog(path, key=key, fsync=False).recover()
        if not torn:
            assert recovered is None and path.read_bytes() == good
            return
        assert recovered is not None and recovered["details"]["bytes_dropped"] == len(torn)
        assert recovered["details"]["sha256"] == hashlib.sha256(torn).hexdigest()
        assert path.read_bytes() == good + canonical(recovered) + b"\n"
        AuditLog(path, key=key, fsync=False).append("U9", "command")
        result = verify(path, key=key)
        assert result.ok, result.reason
        assert result.records == count + 2 and [r.seq for r in result.recoveries] == [count + 1]


def test_processes_starting_together_recover_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    written = write_log(path, 5, key=KEY)
    with open(path, "ab") as handle:
        handle.write(_next_line(written[-1])[:61] + b"\0" * 200)
    script = (
        "import sys\nfrom integrations.audit import AuditLog\nfrom tests.integrations.audit_support import KEY\n"
        "log = AuditLog(sys.argv[1], key=KEY, fsync=False)\n"
        "for i in range(40): log.append('P' + sys.argv[2], 'command', details={'i': i})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)], cwd=ROOT) for n in range(3)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0]
    result = verify(path, key=KEY)
    assert result.ok and result.records == 5 + 1 + 120
    assert [(r.seq, r.bytes_dropped) for r in result.recoveries] == [(6, 261)]


def test_the_cli_reports_the_recovery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1233)
    torn = b'{"action":"mitigation.applied","actor":"U'
    with open(path, "ab") as handle:
        handle.write(torn)
    recovered = AuditLog(path).recover()
    assert recovered is not None
    assert audit_main(["verify", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(" · 1,234 records · 1 recovery")
    assert out[1] == f"recovered once at {recovered['at']}: {len(torn)} bytes dropped"
    with open(path, "ab") as handle:
        handle.write(b"\0" * 37)
    second = AuditLog(path).recover()
    assert second is not None and json.loads(lines(path)[-1])["details"]["bytes_dropped"] == 37
    assert audit_main(["verify", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(" · 1,235 records · 2 recoveries")
    assert out[1] == (
        f"recovered 2 times: {len(torn)} bytes dropped at {recovered['at']}; 37 bytes dropped at {second['at']}"
    )
