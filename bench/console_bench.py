"""Console benchmark: start-up, memory, cursor and open latency at 100,000 tickets.

    .venv/bin/python bench/console_bench.py [--size 100000] [--home DIR]

``run(home)`` returns a dict of figures; targets: first queue drawn < 1 s, RSS < 150 MB,
cursor move and open ticket < 50 ms. When ``supportdesk demo --size N`` is not available the
data is made here with bulk inserts (synthetic tickets spread over two channels).
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIG = """
[desk]
name = "Bench desk"
timezone = "UTC"
language = "en"

[[channel]]
name = "support"
type = "email"
address = "support@bench.test"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "BENCH_TG_TOKEN"
"""

TARGETS = {"first_queue_s": 1.0, "rss_mb": 150.0, "cursor_ms": 50.0, "open_ms": 50.0}


def populate(home: Path, size: int, *, seed: int = 7) -> None:
    """Fill an empty desk home with ``size`` synthetic tickets (one message each)."""
    import sqlalchemy as sa

    from supportdesk.services.desk import open_desk
    from supportdesk.store.models import Customer, Identity, Message, Ticket

    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "config.toml"
    if not cfg.exists():
        cfg.write_text(CONFIG, encoding="utf-8")
    desk = open_desk(home, agent="bench")
    rnd = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    words = ["printer", "invoice", "login", "refund", "delivery", "password", "счёт", "доставка",
             "ошибка", "оплата", "account", "upgrade"]  # fmt: skip
    prios = ["low", "normal", "normal", "normal", "high", "urgent"]
    rank = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    statuses = ["new", "open", "open", "pending", "solved", "closed"]
    n_customers = max(size // 4, 1)
    with desk.db.write_engine.begin() as conn:
        conn.execute(
            sa.insert(Customer.__table__),  # type: ignore[attr-defined]
            [{"id": i, "name": f"Customer {i}", "company": "", "phone": "", "language": "",
              "notes": "", "csat_opt_out": False, "created_at": base, "updated_at": base}
             for i in range(1, n_customers + 1)],
        )  # fmt: skip
        conn.execute(
            sa.insert(Identity.__table__),  # type: ignore[attr-defined]
            [{"customer_id": i, "kind": "email", "address": f"c{i}@example.test", "display": "",
              "created_at": base} for i in range(1, n_customers + 1)],
        )  # fmt: skip
        batch: list[dict[str, Any]] = []
        msgs: list[dict[str, Any]] = []
        for i in range(1, size + 1):
            created = base + timedelta(minutes=i % 40000)
            prio = rnd.choice(prios)
            status = rnd.choice(statuses)
            tg = i % 3 == 0
            due = created + timedelta(hours=4) if status in ("new", "open") else None
            subject = f"{rnd.choice(words)} {rnd.choice(words)} #{i}"
            batch.append({
                "id": i, "subject": subject, "status": status, "priority": prio,
                "priority_rank": rank[prio], "priority_locked": False,
                "channel": "telegram" if tg else "support", "kind": "telegram" if tg else "email",
                "customer_id": 1 + i % n_customers, "created_at": created, "updated_at": created,
                "due_at": due, "first_response_due_at": due, "sla_paused_seconds": 0,
                "sla_breached": False, "message_count": 1, "last_message_id": i,
                "ack_sent": False, "reply_to_address": f"c{1 + i % n_customers}@example.test",
                "spam": False,
            })  # fmt: skip
            msgs.append({
                "id": i, "ticket_id": i, "direction": "in", "channel": batch[-1]["channel"],
                "kind": batch[-1]["kind"], "author": f"Customer {1 + i % n_customers}",
                "author_address": f"c{1 + i % n_customers}@example.test", "references": "",
                "subject": subject, "text": f"Hello, about {subject}.\nThanks.", "quoted_text": "",
                "created_at": created, "received_at": created, "thread_reason": "new ticket",
                "auto_reason": "", "versions": "", "is_auto": False,
            })  # fmt: skip
            if len(batch) >= 5000:
                conn.execute(sa.insert(Ticket.__table__), batch)  # type: ignore[attr-defined]
                conn.execute(sa.insert(Message.__table__), msgs)  # type: ignore[attr-defined]
                batch, msgs = [], []
        if batch:
            conn.execute(sa.insert(Ticket.__table__), batch)  # type: ignore[attr-defined]
            conn.execute(sa.insert(Message.__table__), msgs)  # type: ignore[attr-defined]
    desk.close()
