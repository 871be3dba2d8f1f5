"""Settings from the environment: Slack's own variable names, FLK_* for the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from commands.config import ConfigError, RunbookConfig, load_runbook_config


class SettingsError(Exception):
    """One line naming the setting and what was expected."""


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLK_", extra="ignore", frozen=True)

    slack_bot_token: SecretStr = Field(validation_alias=_alias("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr = Field(validation_alias=_alias("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(default=None, validation_alias=_alias("SLACK_APP_TOKEN"))
    slack_api_url: str = "https://slack.com/api/"
    incident_channel: str
    prometheus_url: str
    alertmanager_url: str | None = None
    kube_api_url: str | None = None
    kube_token: SecretStr | None = None
    namespace: str = Field(default="fractal-lba", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    admin_url: str | None = None
    worm_root: str | None = None
    tenant_repo: str | None = None
    listen: str = "127.0.0.1:3000"
    database_url: str | None = None
    config: str | None = None
    alert_webhook_token: SecretStr | None = None
    # Grafana HTTP API for the dashboard annotation on resolve (runbook §6); unset: no annotation.
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    # The hash-chained audit log of every command, plan, confirmation, refusal, application and undo.
    audit_log: str = "flk-audit.jsonl"
    # How a step's progress is shown: a checklist message edited in place ("update"), or Slack's
    # native streamed task plan ("native", chat.startStream) where the workspace has it.
    slack_streaming: Literal["update", "native"] = "update"
    # Progress edits are coalesced to at most one per message per this many seconds.
    progress_interval_s: float = Field(default=1.0, ge=0, le=30)

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


def load_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, RunbookConfig]:
    """Read the environment (or the given mapping of the same variables); raise SettingsError
    with one line on the first bad setting."""
    try:
        if environ is None:
            settings = Settings()  # type: ignore[call-arg]
        else:
            fields = {k.removeprefix("FLK_").lower() if k.startswith("FLK_") else k: v for k, v in environ.items()}
            settings = Settings(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        name = _ENV_NAMES.get(field, field if field.isupper() else f"FLK_{field.upper()}")
        if first["type"] == "missing":
            raise SettingsError(f"{name}: required setting is missing") from None
        raise SettingsError(f"{name}: {first['msg'].removeprefix('Value error, ')}") from None
    try:
        config = load_runbook_config(settings.config)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    return settings, config
