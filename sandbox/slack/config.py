"""What the emulated Slack workspace holds and how strictly it behaves."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_minute`` calls sustained, up to ``burst`` at once."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")


@dataclass(frozen=True)
class User:
    id: str
    name: str
    real_name: str
    email: str = ""
    tz: str = "Europe/London"
    is_bot: bool = False


# Slack's published tiers: calls per minute per method per workspace.
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
# chat.postMessage is "special": about one message per second per channel (short bursts
# allowed) under a workspace-wide cap of several hundred per minute.
CHANNEL_POSTS_PER_MINUTE = 60
WORKSPACE_POSTS_PER_MINUTE = 600
# Defaults keep Slack's shapes at this multiple of its rates, so that a whole test suite
# sharing one workspace stays under them; a test that wants Slack's own numbers passes
# ``rate_limits=slack_rate_limits()`` and ``channel_post_limit=slack_channel_post_limit()``.
LAX = 10

_METHOD_TIERS = {
    "apps.connections.open": 1,
    "auth.test": 4,
    "chat.postEphemeral": 4,
    "chat.update": 3,
    "chat.getPermalink": 4,
    "chat.startStream": 3,
    "chat.appendStream": 4,
    "chat.stopStream": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "views.open": 4,
    "views.update": 4,
    "views.push": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "usergroups.users.list": 2,
    "users.info": 4,
    "reactions.add": 3,
}


def slack_rate_limits(scale: float = 1.0) -> dict[str, RateLimit]:
    """Slack's per-method limits times ``scale``; the burst is one minute's allowance."""

    def limit(per_minute: float) -> RateLimit:
        return RateLimit(per_minute=per_minute * scale, burst=max(1, round(per_minute * scale)))

    limits = {method: limit(TIER_PER_MINUTE[tier]) for method, tier in _METHOD_TIERS.items()}
    limits["chat.postMessage"] = limit(WORKSPACE_POSTS_PER_MINUTE)
    return limits


def slack_channel_post_limit(scale: float = 1.0) -> RateLimit:
    """chat.postMessage per channel: ``scale`` messages per second, bursts of up to 5."""
    return RateLimit(per_minute=CHANNEL_POSTS_PER_MINUTE * scale, burst=max(1, round(5 * scale)))


def default_users() -> dict[str, User]:
    people = [
        User("U_ALICE", "alice", "Alice Adams", "alice@example.com"),
        User("U_BOB", "bob", "Bob Brown", "bob@example.com"),
        User("U_CAROL", "carol", "Carol Chen", "carol@example.com"),
        User("U_DAVE", "dave", "Dave Diaz", "dave@example.com"),
    ]
    return {u.id: u for u in people}


@dataclass
class SlackConfig:
    """One emulated workspace with one installed app.

    ``channels`` maps channel id -> name, ``usergroups`` maps usergroup id -> member ids.
    ``rate_limits`` maps a Web API method to its bucket (methods not listed are unlimited);
    ``channel_post_limit`` is chat.postMessage's extra per-channel bucket. Both default to
    Slack's limits at ``LAX`` times the rate. ``rate_limits_enabled=False`` turns every
    limit off (benchmarks). ``trigger_ttl`` is how long a trigger_id may open a
    view (Slack: 3 s); ``ack_timeout`` how long Slack waits for an ack (3 s).
    """

    bot_token: str = "xoxb-sandbox"
    app_token: str = "xapp-sandbox"
    signing_secret: str = "sandbox-signing-secret"
    verification_token: str = "sandbox-verification-token"
    team_id: str = "T_SANDBOX"
    team_domain: str = "flk-sandbox"
    team_name: str = "FLK Sandbox"
    app_id: str = "A_SANDBOX"
    bot_id: str = "B_SANDBOX"
    bot_user_id: str = "U_BOT"
    bot_name: str = "flk"
    channels: dict[str, str] = field(
        default_factory=lambda: {"C_INCIDENTS": "incidents", "C_GENERAL": "general", "C_SRE": "sre"}
    )
    users: dict[str, User] = field(default_factory=default_users)
    usergroups: dict[str, list[str]] = field(
        default_factory=lambda: {"S_ONCALL": ["U_ALICE", "U_BOB"], "S_SRE": ["U_ALICE", "U_BOB", "U_CAROL"]}
    )
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: slack_rate_limits(LAX))
    channel_post_limit: RateLimit | None = field(default_factory=lambda: slack_channel_post_limit(LAX))
    rate_limits_enabled: bool = True
    trigger_ttl: float = 3.0
    ack_timeout: float = 3.0
    response_url_ttl: float = 30 * 60
    response_url_max_uses: int = 5
    max_upload_bytes: int = 64 * 1024 * 1024
