"""Templates (strict, sandboxed, files), customers, completion and help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from tests.tickets.conftest import bad, ok, show, shown


def test_template_crud_render_and_usage(
    cli: Callable[..., Any], desk: Any, seeded: dict[str, int], tmp_path: Path
) -> None:
    body = tmp_path / "reset.md"
    body.write_text(
        "Hello {{ customer.first_name }},\nticket {{ ticket.id }} from {{ desk.name }}.\n— {{ agent.name }}\n"
    )
    ok(
        cli(
            "templates",
            "add",
            "printer-reset",
            "--file",
            str(body),
            "--subject",
            "About {{ ticket.subject }}",
            "--tags",
            "Printer,hw",
        )
    )
    rows = json.loads(ok(cli("templates", "list", "--json")).stdout)
    assert (
        rows[0]["name"] == "printer-reset"
        and rows[0]["tags"] == ["printer", "hw"]
        and rows[0]["usage_count"] == 0
    )
    assert ok(cli("templates", "list", "--csv")).stdout.startswith("name,subject,tags")
    a = seeded["a"]
    r = json.loads(
        ok(cli("templates", "render", "printer-reset", "--ticket", str(a), "--json")).stdout
    )
    assert r["body"] == f"Hello Ivan,\nticket {a} from Acme support.\n— alice\n"
    assert r["subject"] == "About Printer does not work"
    ok(cli("tickets", "reply", str(a), "--template", "printer-reset"))
    assert show(cli, a)["messages"][-1]["text"].startswith("Hello Ivan,")
    assert (
        json.loads(ok(cli("templates", "show", "printer-reset", "--json")).stdout)["usage_count"]
        == 1
    )
    ok(cli("templates", "edit", "printer-reset", "--text", "Hi {{ customer.name }}"))
    assert "Hi {{ customer.name }}" in ok(cli("templates", "show", "printer-reset")).stdout
    bad(cli("templates", "add", "printer-reset", "--text", "x"), 5, "already exists")
    bad(cli("templates", "show", "printer-rest"), 3, "did you mean printer-reset")
    bad(cli("templates", "add", "Bad Name", "--text", "x"), 2, "not a template name")
    bad(cli("templates", "add", "broken", "--text", "{% if %}"), 2, "does not parse")
    ok(cli("agents", "add", "alice", "--role", "lead"))
    ok(cli("agents", "add", "bob"))
    bad(cli("templates", "rm", "printer-reset", agent="bob"), 4, "lead role")
    ok(cli("templates", "rm", "printer-reset"))
    assert json.loads(ok(cli("templates", "list", "--json")).stdout) == []


def test_strict_placeholders_name_the_culprit(
    cli: Callable[..., Any], seeded: dict[str, int]
) -> None:
    a = str(seeded["a"])
    ok(cli("templates", "add", "typo", "--text", "Dear {{ customer.nmae }}"))
    bad(cli("templates", "render", "typo", "--ticket", a), 2, "unknown placeholder customer.nmae")
    bad(cli("tickets", "reply", a, "--template", "typo"), 2, "customer.nmae")
    ok(cli("templates", "add", "company", "--text", "Hello {{ customer.company | upper }}"))
    bad(
        cli("templates", "render", "company", "--ticket", a),
        2,
        "customer.company | upper",
        "is empty",
    )
    ok(
        cli(
            "templates",
            "add",
            "guarded",
            "--text",
            "Hi{% if customer.company %} {{ customer.company }}{% endif %}!",
        )
    )
    assert (
        json.loads(ok(cli("templates", "render", "guarded", "--ticket", a, "--json")).stdout)[
            "body"
        ]
        == "Hi!"
    )
    ok(cli("templates", "add", "evil", "--text", "{{ ''.__class__.__mro__[1].__subclasses__() }}"))
    bad(cli("templates", "render", "evil", "--ticket", a), 2, "may not do")
    assert show(cli, int(a))["message_count"] == 2  # nothing was sent by the failed replies


def test_placeholders_missing_lists_all() -> None:
    from supportdesk.replies.templating import placeholders_missing

    ctx = {"customer": {"name": "", "company": "Acme"}, "ticket": {"id": 1}}
    src = "{{ customer.name }} {{ ticket.nope }} {{ customer.company }} {% raw %}{{ not.me }}{% endraw %}"
    assert placeholders_missing(src, ctx) == ["customer.name", "ticket.nope"]


def test_import_export_round_trip(cli: Callable[..., Any], tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "welcome.md").write_text(
        "---\nsubject: Welcome, {{ customer.name }}\ntags: [onboarding]\nlanguage: en\n"
        "---\nHello {{ customer.first_name }}!\n"
    )
    (src / "thanks-ru.md").write_text("Спасибо, {{ customer.first_name }}!\n")
    out = json.loads(ok(cli("templates", "import", str(src), "--json")).stdout)
    assert sorted(out["added"]) == ["thanks-ru", "welcome"]
    dst = tmp_path / "out"
    ok(cli("templates", "export", str(dst)))
    assert sorted(p.name for p in dst.iterdir()) == ["thanks-ru.md", "welcome.md"]
    text = (dst / "welcome.md").read_text()
    assert (
        "subject: Welcome, {{ customer.name }}" in text
        and "Hello {{ customer.first_name }}!" in text
    )
    again = json.loads(ok(cli("templates", "import", str(dst), "--json")).stdout)
    assert sorted(again["unchanged"]) == ["thanks-ru", "welcome"]
    (dst / "welcome.md").write_text(text.replace("Hello", "Hi"))
    assert json.loads(ok(cli("templates", "import", str(dst), "--json")).stdout)["updated"] == [
        "welcome"
    ]
    # all or nothing: one bad file stops the import and names itself
    (dst / "zz-broken.md").write_text("---\nsubject: x\ncolour: red\n---\nbody\n")
    (dst / "thanks-ru.md").write_text("changed\n")
    bad(cli("templates", "import", str(dst)), 2, "zz-broken.md", "colour")
    assert (
        "Спасибо" in json.loads(ok(cli("templates", "show", "thanks-ru", "--json")).stdout)["body"]
    )
    bad(cli("templates", "import", str(tmp_path / "nope")), 2, "is not a folder")


def test_customers_commands(cli: Callable[..., Any], desk: Any, seeded: dict[str, int]) -> None:
    rows = json.loads(ok(cli("customers", "list", "--json")).stdout)
    assert [r["name"] for r in rows] == ["Ivan Petrov", "Petr", "Иван Петров"]
    assert (
        ok(cli("customers", "list", "--csv")).stdout.splitlines()[0].startswith("id,name,company")
    )
    ivan, petr, tg = (r["id"] for r in rows)
    ok(
        cli(
            "customers",
            "edit",
            "ivan@example.ru",
            "--company",
            "Acme Ltd",
            "--phone",
            "+79001112233",
            "--language",
            "ru",
            "--notes",
            "Prefers e-mail",
        )
    )
    card = json.loads(ok(cli("customers", "show", str(ivan), "--json")).stdout)
    assert (card["company"], card["language"], card["notes"]) == (
        "Acme Ltd",
        "ru",
        "Prefers e-mail",
    )
    assert [h["id"] for h in card["history"]] == [seeded["a"]]
    assert "Acme Ltd" in ok(cli("customers", "show", "ivan@example.ru")).stdout
    # merge the Telegram customer into the e-mail one, then unmerge
    before = shown(desk, list(seeded.values()))
    cards_before = {
        c: json.loads(ok(cli("customers", "show", str(c), "--json")).stdout) for c in (ivan, tg)
    }
    ok(cli("customers", "merge", "telegram:5005", "--into", "ivan@example.ru"))
    card = json.loads(ok(cli("customers", "show", str(ivan), "--json")).stdout)
    assert {i["kind"] for i in card["identities"]} == {"email", "telegram"}
    assert sorted(h["id"] for h in card["history"]) == sorted([seeded["a"], seeded["tg"]])
    assert json.loads(ok(cli("customers", "show", str(tg), "--json")).stdout)["merged_into"] == ivan
    ok(cli("customers", "unmerge", str(tg)))
    assert {
        c: json.loads(ok(cli("customers", "show", str(c), "--json")).stdout) for c in (ivan, tg)
    } != {}
    assert (
        json.loads(ok(cli("customers", "show", str(tg), "--json")).stdout)["identities"]
        == cards_before[tg]["identities"]
    )
    ok(cli("customers", "merge", str(tg), "--into", str(ivan)))
    ok(cli("undo"))
    after = {
        c: json.loads(ok(cli("customers", "show", str(c), "--json")).stdout) for c in (ivan, tg)
    }
    assert after[ivan]["identities"] == cards_before[ivan]["identities"]
    assert after[tg]["merged_into"] is None and shown(desk, list(seeded.values())) == before
    # link and unlink identities
    ok(cli("customers", "link", str(petr), "phone:8 900 555-44-33"))
    assert {"kind": "phone", "address": "+79005554433", "display": ""} in json.loads(
        ok(cli("customers", "show", str(petr), "--json")).stdout
    )["identities"]
    ok(cli("customers", "unlink", "phone:+79005554433"))
    ok(cli("undo"))
    assert any(
        i["kind"] == "phone"
        for i in json.loads(ok(cli("customers", "show", str(petr), "--json")).stdout)["identities"]
    )
    bad(cli("customers", "unlink", "telegram:5005"), 5, "only identity")
    bad(cli("customers", "link", str(petr), "fax:123"), 2, "not an identity")
    bad(cli("customers", "show", "nobody@nowhere.test"), 3, "no customer")
    bad(cli("customers", "unmerge", str(petr)), 2, "not merged")
    bad(cli("customers", "edit", str(petr)), 2, "at least one")


def test_completion_scripts_for_bash_and_zsh(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("supportdesk")
    env = {**os.environ, "SUPPORTDESK_HOME": str(tmp_path)}
    # typer detects the user's shell; naming it explicitly needs detection off (as in typer's own tests)
    named = {**env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    for shell, marker in (
        ("bash", "complete -o default -F _supportdesk_completion supportdesk"),
        ("zsh", "compdef _supportdesk_completion supportdesk"),
    ):
        out = subprocess.run(
            [str(exe), "--show-completion", shell],
            capture_output=True,
            text=True,
            env=named,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert marker in out.stdout and "_SUPPORTDESK_COMPLETE" in out.stdout
        # the click-style way a user's shell rc can source it without any test switch
        src = subprocess.run(
            [str(exe)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**env, "_SUPPORTDESK_COMPLETE": f"source_{shell}"},
        )
        assert marker in src.stdout, src.stderr
    zsh = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **env,
            "_SUPPORTDESK_COMPLETE": "complete_zsh",
            "_TYPER_COMPLETE_ARGS": "supportdesk tickets set 1 --status c",
        },
    )
    assert "closed" in zsh.stdout and "open" not in zsh.stdout, zsh.stdout
    # the completion protocol itself: statuses after --status
    comp = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **env,
            "_SUPPORTDESK_COMPLETE": "complete_bash",
            "COMP_WORDS": "supportdesk tickets set 1 --status p",
            "COMP_CWORD": "5",
        },
    )
    assert comp.stdout.split() == ["pending"], (comp.stdout, comp.stderr)


def test_agent_names_complete(cli: Callable[..., Any], home: Path) -> None:
    from supportdesk.cli.triage import complete_agent

    ok(cli("agents", "add", "alice", "--role", "lead"))
    ok(cli("agents", "add", "albert"))

    class _Root:
        params = {"home": str(home), "db": None}

    class _Ctx:
        def find_root(self) -> Any:
            return _Root()

    assert complete_agent(_Ctx(), "al") == ["albert", "alice"]  # type: ignore[arg-type]
    assert complete_agent(_Ctx(), "m") == ["me"]  # type: ignore[arg-type]


def test_every_command_help_has_an_example() -> None:
    from supportdesk.cli.main import app

    root = typer.main.get_command(app)
    mine = {
        "tickets": [
            "assign",
            "tag",
            "set",
            "close",
            "reopen",
            "snooze",
            "merge",
            "split",
            "move",
            "escalate",
            "handover",
            "reply",
            "note",
            "new",
        ],
        "customers": ["list", "show", "edit", "merge", "unmerge", "link", "unlink"],
        "templates": ["list", "show", "add", "edit", "rm", "render", "import", "export"],
        "agents": ["add", "list", "edit", "rm"],
        "groups": ["list", "add", "rm"],
    }
    ctx = typer.Context(root)  # type: ignore[arg-type]
    for group, names in mine.items():
        sub = root.get_command(ctx, group)  # type: ignore[attr-defined]
        assert sub is not None, group
        for name in names:
            cmd = sub.get_command(ctx, name)
            assert cmd is not None, (group, name)
            assert "Example: supportdesk" in (cmd.help or ""), (group, name)
    undo = root.get_command(ctx, "undo")  # type: ignore[attr-defined]
    assert undo is not None and "Example: supportdesk undo" in (undo.help or "")
