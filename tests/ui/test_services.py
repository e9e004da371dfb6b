"""The console's services: views and counts, saved searches, paging, presence, i18n, textutil."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from supportdesk.core import i18n
from supportdesk.core.text import inert
from supportdesk.desk.desk import BadInput
from supportdesk.people import presence
from supportdesk.store.models import utcnow
from supportdesk.tickets import views


def test_builtin_views_counts_and_saved(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    saved = views.save_view(desk, "VIP", "tag:vip")
    with pytest.raises(BadInput, match="status is one of"):
        views.save_view(desk, "Broken", "status:bogus")
    all_views = views.all_views(desk)
    keys = [v.key for v in all_views]
    counts = views.counts(desk, all_views)
    assert keys[:5] == ["unassigned", "mine", "open", "pending", "solved"]
    assert "channel:support" in keys and "channel:telegram" in keys and "at-risk" in keys
    assert saved.key in keys
    assert counts[saved.key] == 1 and counts["solved"] == 1 and counts["open"] == 4
    views.save_view(desk, "VIP", "tag:vip status:open")  # same name: replaced
    views.delete_view(desk, "VIP")
    assert [v for v in views.all_views(desk) if v.saved] == []


def test_paging_by_offset_and_by_ids_agree(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    first = views.page(desk, "", 0, limit=3)
    rest = views.page(desk, "", 3, limit=3)
    ordered = views.ordered_ids(desk, "")
    by_ids = views.rows_by_ids(desk, ordered)
    assert views.count(desk, "") == len(ordered) == 5
    assert [r.id for r in first + rest] == ordered
    assert [r.id for r in by_ids] == ordered
    inv = next(r for r in by_ids if r.id == ids["invoice"])
    assert inv.tags == ["billing", "vip"] and inv.customer == "Olga Sidorova"


def test_presence_lease_expires(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    bob = replace(desk, agent="bob")
    now = utcnow()
    presence.heartbeat(bob, ids["printer"], "viewing", now=now)
    presence.heartbeat(bob, ids["printer"], "replying", now=now)  # renewed, not duplicated
    seen = presence.others(desk, ids["printer"], now=now)
    assert [(p.agent, p.activity) for p in seen] == [("bob", "replying")]
    assert (
        presence.others(desk, ids["printer"], now=now + presence.LEASE + timedelta(seconds=1)) == []
    )
    with pytest.raises(BadInput):
        presence.heartbeat(bob, ids["printer"], "dancing")
    presence.leave(bob)
    assert presence.others(desk, ids["printer"], now=now) == []


def test_catalogs_compile_and_language_choice(tmp_path: Path) -> None:
    assert i18n.pick_language("ru") == "ru"
    assert i18n.pick_language(None, {"LANG": "ru_RU.UTF-8"}) == "ru"
    assert i18n.pick_language(None, {"LANGUAGE": "de:ru", "LANG": "en_US"}) == "ru"
    assert i18n.pick_language(None, {"LANG": "C.UTF-8"}) == "en"
    assert i18n.pick_language("xx", {}) == "en"
    ru = i18n.parse_po(i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "supportdesk.po")
    assert ru["Unassigned"] == "Неназначенные"
    try:
        i18n.set_language("ru")
        assert i18n._("Search") == "Поиск"
        assert i18n.ngettext("{n} quoted line folded", "{n} quoted lines folded", 5).startswith(
            "{n} строк "
        )
        assert i18n._("a string nobody translated") == "a string nobody translated"
    finally:
        i18n.set_language("en")
    bad = tmp_path / "bad.po"
    bad.write_text('msgid "x"\nmsgstr unquoted\n', encoding="utf-8")
    with pytest.raises(i18n.CatalogError, match="double quotes"):
        i18n.parse_po(bad)


def test_every_ui_string_has_a_russian_translation() -> None:
    """Every _() string and binding description in the console is in the Russian catalog."""
    import ast

    root = Path(i18n.__file__).parents[1] / "ui"
    files = [root / "app.py", *(root / "screens").glob("*.py"), *(root / "widgets").glob("*.py")]
    files = [f for f in files if f.name != "dashboard.py"]  # the SLA dashboard ships its own
    ru = i18n.parse_po(i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "supportdesk.po")
    missing = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            texts: list[str] = []
            if name == "_" and node.args and isinstance(node.args[0], ast.Constant):
                texts.append(str(node.args[0].value))
            if name == "Binding":
                if len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                    texts.append(str(node.args[2].value))
                texts += [str(k.value.value) for k in node.keywords
                          if k.arg == "tooltip" and isinstance(k.value, ast.Constant)]  # fmt: skip
            missing += [f"{f.name}: {t}" for t in texts if t and t not in ru]
    assert missing == []


def test_inert_replaces_control_sequences() -> None:
    hostile = "\x1b]52;c;SGVsbG8=\x07[bold]x[/bold]\u202e\r\nnext"
    assert inert(hostile) == "␛]52;c;SGVsbG8=\\x07[bold]x[/bold]\\u202e\nnext"
    assert inert(hostile, one_line=True).endswith("\\u202e⏎next")
    assert inert(None) == ""
