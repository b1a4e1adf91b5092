"""Fixtures of the store tests: a real PostgreSQL server (tests/pg_server.py)."""

from pg_server import postgres_server, postgres_url  # noqa: F401 - fixtures for the tests here
