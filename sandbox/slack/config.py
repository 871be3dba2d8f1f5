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


# Slack's published tiers (calls per minute per method per workspace). The burst is a full
# minute's allowance: Slack tolerates bursts, and tests should meet the sustained rate, not
# an artificially tight burst, unless they tighten it themselves.
TIER_1 = RateLimit(per_minute=1, burst=5)
TIER_2 = RateLimit(per_minute=20, burst=20)
TIER_3 = RateLimit(per_minute=50, burst=50)
TIER_4 = RateLimit(per_minute=100, burst=100)


def default_rate_limits() -> dict[str, RateLimit]:
    return {
        "apps.connections.open": TIER_1,
        "auth.test": TIER_4,
        # chat.postMessage is "special": ~1/s per channel (see channel_post_limit) and a
        # workspace-wide cap of several hundred per minute.
        "chat.postMessage": RateLimit(per_minute=600, burst=600),
        "chat.postEphemeral": TIER_4,
        "chat.update": TIER_3,
        "chat.getPermalink": TIER_4,
        "chat.startStream": TIER_3,
        "chat.appendStream": TIER_4,
        "chat.stopStream": TIER_3,
        "conversations.history": TIER_3,
        "conversations.replies": TIER_3,
        "views.open": TIER_4,
        "views.update": TIER_4,
        "files.getUploadURLExternal": TIER_4,
        "files.completeUploadExternal": TIER_4,
        "usergroups.users.list": TIER_2,
        "users.info": TIER_4,
        "reactions.add": TIER_3,
    }


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
    ``channel_post_limit`` is chat.postMessage's extra per-channel bucket (Slack: about one
    message per second per channel, short bursts allowed). ``rate_limits_enabled=False``
    turns every limit off (benchmarks). ``trigger_ttl`` is how long a trigger_id may open a
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
    rate_limits: dict[str, RateLimit] = field(default_factory=default_rate_limits)
    channel_post_limit: RateLimit | None = field(default_factory=lambda: RateLimit(per_minute=60, burst=20))
    rate_limits_enabled: bool = True
    trigger_ttl: float = 3.0
    ack_timeout: float = 3.0
    response_url_ttl: float = 30 * 60
    response_url_max_uses: int = 5
    max_upload_bytes: int = 64 * 1024 * 1024
