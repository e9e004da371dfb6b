"""`python -m supportdesk` is the `supportdesk` command."""

from supportdesk.cli.main import run

run()
