"""Binding descriptions are written in English at import time and translated per instance."""

from __future__ import annotations

from dataclasses import replace

from textual.binding import BindingsMap
from textual.dom import DOMNode

from supportdesk.core.i18n import _


def translate_bindings(node: DOMNode) -> None:
    """Replace ``node``'s binding descriptions and tooltips by their translations."""
    node._bindings = BindingsMap.from_keys(
        {
            key: [replace(b, description=_(b.description), tooltip=_(b.tooltip)) for b in bindings]
            for key, bindings in node._bindings.key_to_bindings.items()
        }
    )
