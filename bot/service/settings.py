"""Settings from the environment: Slack's own variable names, FLK_* for the rest."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from commands.audit import REPLICA
from commands.config import ConfigError, RunbookConfig, load_runbook_config


class SettingsError(Exception):
    """One line naming the setting and what was expected."""


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLK_", extra="ignore", frozen=True)

    # Each description is the README's configuration reference (python -m bot.service.settings_doc).
    slack_bot_token: SecretStr = Field(
        validation_alias=_alias("SLACK_BOT_TOKEN"), description="The Slack app's bot token (`xoxb-…`)."
    )
    slack_signing_secret: SecretStr = Field(
        validation_alias=_alias("SLACK_SIGNING_SECRET"),
        description="The Slack app's signing secret; requests to `/slack/events` must carry its signature.",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("SLACK_APP_TOKEN"),
        description="App-level token (`xapp-…`, `connections:write`), for `flk serve --socket-mode`.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (a trailing `/` is added)."
    )
    incident_channel: str = Field(description="Channel id of the incident threads.")
    prometheus_url: str = Field(description="Prometheus base URL.")
    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager base URL, for silences; unset: no silences."
    )
    kube_api_url: str | None = Field(
        default=None, description="Kubernetes API server URL; unset: the in-cluster service account."
    )
    kube_token: SecretStr | None = Field(
        default=None, description="Bearer token for the API server; unset: the in-cluster service account."
    )
    namespace: str = Field(
        default="fractal-lba", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="The fractal-lba namespace."
    )
    admin_url: str | None = Field(
        default=None, description="Backend admin API URL; unset: through the API server's service proxy."
    )
    worm_root: str | None = Field(
        default=None, description="WORM audit log root (`YYYY/MM/DD/*.jsonl`); unset: no escalation samples or export."
    )
    worm_index_cache: str | None = Field(
        default=None,
        description="Where WORM indexes go when the WORM root is not writable; unset: `~/.cache/flk/worm-index`.",
    )
    tenant_repo: str | None = Field(
        default=None, description="Checkout of the tenant config repository; unset: no config commits in triage."
    )
    listen: str = Field(default="127.0.0.1:3000", description="`host:port` to serve HTTP on.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the incident store; unset: SQLite `./flk-chatops.sqlite`; "
        "`postgresql://…` for several replicas.",
    )
    config: str | None = Field(default=None, description="YAML runbook config; unset: the runbook's defaults.")
    alert_webhook_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Alertmanager must send to `/alerts/alertmanager`; "
        "unset: every notification is refused (401).",
    )
    # Grafana HTTP API for the dashboard annotation on resolve (runbook §6); unset: no annotation.
    grafana_url: str | None = Field(
        default=None, description="Grafana base URL, for annotations on resolve; unset: no annotation."
    )
    grafana_token: SecretStr | None = Field(default=None, description="Grafana API token.")
    audit_log: str = Field(
        default="flk-audit.jsonl",
        description="The hash-chained audit log of every command, plan, confirmation, refusal, application and undo; "
        "`{replica}` in it becomes this replica's host name (its pod's name), so that replicas sharing a volume "
        "each keep a chain of their own (`flk audit verify` checks them all).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="Key of the audit log's HMAC-SHA256 chain, kept off the log's volume; unset: plain SHA-256 "
        "(anyone who can write the file can rewrite it consistently).",
    )
    # "native" is Slack's chat.startStream, where the workspace has it.
    slack_streaming: Literal["update", "native"] = Field(
        default="update",
        description="How a step's progress shows: `update` (a checklist edited in place) or `native` "
        "(Slack's streamed task plan, for steps a person asked for).",
    )
    progress_interval_s: float = Field(
        default=1.0, ge=0, le=30, description="At most one progress edit per message per this many seconds."
    )
    job_lease_s: float = Field(
        default=15.0,
        ge=1,
        le=300,
        description="A running job's claim, renewed every third of it: a job whose worker died (SIGKILL, "
        "lost node) is taken by another worker after this many seconds.",
    )
    operator: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._@-]{1,64}$",
        description="Who runs `flk` in a terminal (a name or Slack user id); only names in the runbook config's "
        "`mitigations.terminal_operators` may change anything from there.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Logs on stderr: `json` (one object per line with incident_id, tenant_id, user) or `text`.",
    )

    @field_validator("audit_log")
    @classmethod
    def _per_replica(cls, v: str) -> str:
        # One writer per chain: replicas on different nodes cannot rely on flock over a shared
        # (network) volume, whose appends from two clients may also interleave.
        return v.replace(REPLICA, re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "replica")

    @field_validator("audit_key")
    @classmethod
    def _audit_key_long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().strip() and len(v.get_secret_value().strip().encode()) < 16:
            raise ValueError("the audit log's key must be at least 16 bytes")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, v: str) -> str:
        # AsyncWebClient joins method names onto base_url; without the slash it drops a path part.
        return v if v.endswith("/") else v + "/"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected host:port, got {v!r}")
        return v

    @field_validator("prometheus_url", "alertmanager_url", "kube_api_url", "admin_url", "grafana_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {v!r}")
        return v.rstrip("/") if v else v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


_ENV_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
}


def env_name(field: str) -> str:
    """The environment variable of a setting: Slack's own names, FLK_* for the rest."""
    return _ENV_NAMES.get(field, f"FLK_{field.upper()}")


SECRET_FIELDS = tuple(name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation))


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Every secret in the environment (each SecretStr setting, the database URL's password), read
    before validation so that the logs redact them from the first line on."""
    found = [environ.get(env_name(field), "") for field in SECRET_FIELDS]
    try:
        found.append(urlsplit(environ.get("FLK_DATABASE_URL", "")).password or "")
    except ValueError:  # a malformed URL stops start-up later; it still may not be logged
        found.append(environ.get("FLK_DATABASE_URL", ""))
    return [value for value in found if value]


class TerminalSettings(Settings):
    """The terminal's: the same settings, with Slack optional (incident tooling must work on the
    day Slack is down; with Slack set, what the terminal does is also said in the thread)."""

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_BOT_TOKEN"))  # type: ignore[assignment]
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_SIGNING_SECRET"))  # type: ignore[assignment]
    incident_channel: str | None = Field(default=None)  # type: ignore[assignment]


S = TypeVar("S", bound=Settings)


def load_settings(environ: Mapping[str, str] | None = None, cls: type[S] = Settings) -> tuple[S, RunbookConfig]:  # type: ignore[assignment]
    """Read the environment (or the given mapping of the same variables); raise SettingsError
    with one line on the first bad setting."""
    try:
        if environ is None:
            settings = cls()  # type: ignore[call-arg]
        else:
            fields = {k.removeprefix("FLK_").lower() if k.startswith("FLK_") else k: v for k, v in environ.items()}
            settings = cls(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        name = field if field.isupper() else env_name(field)
        if first["type"] == "missing":
            raise SettingsError(f"{name}: required setting is missing") from None
        raise SettingsError(f"{name}: {first['msg'].removeprefix('Value error, ')}") from None
    try:
        config = load_runbook_config(settings.config)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    return settings, config
