"""The tenant config repository: `git log` of `infra/tenants/<t>.yaml`, never through a shell."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from integrations.errors import BackendError

_SEP = "\x1f"


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    when: str  # ISO 8601 with offset
    subject: str


class TenantRepo:
    def __init__(self, path: str | Path, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s

    async def commits(self, file: str, since: str = "24 hours ago") -> list[Commit]:
        if not (self.path / ".git").exists():
            raise BackendError("tenant repo", f"{self.path} is not a git repository")
        args = [
            "git",
            "-C",
            str(self.path),
            "log",
            f"--since={since}",
            f"--format=%h{_SEP}%an{_SEP}%aI{_SEP}%s",
            "--",
            file,
        ]
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except TimeoutError:
            process.kill()
            raise BackendError("tenant repo", f"git log took longer than {self.timeout_s:g} s") from None
        if process.returncode != 0:
            raise BackendError("tenant repo", f"git log failed: {err.decode(errors='replace').strip()[:200]}")
        commits = []
        for line in out.decode(errors="replace").splitlines():
            sha, author, when, subject = ([*line.split(_SEP), "", "", ""])[:4]
            commits.append(Commit(sha=sha, author=author, when=when, subject=subject))
        return commits
