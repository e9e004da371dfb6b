"""Real-peer fixtures for the e-mail channel tests.

Imported explicitly until tests/conftest.py registers ``tests.peers.dovecot`` and
``tests.peers.smtp_sink`` in ``pytest_plugins`` (pytest allows that only in the root conftest).
"""

from tests.peers.dovecot import dovecot_server, imap_account
from tests.peers.smtp_sink import smtp_sink

__all__ = ["dovecot_server", "imap_account", "smtp_sink"]
