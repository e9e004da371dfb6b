"""Agents and groups are tried on the ticket tests' seeded desk."""

from tests.tickets.conftest import seeded as seeded  # noqa: F401  (a fixture, shared)
