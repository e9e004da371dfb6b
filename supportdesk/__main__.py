"""`python -m supportdesk` is the `supportdesk` command."""

from supportdesk.cli.entry import run

run()
