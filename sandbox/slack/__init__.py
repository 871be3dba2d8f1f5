"""A local stand-in for Slack: the Web API (incl. rate limits and Block Kit checks),
response URLs, file uploads and Socket Mode, plus a driver that plays the user's side.

See ``SlackEmulator`` (the server and its transcript) and ``SlackDriver``.
"""

from sandbox.slack.config import RateLimit, SlackConfig, User
from sandbox.slack.driver import Delivery, SlackDriver
from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.models import Call, Ephemeral, File, Message, View

__all__ = [
    "Call",
    "Delivery",
    "Ephemeral",
    "File",
    "Message",
    "RateLimit",
    "SlackConfig",
    "SlackDriver",
    "SlackEmulator",
    "User",
    "View",
]
