"""The keyed chain: with ``key`` every hash is an HMAC-SHA256, so a rewrite without the key is
found even when every hash after it was recomputed; unkeyed logs verify as before; the key never
reaches the log, an error or the CLI's output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.audit import audit_main
from integrations.audit import AuditLog, AuditUnavailable, audit_key, head_path, record_hash, verify
from integrations.audit_records import GENESIS, MAC_FIELD, canonical
from integrations.audit_tail import head_line
from tests.integrations.audit_support import KEY, OTHER_KEY, line_of, lines, records_of, write_log

UNKEYED = "SHA-256, unkeyed: anyone who can write the file can rewrite it consistently"


def _rewrite_unkeyed(path: Path, records: list[dict[str, Any]], start: int, edit: dict[str, Any]) -> None:
    """What someone who can write the volume but lacks the key would do: change record ``start``
    and recompute every hash from it on, and the head, with plain SHA-256."""
    prev = records[start - 2]["hash"] if start > 1 else GENESIS
    out = records[: start - 1]
    for number, record in enumerate(records[start - 1 :], start=start):
        record = {k: v for k, v in record.items() if k != MAC_FIELD}
        record.update(edit if number == start else {})
        record["prev_hash"] = prev
        record["hash"] = prev = record_hash(record)
        out.append(record)
    path.write_bytes(b"".join(canonical(r) + b"\n" for r in out))
    head_path(path).write_bytes(head_line(out[-1]["seq"], out[-1]["hash"]))


def test_keyed_records_carry_an_hmac(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 4, key=KEY)
    assert all(r[MAC_FIELD] == "hmac-sha256" and r["hash"] == record_hash(r, KEY) for r in records)
    assert all(r["hash"] != record_hash(r) for r in records)
    result = verify(path, key=KEY)
    assert result.ok and result.records == 4 and result.keyed_from == 1 and result.algorithm == "HMAC-SHA256"


def test_the_wrong_key_names_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3, key=KEY)
    result = verify(path, key=OTHER_KEY)
    assert not result.ok and result.first_broken == 1
    assert result.reason == "record 1 does not match its HMAC-SHA256 (altered, or written with another key)"


@pytest.mark.parametrize("start", [2, 3, 5])
def test_a_record_rewritten_without_the_key_is_named(tmp_path: Path, start: int) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 5, key=KEY)
    _rewrite_unkeyed(path, records, start, {"details": {"n": 999, "ok": False}})
    result = verify(path, key=KEY)
    assert not result.ok and result.first_broken == start and result.records == start - 1
    assert result.reason == f"record {start} is unkeyed after keyed records (rewritten without the key)"


def test_a_whole_log_rewritten_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 4, key=KEY)
    _rewrite_unkeyed(path, records, 1, {"actor": "U_MALLORY"})
    keyed = verify(path, key=KEY)
    assert not keyed.ok and keyed.reason == "no record is keyed: the log was written, or rewritten, without the key"
    # Without the key such a rewrite looks intact: that is what the CLI's warning says.
    assert verify(path).ok and verify(path).algorithm == "SHA-256"


def test_a_keyed_record_edited_with_its_marker_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 3, key=KEY)
    records[1]["tenant"] = "t-other"
    records[1]["hash"] = record_hash(records[1], OTHER_KEY)
    path.write_bytes(b"".join(canonical(r) + b"\n" for r in records))
    result = verify(path, key=KEY)
    assert not result.ok and result.first_broken == 2 and "does not match its HMAC-SHA256" in result.reason


def test_an_unkeyed_log_keyed_later_is_covered_through_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    log = AuditLog(path, key=KEY, fsync=False)
    log.append("U4", "command")
    log.append("U5", "command")
    result = verify(path, key=KEY)
    assert result.ok and result.keyed_from == 4 and result.records == 5
    # Rewriting the unkeyed records before the key consistently still breaks at the first keyed one.
    records = records_of(path)
    _rewrite_unkeyed(path, records[:3], 2, {"actor": "U_MALLORY"})
    path.write_bytes(path.read_bytes() + b"".join(line_of(r) for r in records[3:]))
    head_path(path).write_bytes(head_line(5, records[4]["hash"]))
    broken = verify(path, key=KEY)
    assert not broken.ok and broken.first_broken == 4 and "does not follow the record before it" in broken.reason


def test_without_the_key_a_keyed_log_is_not_called_intact(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3, key=KEY)
    result = verify(path)
    assert not result.ok and result.key_needed and result.first_broken is None
    assert (
        result.reason == "records 1–3 are keyed (HMAC-SHA256): without the key only their order and links were checked"
    )
    # Links are still checked without the key.
    kept = lines(path)
    path.write_bytes(kept[0] + kept[2])
    assert verify(path).first_broken == 2 and not verify(path).key_needed


def test_appends_refuse_a_keyed_log_without_its_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2, key=KEY)
    before = path.read_bytes()
    with pytest.raises(AuditUnavailable, match=r"keyed \(HMAC-SHA256\) but no key was given"):
        AuditLog(path).append("U1", "command")
    with pytest.raises(AuditUnavailable, match="HMAC does not match this key") as raised:
        AuditLog(path, key=OTHER_KEY).recover()
    assert OTHER_KEY.decode() not in str(raised.value) and KEY.decode() not in str(raised.value)
    assert path.read_bytes() == before
    assert AuditLog(path, key=KEY).append("U3", "command")["seq"] == 3


def test_the_key_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    secret = KEY.decode()
    log = AuditLog(path, key=KEY)
    log.append(f"U-{secret}", "command", tenant="t-1", details={"text": f"/flk x {secret}", secret: [secret]})
    for file in (path, head_path(path)):
        assert secret.encode() not in file.read_bytes()
    assert secret not in repr(log)
    assert verify(path, key=KEY).ok


def test_short_keys_are_refused_without_being_echoed() -> None:
    with pytest.raises(ValueError, match="shorter than 16 bytes") as raised:
        AuditLog("unused.jsonl", key=b"hunter2")
    assert "hunter2" not in str(raised.value)
    assert audit_key(None) is None and audit_key("  \n") is None
    assert audit_key(f" {KEY.decode()}\n") == KEY


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=64),
    entries=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),
            st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=30), st.none())),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_any_keyed_log_verifies_with_its_key_only(key: bytes, entries: list[tuple[str, dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        log = AuditLog(path, key=key, fsync=False)
        for actor, details in entries:
            log.append(actor, "command", details=details)
        result = verify(path, key=key)
        assert result.ok and result.records == len(entries) and result.keyed_from == 1, result.reason
        assert verify(path, key=bytes(b ^ 1 for b in key)).first_broken == 1
        assert verify(path).key_needed


def test_cli_keyed_and_unkeyed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed, plain = tmp_path / "keyed.jsonl", tmp_path / "plain.jsonl"
    write_log(keyed, 1234, key=KEY)
    write_log(plain, 2)
    monkeypatch.delenv("FLK_AUDIT_KEY", raising=False)
    monkeypatch.setenv("AUDIT_KEY_FROM_VAULT", KEY.decode())
    assert audit_main(["verify", str(keyed), "--key-env", "AUDIT_KEY_FROM_VAULT"]) == 0
    assert capsys.readouterr().out == f"{keyed}: chain intact (HMAC-SHA256, keyed) · 1,234 records\n"
    assert audit_main(["verify", str(plain)]) == 0
    assert capsys.readouterr().out == f"{plain}: chain intact ({UNKEYED}) · 2 records\n"
    # A keyed log without a key: not checked, so not called intact (usage error).
    assert audit_main(["verify", str(keyed)]) == 2
    err = capsys.readouterr().err
    assert "records 1–1234 are keyed (HMAC-SHA256)" in err and "--key-env" in err
    # FLK_AUDIT_KEY is the default.
    monkeypatch.setenv("FLK_AUDIT_KEY", KEY.decode() + "\n")
    assert audit_main(["verify", str(keyed)]) == 0
    capsys.readouterr()
    # The wrong key: broken at the first record, exit 1.
    monkeypatch.setenv("FLK_AUDIT_KEY", OTHER_KEY.decode())
    assert audit_main(["verify", str(keyed)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN (HMAC-SHA256 with the key in $FLK_AUDIT_KEY) · record 1 does not match" in out
    assert "(first broken record: 1)" in out
    # Usage errors: a variable that is not set, a key too short.
    assert audit_main(["verify", str(keyed), "--key-env", "NO_SUCH_VARIABLE"]) == 2
    monkeypatch.setenv("SHORT_KEY", "hunter2")
    assert audit_main(["verify", str(keyed), "--key-env", "SHORT_KEY"]) == 2
    captured = capsys.readouterr()
    assert "$NO_SUCH_VARIABLE is not set" in captured.err and "shorter than 16 bytes" in captured.err
    for text in (captured.out, captured.err):
        assert "hunter2" not in text and KEY.decode() not in text and OTHER_KEY.decode() not in text
    assert audit_main(["verify", str(keyed), "--key-env"]) == 2


def test_cli_names_a_record_rewritten_without_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 6, key=KEY)
    _rewrite_unkeyed(path, records, 4, {"details": {"n": 0}})
    assert json.loads(lines(path)[3])["details"] == {"n": 0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLK_AUDIT_KEY", KEY.decode())
        assert audit_main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "record 4 is unkeyed after keyed records (rewritten without the key)" in out
    assert "(first broken record: 4); 3 records before it are intact" in out
