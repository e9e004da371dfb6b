"""The reports are measured on the SLA tests' desk: business hours in Moscow, a known history."""

from tests.sla.conftest import bdesk as bdesk  # noqa: F401  (a fixture, shared)
