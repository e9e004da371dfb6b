"""A generated Maildir of small, realistic support mails (RU and EN, threads, some duplicates)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

SUBJECTS_RU = [
    "Не работает принтер",
    "Вопрос по счёту",
    "Не могу войти",
    "Возврат денег",
    "Ошибка оплаты",
    "Как сменить тариф",
    "Не приходят письма",
    "Сломалось приложение",
]
SUBJECTS_EN = [
    "Printer not working",
    "Invoice question",
    "Cannot log in",
    "Refund request",
    "Payment failed",
    "How to change plan",
    "E-mails not arriving",
    "App crashes",
]
BODY_RU = "Здравствуйте! {s}. Пожалуйста, помогите разобраться, это срочно для нашей работы.\n\nС уважением,\n{n}"
BODY_EN = (
    "Hello, {s}. Could you please help me with this? It blocks our work.\n\nBest regards,\n{n}"
)


def generate(count: int = 5000, seed: int = 5) -> Iterator[bytes]:
    """``count`` raw messages: RU and EN, about 30% replies to a recent message (threads)."""
    rnd = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    ids: list[str] = []
    for i in range(count):
        ru = i % 2 == 0
        cust = rnd.randrange(count // 4 + 1)
        name = f"Клиент {cust}" if ru else f"Customer {cust}"
        subj = rnd.choice(SUBJECTS_RU if ru else SUBJECTS_EN)
        m = EmailMessage()
        m["From"] = f"{name} <c{cust}@example.{'ru' if ru else 'com'}>"
        m["To"] = "support@acme.test"
        mid = f"gen{i}.{seed}@example.net"
        m["Message-ID"] = f"<{mid}>"
        m["Date"] = format_datetime(start + timedelta(minutes=i * 7))
        if ids and rnd.random() < 0.3:
            parent = rnd.choice(ids[-200:])
            m["In-Reply-To"] = f"<{parent}>"
            m["References"] = f"<{parent}>"
            subj = ("Re: " if not ru else "Ответ: ") + subj
        m["Subject"] = subj
        m.set_content((BODY_RU if ru else BODY_EN).format(s=subj, n=name))
        ids.append(mid)
        yield bytes(m)


def make_maildir(root: Path, count: int = 5000, seed: int = 5) -> Path:
    """Write :func:`generate`'s messages as a Maildir (cur/, flagged seen) under ``root``."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(generate(count, seed)):
        (root / "cur" / f"{1700000000 + i}.M{i}P1.bench:2,S").write_bytes(raw)
    return root


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(
        description="Write a synthetic Maildir (RU and EN) for the benches."
    )
    ap.add_argument("root", type=Path, help="the Maildir to write (cur/, new/, tmp/)")
    ap.add_argument("count", type=int, nargs="?", default=5000, help="messages (default 5000)")
    args = ap.parse_args()
    make_maildir(args.root, args.count)
