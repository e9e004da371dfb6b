"""The missing-peer rule: skip loudly on a developer machine, fail under CI=true."""

from __future__ import annotations

import pytest

from tests.peers.util import free_port, peer_unavailable, port_open, require_binary


def test_missing_peer_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="TEST PEER UNAVAILABLE: no dovecot"):
        peer_unavailable("no dovecot")


def test_missing_peer_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        peer_unavailable("no dovecot")


def test_missing_binary_without_root_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.peers.util.is_root", lambda: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install dovecot-imapd"):
        require_binary("/nonexistent/dovecot", "dovecot-imapd")


def test_free_port_is_free() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not port_open("127.0.0.1", port)
