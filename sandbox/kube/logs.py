"""``pods/{name}/log``: the kubelet's answer to PodLogOptions, over lines a generator supplies."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sandbox.kube.errors import KubeError, bad_request
from sandbox.kube.timefmt import parse_rfc3339, rfc3339_nano

# Pod name -> its container's log lines as time-ordered (unix time, line) pairs.
PodLogs = Callable[[str], Sequence[tuple[float, str]]]


_time = itemgetter(0)


def no_logs(pod: str) -> Sequence[tuple[float, str]]:
    return ()


@dataclass(frozen=True)
class LogOptions:
    container: str | None = None
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    previous: bool = False

    @classmethod
    def from_query(cls, pod: str, query: Mapping[str, str]) -> LogOptions:
        """Parse and validate the query string the way the API server does."""
        since_time = None
        if query.get("sinceTime"):
            try:
                since_time = parse_rfc3339(query["sinceTime"])
            except ValueError:
                raise bad_request(f'parsing time "{query["sinceTime"]}" as RFC 3339: cannot parse') from None
        options = cls(
            container=query.get("container") or None,
            tail_lines=_integer(query, "tailLines"),
            since_seconds=_integer(query, "sinceSeconds"),
            since_time=since_time,
            timestamps=_boolean(query, "timestamps"),
            limit_bytes=_integer(query, "limitBytes"),
            previous=_boolean(query, "previous"),
        )
        causes = []
        if options.since_seconds is not None and options.since_time is not None:
            causes.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
        if options.since_seconds is not None and options.since_seconds < 1:
            causes.append(f"sinceSeconds: Invalid value: {options.since_seconds}: must be greater than 0")
        if options.tail_lines is not None and options.tail_lines < 0:
            causes.append(f"tailLines: Invalid value: {options.tail_lines}: must be greater than or equal to 0")
        if options.limit_bytes is not None and options.limit_bytes < 1:
            causes.append(f"limitBytes: Invalid value: {options.limit_bytes}: must be greater than 0")
        if causes:
            details = {"name": pod, "kind": "PodLogOptions", "causes": []}
            raise KubeError("Invalid", f'PodLogOptions "{pod}" is invalid: {", ".join(causes)}', details)
        return options


def _integer(query: Mapping[str, str], key: str) -> int | None:
    if key not in query:
        return None
    try:
        return int(query[key])
    except ValueError:
        raise bad_request(f'{key}: invalid value "{query[key]}": expected an integer') from None


def _boolean(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise bad_request(f'{key}: invalid value "{query[key]}": expected true or false')
    return value in ("true", "1")


def container_names(pod: dict[str, Any]) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]


def check_container(pod: dict[str, Any], options: LogOptions) -> str:
    """The container to read: the requested one, or the only one (400 otherwise)."""
    name = pod["metadata"]["name"]
    names = container_names(pod)
    if options.container is None:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: {names}")
        container = names[0]
    elif options.container in names:
        container = options.container
    else:
        raise bad_request(f"container {options.container} is not valid for pod {name}")
    if options.previous:
        raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    return container


def render(lines: Sequence[tuple[float, str]], options: LogOptions, now: float) -> str:
    """The log text: lines up to ``now``, then since*, then tailLines, then limitBytes."""
    start = float("-inf")
    if options.since_seconds is not None:
        start = now - options.since_seconds
    elif options.since_time is not None:
        start = options.since_time
    # The lines are time-ordered: bisect rather than scan a day of them on every request.
    chosen = lines[bisect_left(lines, start, key=_time) : bisect_right(lines, now, key=_time)]
    if options.tail_lines is not None:
        chosen = chosen[len(chosen) - options.tail_lines :] if options.tail_lines else []
    if options.timestamps:
        text = "".join(f"{rfc3339_nano(t)} {line}\n" for t, line in chosen)
    else:
        text = "".join(f"{line}\n" for _, line in chosen)
    if options.limit_bytes is not None:
        text = text.encode()[: options.limit_bytes].decode(errors="ignore")
    return text
