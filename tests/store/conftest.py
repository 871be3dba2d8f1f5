"""Store tests use the fixtures in tests/store/fixtures.py (loaded by tests/conftest.py)."""
