"""Shared test set-up: keep the developer's machine out of the tests."""

from __future__ import annotations

pytest_plugins: list[str] = []
