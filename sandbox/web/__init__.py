"""The emulated Slack workspace as a web page: watch the bot's threads live and act as a person.

See ``WorkspacePage``; ``flk sandbox up`` and ``make demo`` print its address.
"""

from sandbox.web.server import WorkspacePage

__all__ = ["WorkspacePage"]
