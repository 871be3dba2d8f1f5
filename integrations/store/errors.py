"""Typed errors of the incident store; their messages never carry credentials."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time; retry later (HTTP 503)."""


class StoreConfigError(StoreError, ValueError):
    """The database URL or an option is unusable."""


class NotFound(StoreError, LookupError):
    """No row with that id."""


class IncidentConflict(StoreError):
    """The change would leave two unresolved incidents for one tenant (or two isolation ones)."""
