"""Appends that cannot be made durable raise ``AuditUnavailable`` and leave nothing behind.

Tests run as root, whom file modes do not stop, so the unwritable logs are real ones root cannot
write either: a log whose folder is a regular file (ENOTDIR), a log that is a directory (EISDIR),
and a log that is a symlink to /dev/full, where every write fails with the kernel's own ENOSPC.
Faults a test cannot cause for real (a short write then ENOSPC, EDQUOT, EIO from fsync, EROFS or
EACCES at open) are injected at the system call (``os.write``, ``os.fsync``, ``os.open``), for the
audit log's files only, so the code under test runs unchanged around them.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from integrations.audit import AuditLog, AuditUnavailable, head_path, verify
from tests.integrations.audit_support import KEY, records_of, write_log


def _name(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


class Faults:
    """Makes ``os.write``, ``os.fsync`` or ``os.open`` fail on one file with an errno, as the
    kernel would; ``partial`` lets a write put half its bytes down first (a short write)."""

    def __init__(self) -> None:
        self._rules: dict[str, tuple[str, int, bool]] = {}
        self._real = {name: getattr(os, name) for name in ("write", "fsync", "open")}

    def inject(self, call: str, error: int, path: Path, *, partial: bool = False) -> None:
        self._rules[call] = (str(path), error, partial)

    def clear(self) -> None:
        self._rules.clear()

    def _rule(self, call: str, name: str) -> tuple[int, bool] | None:
        rule = self._rules.get(call)
        return (rule[1], rule[2]) if rule and rule[0] == name else None

    def write(self, fd: int, data: Any) -> int:
        if (rule := self._rule("write", _name(fd))) is None:
            return self._real["write"](fd, data)
        error, partial = rule
        if partial:
            self.inject("write", error, Path(_name(fd)))
            return self._real["write"](fd, bytes(data)[: len(data) // 2])
        raise OSError(error, os.strerror(error))

    def fsync(self, fd: int) -> None:
        if (rule := self._rule("fsync", _name(fd))) is not None:
            raise OSError(rule[0], os.strerror(rule[0]))
        self._real["fsync"](fd)

    def open(self, file: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if (rule := self._rule("open", str(file))) is not None:
            raise OSError(rule[0], os.strerror(rule[0]), str(file))
        return self._real["open"](file, flags, mode, **kwargs)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    injected = Faults()
    for call in ("write", "fsync", "open"):
        monkeypatch.setattr(os, call, getattr(injected, call))
    return injected


def _assert_unchanged(path: Path, before: bytes, head_before: bytes, count: int) -> None:
    assert path.read_bytes() == before
    assert head_path(path).read_bytes() == head_before
    result = verify(path)
    assert result.ok and result.records == count


@pytest.mark.parametrize(
    ("call", "error", "partial"),
    [
        ("write", errno.ENOSPC, True),
        ("write", errno.ENOSPC, False),
        ("write", errno.EDQUOT, True),
        ("write", errno.EIO, False),
        ("fsync", errno.EIO, False),
        ("open", errno.EROFS, False),
        ("open", errno.EACCES, False),
    ],
)
def test_a_failing_append_raises_and_leaves_nothing(
    tmp_path: Path, faults: Faults, call: str, error: int, partial: bool
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    before, head_before = path.read_bytes(), head_path(path).read_bytes()
    log = AuditLog(path)
    faults.inject(call, error, path, partial=partial)
    with pytest.raises(AuditUnavailable) as raised:
        log.append("U_ALICE", "mitigation.confirmed", tenant="t-1", details={"plan": "p-42"})
    assert os.strerror(error) in str(raised.value) and str(path) in str(raised.value)
    assert "p-42" not in str(raised.value)
    _assert_unchanged(path, before, head_before, 3)
    faults.clear()
    assert log.append("U_ALICE", "mitigation.confirmed")["seq"] == 4
    assert verify(path).ok and verify(path).records == 4


def test_a_failing_head_write_takes_the_record_back(tmp_path: Path, faults: Faults) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    before, head_before = path.read_bytes(), head_path(path).read_bytes()
    faults.inject("fsync", errno.EIO, head_path(path))
    with pytest.raises(AuditUnavailable, match="Input/output error"):
        AuditLog(path).append("U1", "mitigation.applied")
    faults.clear()
    _assert_unchanged(path, before, head_before, 2)


async def test_append_async_raises_the_typed_error(tmp_path: Path, faults: Faults) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1)
    faults.inject("write", errno.ENOSPC, path, partial=True)
    with pytest.raises(AuditUnavailable, match="No space left on device"):
        await AuditLog(path).append_async("U1", "mitigation.confirmed")
    assert verify(path).records == 1


def test_a_full_disk_for_real(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.symlink_to("/dev/full")
    log = AuditLog(path)
    with pytest.raises(AuditUnavailable, match="No space left on device"):
        log.append("U1", "mitigation.confirmed")
    with pytest.raises(AuditUnavailable, match="No space left on device"):
        log.append("U1", "mitigation.confirmed")
    assert not head_path(path).exists()


@pytest.mark.parametrize("shape", ["folder is a file", "log is a directory"])
def test_an_unwritable_log_fails_at_start_and_on_append(tmp_path: Path, shape: str) -> None:
    if shape == "folder is a file":
        (tmp_path / "data").write_text("not a folder")
        path, why = tmp_path / "data" / "audit.jsonl", "Not a directory"
    else:
        path, why = tmp_path / "audit.jsonl", "Is a directory"
        path.mkdir()
    log = AuditLog(path, key=KEY)
    with pytest.raises(AuditUnavailable, match=why):
        log.recover()
    with pytest.raises(AuditUnavailable, match=why) as raised:
        log.append("U1", "mitigation.confirmed")
    assert KEY.decode() not in str(raised.value) and KEY.decode() not in repr(log)


def test_a_torn_tail_cut_off_before_a_failed_write_is_still_recorded(tmp_path: Path, faults: Faults) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    with open(path, "ab") as handle:
        handle.write(b'{"seq":3,"act')
    log = AuditLog(path)
    faults.inject("write", errno.ENOSPC, path)
    with pytest.raises(AuditUnavailable):
        log.append("U1", "mitigation.confirmed")
    faults.clear()
    log.append("U1", "mitigation.confirmed")
    stored = records_of(path)
    assert [r["action"] for r in stored[2:]] == ["audit.recovered", "mitigation.confirmed"]
    assert stored[2]["details"]["bytes_dropped"] == 13
    assert verify(path).ok


def test_every_append_of_a_failed_batch_fails(tmp_path: Path, faults: Faults) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1)
    log = AuditLog(path, fsync=False)
    real_commit = log._commit
    batches: list[int] = []

    def commit(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batches.append(len(bodies))
        if len(batches) > 1:
            return real_commit(bodies)
        # Hold the first batch until the other appends have queued up; the disk fills after it.
        deadline = time.monotonic() + 10
        while len(log._queue) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        written = real_commit(bodies)
        faults.inject("write", errno.ENOSPC, path)
        return written

    log._commit = commit  # type: ignore[method-assign]
    outcomes: dict[int, str] = {}

    def work(n: int) -> None:
        try:
            outcomes[n] = f"seq {log.append(f'T{n}', 'command')['seq']}"
        except AuditUnavailable as exc:
            outcomes[n] = exc.why

    first = threading.Thread(target=work, args=(0,))
    first.start()
    while not batches:
        time.sleep(0.001)
    others = [threading.Thread(target=work, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join()
    assert batches == [1, 5]
    assert outcomes == {0: "seq 2", **{n: "No space left on device" for n in range(1, 6)}}
    assert verify(path).records == 2
