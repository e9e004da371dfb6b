"""Placeholders in canned replies: sandboxed Jinja2, strict about unknown or empty values."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel import Session, select

from supportdesk.services.desk import BadInput, Desk
from supportdesk.store.models import Agent, Customer, Identity, Ticket


class _Empty(str):
    """Marks a placeholder that resolved to nothing."""


def _finalize(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return _Empty("")
    return value


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def context_for(session: Session, desk: Desk, ticket: Ticket | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"desk": {"name": desk.config.desk.name}}
    agent = session.exec(select(Agent).where(Agent.name == desk.agent)).first()
    ctx["agent"] = {
        "name": (agent.display_name or agent.name) if agent else desk.agent,
        "login": desk.agent,
        "email": agent.email if agent else None,
    }
    if ticket is not None:
        cust = session.get(Customer, ticket.customer_id)
        idents = session.exec(
            select(Identity).where(Identity.customer_id == ticket.customer_id)
        ).all()
        email = next((i.address for i in idents if i.kind == "email"), None)
        ctx["ticket"] = {
            "id": ticket.id,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "channel": ticket.channel,
        }
        first_name = cust.name.split()[0] if cust and cust.name.strip() else None
        ctx["customer"] = {
            "name": cust.name if cust else None,
            "first_name": first_name,
            "company": cust.company if cust else None,
            "email": email,
            "phone": cust.phone if cust else None,
            "language": cust.language if cust else None,
        }
    return ctx


def placeholders_missing(source: str, ctx: dict[str, Any]) -> list[str]:
    """Placeholders in ``source`` that are unknown or empty in ``ctx``."""
    missing: list[str] = []
    try:
        _render(source, ctx, missing)
    except BadInput:
        pass
    return missing


def _render(source: str, ctx: dict[str, Any], missing: list[str]) -> str:
    import re

    try:
        tpl = _ENV.from_string(source)
    except TemplateError as exc:
        raise BadInput(f"the template does not parse: {exc}") from None
    # find empty values: check each {{ expr }} on its own
    for expr in re.findall(r"{{\s*(.+?)\s*}}", source):
        try:
            val = _ENV.compile_expression(expr, undefined_to_none=False)(**ctx)
        except UndefinedError:
            missing.append(expr)
            continue
        except Exception:
            continue
        if _finalize(val) == "" and isinstance(_finalize(val), _Empty):
            missing.append(expr)
    try:
        return tpl.render(**ctx)
    except UndefinedError as exc:
        raise BadInput(f"unknown placeholder: {exc.message}") from None
    except TemplateError as exc:
        raise BadInput(f"the template cannot be rendered: {exc}") from None


def render_text(
    session: Session,
    desk: Desk,
    source: str,
    ticket: Ticket | None,
    *,
    extra: dict[str, Any] | None = None,
    strict: bool = True,
) -> str:
    """Render a template text for a ticket. Strict: an unknown or empty placeholder is an error."""
    ctx = context_for(session, desk, ticket)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(ctx.get(k), dict):
            ctx[k] = {**ctx[k], **v}
        else:
            ctx[k] = v
    missing: list[str] = []
    out = _render(source, ctx, missing)
    if strict and missing:
        names = ", ".join(dict.fromkeys(missing))
        raise BadInput(f"the template has unresolved placeholders: {names}")
    if not strict and missing:
        # lenient (acknowledgements): render empties as nothing rather than refusing to answer
        lenient = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
        out = lenient.from_string(source).render(**ctx)
    return out
