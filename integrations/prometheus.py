"""Prometheus over its HTTP API, through prometheus-api-client.

The client is synchronous; calls run in a thread, with a timeout and no retries (its
default retry policy takes seconds to give up on a dead server).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from integrations.errors import BackendError

if TYPE_CHECKING:
    from prometheus_api_client import PrometheusConnect


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class RangeSeries:
    labels: dict[str, str]
    points: list[tuple[float, float]]


class Prometheus:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._connect: PrometheusConnect | None = None
        # Its own threads: a hanging Prometheus must not starve the loop's default executor,
        # which aiohttp needs for name resolution (every other backend would stall too).
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="prometheus")

    @property
    def _client(self) -> PrometheusConnect:
        # Made at the first query: prometheus-api-client (with requests and dateparser) costs
        # ~15 MB and is imported only by the processes that query (the workers, not the front).
        if self._connect is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            self._connect = PrometheusConnect(self.url, disable_ssl=True, retry=Retry(total=0), timeout=self.timeout_s)
        return self._connect

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from prometheus_api_client import PrometheusApiClientException

        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs)), self.timeout_s
            )
        except TimeoutError:
            raise BackendError("prometheus", f"no answer within {self.timeout_s:g} s") from None
        except requests.exceptions.Timeout:
            raise BackendError("prometheus", f"no answer within {self.timeout_s:g} s") from None
        except requests.exceptions.ConnectionError:
            raise BackendError("prometheus", f"cannot connect to {self.url}") from None
        except PrometheusApiClientException as exc:
            raise BackendError("prometheus", _short(str(exc))) from None
        except ValueError as exc:
            raise BackendError("prometheus", f"unreadable answer ({_short(str(exc))})") from None

    async def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        params = {"time": f"{at.timestamp():.3f}"} if at else None
        result = await self._call(self._client.custom_query, promql, params=params)
        return [Sample(labels=r.get("metric", {}), value=float(r["value"][1])) for r in result]

    async def scalar(self, promql: str, at: datetime | None = None) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        samples = await self.query(promql, at)
        return samples[0].value if samples else None

    async def query_range(self, promql: str, start: datetime, end: datetime, step_s: int) -> list[RangeSeries]:
        result = await self._call(
            self._client.custom_query_range, promql, start_time=start, end_time=end, step=f"{step_s}s"
        )
        return [
            RangeSeries(labels=r.get("metric", {}), points=[(float(t), float(v)) for t, v in r["values"]])
            for r in result
        ]

    async def label_values(self, label: str, metric: str) -> list[str]:
        params = {"match[]": metric}
        return list(await self._call(self._client.get_label_values, label, params=params))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def now() -> datetime:
    return datetime.now(UTC)
