"""Knowledge base: CRUD, search, Markdown folders, the HTML help site, composer suggestions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from supportdesk.desk.desk import BadInput, Conflict, NotFound
from supportdesk.replies import kb
from supportdesk.search.search import search
from supportdesk.store.models import Event, Template
from tests.factories import inbound_email, ingest


def add(desk: Any, title: str, body: str, **kw: Any) -> int:
    return kb.add_article(desk, title, body, **kw).id or 0


def kb_ids(desk: Any, query: str) -> list[int]:
    with desk.db.read() as s:
        return [h["id"] for h in search(s, desk, query, kinds=["kb"])]


def test_crud_with_audit_and_search(desk: Any) -> None:
    aid = add(
        desk,
        "Как сбросить пароль",
        "Откройте **настройки** и нажмите «Сбросить».",
        tags="Login, пароль",
        public=True,
    )
    with desk.db.read() as s:
        a = kb.get_article(s, "kak-sbrosit-parol")
        assert a.id == aid and a.tags == "login,пароль" and a.public
    assert kb_ids(desk, "пароля") == [aid]
    assert kb_ids(desk, "настройках") == [aid]
    kb.edit_article(desk, aid, body="Напишите в поддержку.", public=False)
    assert kb_ids(desk, "настройки") == []
    assert kb_ids(desk, "поддержка") == [aid]
    with desk.db.read() as s:
        assert kb.get_article(s, aid).public is False
    kb.remove_article(desk, "kak-sbrosit-parol")
    assert kb_ids(desk, "поддержка") == []
    with desk.db.read() as s:
        kinds = [e.kind for e in s.exec(select(Event).order_by(col(Event.id))).all()]
        assert kinds == ["kb_added", "kb_edited", "kb_removed"]
        with pytest.raises(NotFound):
            kb.get_article(s, aid)


def test_bad_input_and_conflicts(desk: Any) -> None:
    add(desk, "Refunds", "text", slug="refunds")
    with pytest.raises(Conflict, match="exists already"):
        kb.add_article(desk, "Refunds", "other")
    with pytest.raises(BadInput, match="needs a title"):
        kb.add_article(desk, "  ", "x")
    with pytest.raises(BadInput, match="slug"):
        kb.add_article(desk, "T", "x", slug="../etc/passwd")


def test_markdown_folder_round_trip(desk: Any, tmp_path: Path) -> None:
    add(desk, "Доставка", "# Сроки\n\nТри дня.", tags=["shipping"], public=True, language="ru")
    add(desk, "Internal notes", "Only for agents.", tags="internal")
    out = tmp_path / "kb"
    assert kb.export_dir(desk, out) == 2
    text = (out / "dostavka.md").read_text(encoding="utf-8")
    assert text.startswith("---\n") and "title: Доставка" in text and "Три дня." in text
    # edit one file, add one, import into the same desk
    (out / "dostavka.md").write_text(text.replace("Три дня.", "Пять дней."), encoding="utf-8")
    (out / "new-one.md").write_text(
        "---\ntags: [faq]\npublic: true\n---\n# New one\n\nHello.\n", encoding="utf-8"
    )
    counts = kb.import_dir(desk, out)
    assert counts == {"added": 1, "updated": 1, "unchanged": 1}
    with desk.db.read() as s:
        new = kb.get_article(s, "new-one")
        assert new.title == "New one" and new.tags == "faq" and new.public
    assert kb_ids(desk, "пять") == [kb_ids(desk, "доставка")[0]]
    (out / "broken.md").write_text("---\ntitle: [unclosed\n---\nx", encoding="utf-8")
    with pytest.raises(BadInput, match="broken.md"):
        kb.import_dir(desk, out)


def test_html_export_escapes_and_lists_public_only(desk: Any, tmp_path: Path) -> None:
    add(desk, "XSS <script>alert(1)</script>",
        "Hi <script>alert('x')</script>\n\n[click](javascript:alert(1))\n\n<img src=x onerror=alert(1)>",
        tags="<b>tag</b>", public=True, slug="xss")  # fmt: skip
    add(desk, "Secret", "internal only", slug="secret")
    site = tmp_path / "site"
    assert kb.export_html(desk, site) == 1
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "xss.html"]
    page = (site / "xss.html").read_text(encoding="utf-8")
    index = (site / "index.html").read_text(encoding="utf-8")
    for doc in (page, index):
        assert "<script>" not in doc and "<b>tag</b>" not in doc
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror" in page
    assert 'href="javascript:' not in page
    assert 'href="xss.html"' in index and "Secret" not in index


def test_markdown_renders_structure() -> None:
    html = kb.render_markdown("# T\n\n* a\n* b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert "<h1>T</h1>" in html and "<li>a</li>" in html and "<table>" in html


def test_suggestions_for_a_ticket(desk: Any) -> None:
    a1 = add(desk, "Принтер не печатает", "Проверьте кабель принтера и бумагу.", public=True)
    add(desk, "Возврат денег", "Возврат оформляется за пять дней.")
    with desk.db.write() as s:
        s.add(
            Template(
                name="printer-reset",
                subject="Перезагрузка принтера",
                body="Выключите принтер на минуту.",
            )
        )
        s.add(Template(name="hello", subject="Привет", body="Здравствуйте!"))
    tid = ingest(
        desk, inbound_email(subject="Не работает принтер", text="Принтеры в офисе не печатают")
    ).ticket_id
    with desk.db.read() as s:
        sug = kb.suggest_for_ticket(s, desk, tid or 0)
        assert [(x["kind"], x.get("name") or x.get("id")) for x in sug] == [
            ("kb", a1), ("template", "printer-reset")]  # fmt: skip
        assert sug[0]["score"] >= sug[1]["score"] > 0
        with pytest.raises(NotFound):
            kb.suggest_for_ticket(s, desk, 9999)


def test_kb_cli(cli: Any, tmp_path: Path) -> None:
    body = tmp_path / "b.md"
    body.write_text("Шаг 1. Откройте [bold]меню[/bold].\n", encoding="utf-8")
    r = cli("kb", "add", "Меню", "--file", str(body), "--tags", "ui", "--public", "--json")
    assert r.exit_code == 0, r.output
    art = json.loads(r.stdout)
    assert art["slug"] == "menyu" and art["tags"] == ["ui"]
    r = cli("kb", "list", "--json")
    assert [a["slug"] for a in json.loads(r.stdout)] == ["menyu"]
    r = cli("kb", "show", "menyu")
    assert r.exit_code == 0 and "[bold]меню[/bold]" in r.stdout  # data is never markup
    r = cli("kb", "search", "меню", "--json")
    assert [h["slug"] for h in json.loads(r.stdout)] == ["menyu"]
    r = cli("kb", "edit", "menyu", "--text", "Другой текст")
    assert r.exit_code == 0, r.output
    r = cli("kb", "export", "--html", str(tmp_path / "site"))
    assert r.exit_code == 0 and (tmp_path / "site" / "menyu.html").exists()
    r = cli("kb", "add", "Без тела")
    assert r.exit_code == 2 and "--file" in r.stderr
    r = cli("kb", "rm", "menyu")
    assert r.exit_code == 0
    r = cli("kb", "show", "menyu")
    assert r.exit_code == 3 and r.stderr.startswith("supportdesk: ")


def test_search_cli(cli: Any, desk: Any) -> None:
    tid = ingest(
        desk, inbound_email(subject="[red]Принтер[/red]", text="принтер \x1b[2J сломался")
    ).ticket_id
    r = cli("search", "принтеры", "--json")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert [(h["kind"], h["id"]) for h in hits] == [("ticket", tid)]
    assert "\x1b" not in hits[0]["snippet"]
    r = cli("search", "принтеры")
    assert r.exit_code == 0 and "[red]Принтер[/red]" in r.stdout and "\x1b" not in r.stdout
    r = cli("search", "принтеры", "--kind", "messages", "--csv")
    assert r.stdout.splitlines()[0] == "kind,id,ticket_id,title,snippet,score,when"
    r = cli("search", "принтер", "--kind", "nope")
    assert r.exit_code == 2
    r = cli("search", "--help")
    assert "Example:" in r.stdout
