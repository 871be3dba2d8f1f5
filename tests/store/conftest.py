from tests.store.fixtures import FakeClock, clock, db_url, postgres, replica, store

__all__ = ["FakeClock", "clock", "db_url", "postgres", "replica", "store"]
