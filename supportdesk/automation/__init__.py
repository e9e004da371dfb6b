"""Automation: rules, routing, macros, agent notifications and spam.

- ``rules``: the rule files under ``$SUPPORTDESK_HOME/rules/`` (``[[rule]]`` and ``[[macro]]``
  tables), loaded and validated with errors naming the file and line.
- ``actions``: what a rule or macro does to one ticket, through the journaled triage services, so
  every automatic change is an audited, undoable batch whose agent is ``rule:NAME``.
- ``engine``: the triggers. Event-driven ones (``ticket.created``, ``message.in``,
  ``ticket.updated``) follow the audit log with a cursor; timed ones (``sla.due_in``,
  ``sla.breached``, ``pending.for``, ``schedule``) run on the runner's timer tick. Also
  ``simulate`` for ``rules test``.
- ``routing``: round-robin / least-loaded assignment among present agents with a cap, and tickets
  of agents who went off shift back to their group.
- ``notify``: per-agent notification targets (``agents.toml``), quiet hours, delivery through the
  desk's own Telegram bot and SMTP (outbox rows) or apprise URLs.
- ``spam``: marking tickets, senders and domains as spam.
- ``hook``: the two calls the runner makes (after an inbound commit, on the timer tick).
"""
