"""What a person does on the page, done the way Slack does it: through the signing driver, so
that slash commands, button clicks, modal submissions and reactions reach the real Bolt app
as signed requests (or Socket Mode envelopes), and Slack's reaction to each ack is applied.

Each function takes the request's JSON (already parsed) and returns ``(status, body)``.
Bad input is a 400 with a one-line ``error`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.slack.driver import Delivery, SlackDriver
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.methods_chat import MAX_TEXT

Answer = tuple[int, dict[str, Any]]
EMOJI_NAME = r"^[a-z0-9_+\-']{1,100}$"


class _Act(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str


class Slash(_Act):
    channel: str
    text: str = Field(min_length=1, max_length=4000)


class Post(_Act):
    channel: str
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    thread_ts: str | None = None


class Click(_Act):
    action_id: str = Field(min_length=1, max_length=255)
    ts: str | None = None
    channel: str | None = None
    view_id: str | None = None
    value: Any = None


class Submit(_Act):
    view_id: str
    values: dict[str, Any] = Field(default_factory=dict)


class Close(_Act):
    view_id: str


class React(_Act):
    channel: str
    ts: str
    name: str = Field(pattern=EMOJI_NAME)


def bad_input(exc: ValidationError) -> Answer:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return 400, {"error": f"{where}: {first['msg']}"}


class Actions:
    """The page's hands: one driver, aimed at the bot's events URL or at Socket Mode (None)."""

    def __init__(self, emulator: SlackEmulator, bot_url: str | None, commands: tuple[str, ...]) -> None:
        self.emulator = emulator
        self.ws = emulator.workspace
        self.driver = SlackDriver(emulator, bot_url)
        self.commands = commands

    @property
    def bot_url(self) -> str | None:
        return self.driver.bot_url

    @bot_url.setter
    def bot_url(self, url: str | None) -> None:
        self.driver.bot_url = url

    def bot(self) -> str:
        """Where the page's requests go, in words."""
        if self.driver.bot_url:
            return f"signed HTTP to {self.driver.bot_url}"
        count = len(self.emulator.socket.connections)
        return f"Socket Mode ({count} connected)" if count else "no bot connected"

    async def close(self) -> None:
        await self.driver.close()

    # --- checks -------------------------------------------------------------------------------

    def _person(self, user: str) -> str | None:
        found = self.ws.users.get(user)
        if found is None or found.is_bot:
            return f"user: no person {user!r} in this workspace"
        return None

    def _no_bot(self) -> Answer | None:
        if self.driver.bot_url is None and not self.emulator.socket.connections:
            return 503, {"error": "no bot is connected (give the page a bot URL, or run the bot in Socket Mode)"}
        return None

    @staticmethod
    def _delivered(delivery: Delivery, failure: str) -> dict[str, Any]:
        """The ack as the page reports it; ``failure`` is what Slack says when there was none."""
        body: dict[str, Any] = {"status": delivery.status, "acked": delivery.acked}
        if not delivery.acked:
            body["error"] = "operation_timeout" if delivery.status == 408 else failure
        return body

    # --- what a person does ---------------------------------------------------------------------

    async def slash(self, raw: dict[str, Any]) -> Answer:
        try:
            act = Slash.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        command, _, text = act.text.strip().partition(" ")
        problem = self._person(act.user) or self._channel(act.channel)
        if problem:
            return 400, {"error": problem}
        if command not in self.commands:
            # What Slackbot answers for a command no app in the workspace registered.
            text = f'{command} is not a valid command. In Slack, all messages that start with "/" are commands.'
            return 400, {"error": text}
        unreachable = self._no_bot()
        if unreachable:
            return unreachable
        delivery = await self.driver.slash(text.strip(), command=command, user=act.user, channel=act.channel)
        return 200, self._delivered(delivery, "dispatch_failed")

    async def post(self, raw: dict[str, Any]) -> Answer:
        """A person writes a message (the bot subscribes to no message events: Slack sends none)."""
        try:
            act = Post.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        problem = self._person(act.user) or self._channel(act.channel)
        if problem:
            return 400, {"error": problem}
        thread_ts = None
        if act.thread_ts is not None:
            parent = self.emulator.message(act.channel, act.thread_ts)
            if parent is None:
                return 400, {"error": "thread_ts: no such message in this channel"}
            thread_ts = parent.thread_ts if parent.is_reply else parent.ts
        msg = self.emulator.add_user_message(act.channel, act.user, act.text, thread_ts=thread_ts)
        return 200, {"ts": msg.ts}

    async def click(self, raw: dict[str, Any]) -> Answer:
        try:
            act = Click.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        problem = self._person(act.user) or (self._channel(act.channel) if act.channel else None)
        if act.view_id is not None:
            problem = problem or self._own_view(act.view_id, act.user)
        if problem:
            return 400, {"error": problem}
        unreachable = self._no_bot()
        if unreachable:
            return unreachable
        try:
            delivery = await self.driver.click(
                act.action_id, user=act.user, channel=act.channel, ts=act.ts, view_id=act.view_id, value=act.value
            )
        except (LookupError, ValueError) as exc:
            return 400, {"error": str(exc)}
        return 200, self._delivered(delivery, "dispatch_failed")

    async def submit(self, raw: dict[str, Any]) -> Answer:
        try:
            act = Submit.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        problem = self._person(act.user) or self._own_view(act.view_id, act.user)
        if problem:
            return 400, {"error": problem}
        unreachable = self._no_bot()
        if unreachable:
            return unreachable
        try:
            delivery = await self.driver.submit_view(act.view_id, values=act.values, user=act.user)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        view = self.ws.opened_views[act.view_id]
        return 200, {**self._delivered(delivery, "dispatch_failed"), "errors": view.errors, "closed": view.closed}

    async def close_view(self, raw: dict[str, Any]) -> Answer:
        try:
            act = Close.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        problem = self._person(act.user) or self._own_view(act.view_id, act.user)
        if problem:
            return 400, {"error": problem}
        delivery = await self.driver.close_view(act.view_id)
        if delivery is None:  # the view has no notify_on_close: Slack tells the app nothing
            return 200, {"status": None, "acked": True}
        return 200, self._delivered(delivery, "dispatch_failed")

    async def react(self, raw: dict[str, Any]) -> Answer:
        """A person adds a reaction: stored, then ``reaction_added`` goes to the bot."""
        try:
            act = React.model_validate(raw)
        except ValidationError as exc:
            return bad_input(exc)
        problem = self._person(act.user) or self._channel(act.channel)
        if problem:
            return 400, {"error": problem}
        msg = self.emulator.message(act.channel, act.ts)
        if msg is None:
            return 400, {"error": "ts: no such message in this channel"}
        if act.user in msg.reactions.get(act.name, []):
            return 200, {"already_reacted": True}
        unreachable = self._no_bot()
        if unreachable:
            return unreachable
        delivery = await self.driver.reaction_added(msg.channel, act.ts, act.name, user=act.user)
        return 200, self._delivered(delivery, "dispatch_failed")

    # --- lookups --------------------------------------------------------------------------------

    def _channel(self, channel: str) -> str | None:
        return None if channel in self.ws.channels else f"channel: no channel {channel!r}"

    def _own_view(self, view_id: str, user: str) -> str | None:
        view = self.ws.opened_views.get(view_id)
        if view is None or view.closed or view.user != user:
            return f"view_id: {view_id!r} is not an open modal of {user}"
        return None
