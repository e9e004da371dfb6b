"""Placeholders in canned replies: sandboxed Jinja2, strict about unknown or empty values.

Strictness applies to what is printed: ``{{ customer.company }}`` with no company is an error
naming ``customer.company``, while ``{% if customer.company %}...{% endif %}`` is fine. Each
``{{ expr }}`` is rewritten to pass through a checking filter that knows the expression's text,
so the error names the placeholder exactly as written.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlmodel import Session, select

from supportdesk.desk.desk import BadInput, Desk
from supportdesk.store.models import Agent, Customer, Identity, Ticket

# the text of one {{ ... }} (non-greedy up to the first closing braces), with whitespace control
_OUTPUT = re.compile(r"{{(-?)(.+?)(-?)}}", re.DOTALL)
_RAW = re.compile(r"{%-?\s*raw\s*-?%}.*?{%-?\s*endraw\s*-?%}", re.DOTALL)
_CHECK = "__sd_check"


class _Unresolved(Exception):
    def __init__(self, name: str, why: str):
        super().__init__(name)
        self.name = name
        self.why = why


def _check(value: Any, name: str) -> Any:
    if isinstance(value, Undefined):
        raise _Unresolved(name, "unknown")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Unresolved(name, "empty")
    return value


def _lenient(value: Any, name: str) -> Any:
    if isinstance(value, Undefined) or value is None:
        return ""
    return value


# a template renders within these limits, or not at all (a hostile template must not stall
# intake or fill the disk); the time limit is enforced by raising in the rendering thread
TIME_LIMIT = 2.0  # seconds
MAX_OUTPUT = 200_000  # characters


class _TooSlow(BaseException):
    """Raised inside the rendering thread when the time limit passes (not an Exception, so the
    template's own code cannot catch it)."""


class _LimitedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and isinstance(right, int) and isinstance(left, str | list | tuple):
            if len(left) * right > MAX_OUTPUT:
                raise SecurityError(f"the result would be longer than {MAX_OUTPUT} characters")
        if operator == "*" and isinstance(left, int) and isinstance(right, str | list | tuple):
            if len(right) * left > MAX_OUTPUT:
                raise SecurityError(f"the result would be longer than {MAX_OUTPUT} characters")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("powers above 64 are not allowed in templates")
        return super().call_binop(context, operator, left, right)


def _limited(render: Any, seconds: float) -> str:
    """Run ``render()`` (a generator of text pieces) in this thread, stopping it after
    ``seconds`` or once it has produced more than MAX_OUTPUT characters."""
    import ctypes
    import threading

    me = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False}
    fired = threading.Event()

    def watchdog() -> None:
        if fired.wait(seconds):
            return
        with lock:
            if not state["done"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(me), ctypes.py_object(_TooSlow)
                )

    timer = threading.Thread(target=watchdog, name="template-limit", daemon=True)
    try:
        try:
            timer.start()
            out: list[str] = []
            size = 0
            for piece in render():
                size += len(piece)
                if size > MAX_OUTPUT:
                    raise BadInput(f"the template's text is longer than {MAX_OUTPUT} characters")
                out.append(piece)
            return "".join(out)
        finally:
            with lock:
                state["done"] = True
                # an exception fired but not yet raised here is dropped
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(me), None)
            fired.set()
    except _TooSlow:
        raise BadInput(f"the template took longer than {seconds:g} s to render") from None


def _env(strict: bool) -> SandboxedEnvironment:
    env = _LimitedEnvironment(
        undefined=StrictUndefined if strict else ChainableUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters[_CHECK] = _check if strict else _lenient
    return env


_STRICT = _env(True)
_LENIENT = _env(False)


def _instrument(source: str) -> str:
    """Wrap every output expression (outside raw blocks) in the checking filter."""

    def wrap(m: re.Match[str]) -> str:
        left, expr, right = m.group(1), m.group(2).strip(), m.group(3)
        if not expr:
            return m.group(0)
        name = expr.replace("\\", "\\\\").replace('"', '\\"')
        return f'{{{{{left} ({expr}) | {_CHECK}("{name}") {right}}}}}'

    out, pos = [], 0
    for raw in _RAW.finditer(source):
        out.append(_OUTPUT.sub(wrap, source[pos : raw.start()]))
        out.append(raw.group(0))
        pos = raw.end()
    out.append(_OUTPUT.sub(wrap, source[pos:]))
    return "".join(out)


def check_syntax(source: str) -> None:
    """Raise BadInput with one sentence if ``source`` is not a valid template."""
    try:
        _STRICT.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise BadInput(f"the template does not parse{where}: {exc.message or exc}") from None


def context_for(session: Session, desk: Desk, ticket: Ticket | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"desk": {"name": desk.config.desk.name}}
    agent = session.exec(select(Agent).where(Agent.name == desk.agent)).first()
    ctx["agent"] = {
        "name": (agent.display_name or agent.name) if agent else desk.agent,
        "login": desk.agent,
        "email": agent.email if agent else None,
        "group": agent.group if agent else None,
    }
    if ticket is not None:
        cust = session.get(Customer, ticket.customer_id)
        idents = session.exec(
            select(Identity).where(Identity.customer_id == ticket.customer_id)
        ).all()
        email = next((i.address for i in idents if i.kind == "email"), None)
        telegram = next((i.display or i.address for i in idents if i.kind == "telegram"), None)
        ctx["ticket"] = {
            "id": ticket.id, "subject": ticket.subject, "status": ticket.status,
            "priority": ticket.priority, "channel": ticket.channel, "group": ticket.group,
        }  # fmt: skip
        first_name = cust.name.split()[0] if cust and cust.name.strip() else None
        ctx["customer"] = {
            "name": cust.name if cust else None, "first_name": first_name,
            "company": cust.company if cust else None, "email": email, "telegram": telegram,
            "phone": cust.phone if cust else None, "language": cust.language if cust else None,
        }  # fmt: skip
    return ctx


def placeholders_missing(source: str, ctx: dict[str, Any]) -> list[str]:
    """Placeholders in ``source`` that are unknown or empty in ``ctx`` (as written, in order)."""
    missing: list[str] = []
    seen: dict[str, str] = {}

    def check_once(value: Any, name: str) -> Any:
        return "" if name in seen else _check(value, name)

    env = _env(True)
    env.filters[_CHECK] = check_once
    try:
        tpl = env.from_string(_instrument(source))
    except TemplateError:
        return missing
    # render again after each offender, treating it as resolved, to list all of them
    for _ in range(50):
        try:
            _limited(lambda: tpl.generate(**ctx), TIME_LIMIT)
            break
        except _Unresolved as exc:
            if exc.name in seen:
                break
            seen[exc.name] = exc.why
            missing.append(exc.name)
        except (UndefinedError, TemplateError, TypeError, ValueError, ArithmeticError, LookupError):
            break
        except BadInput:  # too slow or too long: nothing more to learn from it
            break
    return missing


def _render(source: str, ctx: dict[str, Any], *, strict: bool, seconds: float = TIME_LIMIT) -> str:
    env = _STRICT if strict else _LENIENT
    try:
        tpl = env.from_string(_instrument(source))
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise BadInput(f"the template does not parse{where}: {exc.message or exc}") from None
    try:
        return _limited(lambda: tpl.generate(**ctx), seconds)
    except _Unresolved as exc:
        if exc.why == "unknown":
            raise BadInput(f"the template uses the unknown placeholder {exc.name}") from None
        raise BadInput(f"the template's placeholder {exc.name} is empty for this ticket") from None
    except SecurityError as exc:
        raise BadInput(f"the template does something templates may not do: {exc}") from None
    except UndefinedError as exc:
        raise BadInput(f"the template uses an unknown placeholder: {exc.message}") from None
    except TemplateError as exc:
        raise BadInput(f"the template cannot be rendered: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise BadInput(f"the template cannot be rendered: {exc}") from None


def merge_context(ctx: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """``ctx`` with ``extra`` laid over it (a dict value extends the one already there)."""
    out = dict(ctx)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def render(
    source: str, ctx: dict[str, Any], *, strict: bool = True, seconds: float = TIME_LIMIT
) -> str:
    """Render ``source`` with a context gathered beforehand (:func:`context_for`): no database
    is touched, so this runs outside any transaction (an acknowledgement renders after intake
    committed). BadInput with one sentence when it fails, is too slow or too long."""
    return _render(source, ctx, strict=strict, seconds=seconds)


def render_text(
    session: Session,
    desk: Desk,
    source: str,
    ticket: Ticket | None,
    *,
    extra: dict[str, Any] | None = None,
    strict: bool = True,
    seconds: float = TIME_LIMIT,
) -> str:
    """Render a template text for a ticket. Strict: an unknown or empty placeholder is an error.

    Lenient (``strict=False``, used for automatic acknowledgements) prints nothing for them
    rather than refusing to answer.
    """
    ctx = merge_context(context_for(session, desk, ticket), extra)
    return _render(source, ctx, strict=strict, seconds=seconds)
