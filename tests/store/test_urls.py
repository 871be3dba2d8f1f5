"""Database URLs: what the settings layer may pass, and clear errors without secrets."""

from __future__ import annotations

import pytest

from integrations.store import DEFAULT_SQLITE_PATH, StoreConfigError, normalise_url, safe_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"),
        ("", f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"),
        ("sqlite:///data/flk.sqlite", "sqlite+aiosqlite:///data/flk.sqlite"),
        ("sqlite+aiosqlite:////var/lib/flk.sqlite", "sqlite+aiosqlite:////var/lib/flk.sqlite"),
        ("postgresql://flk:pw@db:5432/flk", "postgresql+psycopg://flk:pw@db:5432/flk"),
        ("postgres://flk@db/flk", "postgresql+psycopg://flk@db/flk"),
        ("postgresql+psycopg://flk@db/flk?sslmode=require", "postgresql+psycopg://flk@db/flk?sslmode=require"),
    ],
)
def test_normalise(given: str | None, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("mysql://root:s3cret-value@db/flk", "unsupported database 'mysql'"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
        ("s3cret-value-not-a-url", "not a URL"),
    ],
)
def test_bad_urls_are_refused_without_echoing_secrets(given: str, reason: str) -> None:
    with pytest.raises(StoreConfigError, match=reason) as caught:
        normalise_url(given)
    assert "s3cret-value" not in str(caught.value)


def test_safe_url_masks_the_password() -> None:
    assert safe_url("postgresql+psycopg://flk:hunter2@db/flk") == "postgresql+psycopg://flk:***@db/flk"
