"""The supportdesk command line (typer). One sub-app per noun."""
