"""Options many commands share, declared once (as sqlite-utils does with ``output_options``).

``--json`` and ``--csv`` exclude each other: asking for both is bad input (exit 2).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer


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
