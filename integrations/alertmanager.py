"""Alertmanager API v2 silences: create one for a set of equality matchers, expire it, list them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from integrations.errors import BackendError
from integrations.http import HttpClient

SYSTEM = "Alertmanager"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: dict[str, str]  # equality matchers (name -> value); others are left out
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    state: str  # active / pending / expired


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _silence(body: Any) -> Silence:
    try:
        return Silence(
            id=str(body["id"]),
            matchers={
                m["name"]: m["value"] for m in body["matchers"] if not m.get("isRegex") and m.get("isEqual", True)
            },
            starts_at=_time(body["startsAt"]),
            ends_at=_time(body["endsAt"]),
            created_by=str(body.get("createdBy", "")),
            comment=str(body.get("comment", "")),
            state=str(body.get("status", {}).get("state", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BackendError(SYSTEM, "a silence in the answer is not in the API v2 shape") from None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _silence_id(silence_id: str) -> str:
    try:
        return str(uuid.UUID(silence_id))
    except ValueError:
        raise BackendError(SYSTEM, f"{silence_id[:40]!r} is not a silence id") from None


class Alertmanager(HttpClient):
    """Alertmanager's API v2: silences for the tenant's FLKTenantSLOBreach."""

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, parsed JSON body or text); BackendError only when there is no answer."""
        try:
            async with self._http().request(method, f"{self.base_url}/api/v2{path}", **kwargs) as response:
                text = await response.text()
                try:
                    body: Any = await response.json(content_type=None) if text else None
                except ValueError:
                    body = text
                return response.status, body
        except TimeoutError:
            raise BackendError(SYSTEM, f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise BackendError(SYSTEM, f"cannot reach {self.base_url} ({type(exc).__name__})") from None

    @staticmethod
    def _refused(what: str, status: int, body: Any) -> BackendError:
        detail = body.get("message") if isinstance(body, dict) else body
        reason = f"{what}: HTTP {status}" + (f" ({str(detail).strip()[:200]})" if detail else "")
        return BackendError(SYSTEM, reason)

    async def create_silence(
        self, matchers: Mapping[str, str], *, starts_at: datetime, ends_at: datetime, created_by: str, comment: str
    ) -> str:
        """A silence for alerts whose labels equal ``matchers``; returns its id."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
            "startsAt": _iso(starts_at),
            "endsAt": _iso(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        status, answer = await self._call("POST", "/silences", json=body)
        if status != 200 or not isinstance(answer, dict) or "silenceID" not in answer:
            raise self._refused("silence refused", status, answer)
        return str(answer["silenceID"])

    async def silence(self, silence_id: str) -> Silence | None:
        status, answer = await self._call("GET", f"/silence/{_silence_id(silence_id)}")
        if status == 404:
            return None
        if status != 200:
            raise self._refused("silence lookup failed", status, answer)
        return _silence(answer)

    async def silences(self, matchers: Mapping[str, str] | None = None) -> list[Silence]:
        """Every silence (active, pending, expired) whose matchers include all of ``matchers``."""
        params = [("filter", f"{k}={_quoted(v)}") for k, v in (matchers or {}).items()]
        status, answer = await self._call("GET", "/silences", params=params)
        if status != 200 or not isinstance(answer, list):
            raise self._refused("silence list failed", status, answer)
        return [_silence(s) for s in answer]

    async def expire_silence(self, silence_id: str) -> bool:
        """Expire a silence: True when done (also if it had expired already), False when
        Alertmanager does not know it (0.25 answers 500 "silence not found", later ones 404)."""
        status, answer = await self._call("DELETE", f"/silence/{_silence_id(silence_id)}")
        if status == 200:
            return True
        if status == 404 or (status == 500 and "not found" in str(answer)):
            return False
        raise self._refused("expiring the silence failed", status, answer)
