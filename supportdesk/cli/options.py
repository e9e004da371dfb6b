"""Options many commands share, declared once (as sqlite-utils does with ``output_options``).

``--json`` and ``--csv`` exclude each other: asking for both is bad input (exit 2).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core


def _one_format(ctx: typer.Context, param: Any, value: bool) -> bool:
    if value:
        chosen = ctx.meta.setdefault("supportdesk.output", [])
        chosen.append(param.opts[0])
        if len(chosen) > 1:
            raise typer.BadParameter(f"give {' or '.join(chosen)}, not both", param=param)
    return value


JsonOut = Annotated[
    bool,
    typer.Option("--json", help="One JSON document on stdout, nothing else.", callback=_one_format),
]
CsvOut = Annotated[
    bool, typer.Option("--csv", help="CSV with a header row on stdout.", callback=_one_format)
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]


def stdin_or(value: str | None) -> str | None:
    """``-`` means standard input, for every text option (``--text -``)."""
    if value == "-":
        import sys

        return sys.stdin.read()
    return value


class QueryCommand(typer.core.TyperCommand):
    """A command whose arguments are query terms: ``-status:pending`` (a negated term, as the
    query language writes it) is a term, not an unknown option, and becomes ``NOT status:pending``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        known = {o for p in self.params for o in (*p.opts, *p.secondary_opts)}
        out: list[str] = []
        rest = False
        for a in args:
            if rest or a == "--":
                rest = True
                out.append(a)
            elif (
                a.startswith("-")
                and not a.startswith("--")
                and len(a) > 1
                and a not in known
                and a[:2] not in known  # -n5
                and (a[1].isalpha() or a[1] == '"')
            ):
                out.extend(["NOT", a[1:]])
            else:
                out.append(a)
        return list(super().parse_args(ctx, out))
