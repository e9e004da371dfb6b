"""Rule and macro files: ``$SUPPORTDESK_HOME/rules/*.toml``, reviewed in git like code.

A file holds ``[[rule]]`` tables and ``[[macro]]`` tables::

    [[rule]]
    name = "route-billing"
    when = "ticket.created"          # message.in | ticket.updated | sla.due_in | sla.breached
                                     # | pending.for | schedule
    if = "channel:support refund"    # the queue's query language (a list: any one of them)
    then = [
      { action = "group", group = "billing" },
      { action = "assign", to = "least-loaded", group = "billing", cap = 10 },
    ]

    [[macro]]
    name = "refund-done"
    key = "f5"                       # optional console key
    then = [{ action = "reply", template = "refund-done" }, { action = "status", status = "pending" }]

Errors name the file and the line of the table (or key) at fault, in one sentence.

Long because: validation that names the file and line for every key of a rule or macro table,
and the comment-keeping rewrite behind enable/disable, read best next to the schema they check.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from supportdesk.core.config import parse_duration
from supportdesk.desk.desk import BadInput, NotFound
from supportdesk.search.query import QueryError, parse

WHENS = (
    "ticket.created",
    "message.in",
    "ticket.updated",
    "sla.due_in",
    "sla.breached",
    "pending.for",
    "schedule",
)
ACTIONS = (
    "assign", "group", "status", "priority", "tag", "reply", "note", "notify", "spam", "close",
)  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# the arguments each action takes: required, then optional
ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "assign": (("to",), ("group", "cap")),
    "group": (("group",), ()),
    "status": (("status",), ()),
    "priority": (("priority",), ()),
    "tag": ((), ("add", "remove")),
    "reply": ((), ("template", "text")),
    "note": ((), ("template", "text")),
    "notify": ((), ("to", "text")),
    "spam": ((), ("sender", "domain")),
    "close": ((), ("solved",)),
}
RULE_KEYS = ("name", "when", "if", "then", "enabled", "within", "for", "every", "fields")
MACRO_KEYS = ("name", "key", "title", "then")


class RuleError(BadInput):
    """A rule file that cannot be used; the message names the file and line."""


@dataclass
class Action:
    action: str
    args: dict[str, Any]

    def describe(self) -> str:
        a = self.args
        if self.action == "assign":
            extra = f" in {a['group']}" if a.get("group") else ""
            cap = f" (cap {a['cap']})" if a.get("cap") else ""
            return f"assign {a['to']}{extra}{cap}"
        if self.action == "group":
            return f"group {a['group']}"
        if self.action in ("status", "priority"):
            return f"{self.action} {a[self.action]}"
        if self.action == "tag":
            parts = [
                *(f"+{t}" for t in _list(a.get("add"))),
                *(f"-{t}" for t in _list(a.get("remove"))),
            ]
            return "tag " + " ".join(parts)
        if self.action in ("reply", "note"):
            return f"{self.action} " + (
                f"template {a['template']}" if a.get("template") else repr(str(a.get("text", "")))
            )
        if self.action == "notify":
            return f"notify {a.get('to', 'assignee')}"
        if self.action == "spam":
            what = "sender" if a.get("sender") else ("domain" if a.get("domain") else "ticket")
            return f"spam ({what})"
        return "solve" if a.get("solved") else "close"


@dataclass
class Rule:
    name: str
    when: str
    condition: str
    actions: list[Action]
    path: Path
    line: int
    enabled: bool = True
    within: timedelta | None = None  # sla.due_in
    pending_for: timedelta | None = None  # pending.for
    every: timedelta | None = None  # schedule
    fields: list[str] = field(default_factory=list)  # ticket.updated: only these fields
    any_of: list[str] = field(default_factory=list)  # ``if`` given as a list: any one matches

    @property
    def agent(self) -> str:
        """The journal's agent for this rule's actions."""
        return f"rule:{self.name}"

    @property
    def conditions(self) -> list[str]:
        return self.any_of or [self.condition]

    def trigger_text(self) -> str:
        if self.when == "sla.due_in" and self.within is not None:
            return f"sla.due_in {_fmt(self.within)}"
        if self.when == "pending.for" and self.pending_for is not None:
            return f"pending.for {_fmt(self.pending_for)}"
        if self.when == "schedule" and self.every is not None:
            return f"schedule every {_fmt(self.every)}"
        if self.when == "ticket.updated" and self.fields:
            return f"ticket.updated ({', '.join(self.fields)})"
        return self.when

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "when": self.when,
            "trigger": self.trigger_text(),
            "if": self.condition,
            "then": [{"action": a.action, **a.args} for a in self.actions],
            "enabled": self.enabled,
            "file": str(self.path),
            "line": self.line,
        }


@dataclass
class Macro:
    name: str
    actions: list[Action]
    path: Path
    line: int
    key: str = ""
    title: str = ""

    @property
    def agent(self) -> str:
        return f"macro:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "title": self.title,
            "then": [{"action": a.action, **a.args} for a in self.actions],
            "file": str(self.path),
            "line": self.line,
        }


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    macros: list[Macro] = field(default_factory=list)

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.rules) or "none"
        raise NotFound(f"there is no rule named {name!r} (rules: {known})")

    def macro(self, name: str) -> Macro:
        for m in self.macros:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.macros) or "none"
        raise NotFound(f"there is no macro named {name!r} (macros: {known})")


def _fmt(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % n == 0:
            return f"{s // n}{unit}"
    return f"{s}s"


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v]


def rules_dir(home: Path) -> Path:
    return home / "rules"


class _Lines:
    """Finds the line of the n-th ``[[kind]]`` table and of a key inside it."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def table(self, kind: str, n: int) -> int:
        pat = re.compile(rf"^\s*\[\[\s*{kind}\s*\]\]")
        seen = -1
        for i, line in enumerate(self.lines, 1):
            if pat.match(line):
                seen += 1
                if seen == n:
                    return i
        return 1

    def key(self, kind: str, n: int, key: str) -> int:
        start = self.table(kind, n)
        pat = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start, len(self.lines)):
            line = self.lines[i]
            if re.match(r"^\s*\[\[?\s*(rule|macro)\s*\]\]?", line) and i + 1 != start:
                break
            if pat.match(line):
                return i + 1
        return start


def _err(path: Path, line: int, text: str) -> RuleError:
    return RuleError(f"{path}:{line}: {text}")


def _parse_actions(
    raw: Any, path: Path, lines: _Lines, kind: str, n: int, owner: str
) -> list[Action]:
    where = lines.key(kind, n, "then")
    if not isinstance(raw, list) or not raw:
        raise _err(path, where, f"{owner} needs 'then', a list of actions")
    out: list[Action] = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or "action" not in item:
            raise _err(
                path, where, f"{owner}: action {i} needs action = one of {', '.join(ACTIONS)}"
            )
        name = str(item["action"]).strip().lower()
        if name not in ACTIONS:
            raise _err(
                path, where, f"{owner}: action {i} {name!r} is not one of {', '.join(ACTIONS)}"
            )
        required, optional = ARGS[name]
        args = {k: v for k, v in item.items() if k != "action"}
        for k in required:
            if k not in args or args[k] in ("", None):
                raise _err(path, where, f"{owner}: the {name} action needs {k} = ...")
        for k in args:
            if k not in required and k not in optional:
                allowed = ", ".join((*required, *optional)) or "nothing"
                raise _err(path, where, f"{owner}: the {name} action takes {allowed}, not {k!r}")
        problem = _check_action(name, args)
        if problem:
            raise _err(path, where, f"{owner}: {problem}")
        out.append(Action(name, args))
    return out


def _check_action(name: str, args: dict[str, Any]) -> str:
    from supportdesk.store.models import PRIORITIES, STATUSES

    if name == "status" and str(args["status"]).lower() not in STATUSES:
        return f"status is one of {', '.join(STATUSES)}, not {args['status']!r}"
    if name == "priority" and str(args["priority"]).lower() not in PRIORITIES:
        return f"priority is one of {', '.join(PRIORITIES)}, not {args['priority']!r}"
    if name == "tag":
        if not (_list(args.get("add")) or _list(args.get("remove"))):
            return "the tag action needs add = [...] or remove = [...]"
        from supportdesk.tickets.triage import normalize_tag

        for t in [*_list(args.get("add")), *_list(args.get("remove"))]:
            try:
                normalize_tag(t)
            except BadInput as exc:
                return str(exc)
    if name in ("reply", "note") and not (args.get("template") or args.get("text")):
        return f"the {name} action needs template = NAME or text = ..."
    if name == "assign":
        cap = args.get("cap")
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            return "cap is a whole number of open tickets, 1 or more"
    return ""


def _duration(value: Any, path: Path, line: int, what: str) -> timedelta:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise _err(path, line, f"{what}: {exc}") from None


def load_file(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else 1
        reason = re.sub(r"\s*\(at line .*\)$", "", str(exc)) or "invalid TOML"
        raise _err(path, line, f"not valid TOML: {reason}") from None
    lines = _Lines(text)
    unknown = [k for k in data if k not in ("rule", "macro")]
    if unknown:
        raise _err(path, 1, f"unknown table {unknown[0]!r} (use [[rule]] or [[macro]])")
    out = RuleSet()
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise _err(path, 1, "rules are written as [[rule]] tables")
    for n, r in enumerate(rules):
        line = lines.table("rule", n)
        name = str(r.get("name", "")).strip()
        owner = f"rule {name!r}" if name else f"rule {n + 1}"
        if not name or not _NAME.match(name):
            raise _err(path, line, f"{owner} needs a name of letters, digits, '.', '_' or '-'")
        for k in r:
            if k not in RULE_KEYS:
                raise _err(
                    path,
                    lines.key("rule", n, k),
                    f"{owner}: unknown key {k!r} ({', '.join(RULE_KEYS)})",
                )
        when = str(r.get("when", "")).strip()
        if when not in WHENS:
            raise _err(
                path, lines.key("rule", n, "when"), f"{owner}: when is one of {', '.join(WHENS)}"
            )
        raw_if = r.get("if", "") or ""
        alts = [str(x) for x in raw_if] if isinstance(raw_if, list) else []
        cond = " | ".join(alts) if alts else str(raw_if)
        for c in alts or [cond]:
            try:
                parse(c)
            except QueryError as exc:
                raise _err(path, lines.key("rule", n, "if"), f"{owner}: if: {exc}") from None
        rule = Rule(
            name=name,
            when=when,
            condition=cond,
            actions=_parse_actions(r.get("then"), path, lines, "rule", n, owner),
            path=path,
            line=line,
            enabled=bool(r.get("enabled", True)),
            fields=_list(r.get("fields")),
            any_of=alts,
        )
        if when == "sla.due_in":
            if "within" not in r:
                raise _err(path, line, f'{owner}: sla.due_in needs within = "30m"')
            rule.within = _duration(r["within"], path, lines.key("rule", n, "within"), owner)
        if when == "pending.for":
            if "for" not in r:
                raise _err(path, line, f'{owner}: pending.for needs for = "3d"')
            rule.pending_for = _duration(r["for"], path, lines.key("rule", n, "for"), owner)
        if when == "schedule":
            if "every" not in r:
                raise _err(path, line, f'{owner}: schedule needs every = "1h"')
            rule.every = _duration(r["every"], path, lines.key("rule", n, "every"), owner)
            if rule.every < timedelta(minutes=1):
                raise _err(path, line, f"{owner}: every is at least 1m")
        out.rules.append(rule)
    macros = data.get("macro", [])
    if not isinstance(macros, list):
        raise _err(path, 1, "macros are written as [[macro]] tables")
    for n, m in enumerate(macros):
        line = lines.table("macro", n)
        name = str(m.get("name", "")).strip()
        owner = f"macro {name!r}" if name else f"macro {n + 1}"
        if not name or not _NAME.match(name):
            raise _err(path, line, f"{owner} needs a name of letters, digits, '.', '_' or '-'")
        for k in m:
            if k not in MACRO_KEYS:
                raise _err(
                    path,
                    lines.key("macro", n, k),
                    f"{owner}: unknown key {k!r} ({', '.join(MACRO_KEYS)})",
                )
        out.macros.append(
            Macro(
                name=name,
                actions=_parse_actions(m.get("then"), path, lines, "macro", n, owner),
                path=path,
                line=line,
                key=str(m.get("key", "")),
                title=str(m.get("title", "")),
            )
        )
    return out


def load_rules(home: Path) -> RuleSet:
    """Every rule and macro under ``home/rules`` (files in name order); names are unique."""
    folder = rules_dir(home)
    out = RuleSet()
    if not folder.is_dir():
        return out
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        part = load_file(path)
        for r in part.rules:
            if r.name in seen:
                raise _err(path, r.line, f"rule {r.name!r} is already defined in {seen[r.name]}")
            seen[r.name] = path
        for m in part.macros:
            if f"macro:{m.name}" in seen:
                raise _err(path, m.line, f"macro {m.name!r} is defined twice")
            seen[f"macro:{m.name}"] = path
        out.rules.extend(part.rules)
        out.macros.extend(part.macros)
    return out


# ---------------------------------------------------------------- cache for the runner

_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], RuleSet]] = {}


def _stamp(home: Path) -> tuple[tuple[str, int, int], ...]:
    folder = rules_dir(home)
    if not folder.is_dir():
        return ()
    out = []
    for p in sorted(folder.glob("*.toml")):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def current_rules(home: Path) -> RuleSet:
    """The rule set, re-read only when a file changed (the runner calls this every tick)."""
    stamp = _stamp(home)
    hit = _cache.get(home)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    rs = load_rules(home)
    _cache[home] = (stamp, rs)
    return rs


def set_enabled(home: Path, name: str, enabled: bool) -> Rule:
    """Switch a rule on or off by writing ``enabled`` into its file (comments kept)."""
    import tomlkit

    rule = load_rules(home).rule(name)
    text = rule.path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    for table in doc.get("rule", []):
        if str(table.get("name", "")).strip() == name:
            table["enabled"] = enabled
    rule.path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    _cache.pop(home, None)
    rule.enabled = enabled
    return rule
