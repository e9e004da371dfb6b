"""split_quoted: the new text and the quoted history / signature, nothing lost."""

from __future__ import annotations

import pytest

from supportdesk.channels.email.quotes import split_quoted


def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize(
    ("body", "text", "quoted_start"),
    [
        (
            "Thanks!\n\nOn Mon, Jun 2, 2025 at 10:00 AM Support <s@acme.test> wrote:\n> Restart it.",
            "Thanks!",
            "On Mon, Jun 2, 2025",
        ),
        (
            "Thanks!\n\nOn Mon, Jun 2, 2025 at 10:00 AM Support <\ns@acme.test> wrote:\n> Restart.",
            "Thanks!",
            "On Mon, Jun 2, 2025",
        ),
        ("Спасибо!\n\nИван Петров пишет:\n> текст", "Спасибо!", "Иван Петров пишет:"),
        (
            "Спасибо!\n\n2 июня 2025 г., 10:00 пользователь Поддержка <s@acme.test> написал:\n> x",
            "Спасибо!",
            "2 июня 2025 г.",
        ),
        (
            'Готово.\n\n02.06.2025, 10:00, "Поддержка" <s@acme.test>:\n> Перезагрузите.',
            "Готово.",
            "02.06.2025, 10:00",
        ),
        (
            "Готово.\n\nПн, 2 июн. 2025 г. в 10:00, Поддержка <s@acme.test>:\n> Перезагрузите.",
            "Готово.",
            "Пн, 2 июн.",
        ),
        (
            "See below.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nTo: me\n\nold",
            "See below.",
            "-----Original Message-----",
        ),
        (
            "Смотрите.\n\n-------- Пересылаемое сообщение --------\nОт: кто-то\n\nстарое",
            "Смотрите.",
            "-------- Пересылаемое сообщение --------",
        ),
        (
            "Hi,\nsee attached.\n\nFrom: John <j@x.example>\nSent: Monday, June 2, 2025\n"
            "To: Support <s@acme.test>\nSubject: RE: x\n\nold",
            "Hi,\nsee attached.",
            "From: John",
        ),
        (
            "Добрый день.\n\n________________________________\nОт: Иван <i@x.example>\n"
            "Отправлено: 2 июня 2025 г. 10:00\nКому: support@acme.test\nТема: x\n\nстарое",
            "Добрый день.",
            "________________",
        ),
        ("Hello\n-- \nJohn Smith\nACME Corp", "Hello", "-- \nJohn Smith"),
        ("Reply here\n\n> old line 1\n> old line 2\n", "Reply here", "> old line 1"),
    ],
)
def test_history_is_split(body: str, text: str, quoted_start: str) -> None:
    new, quoted = split_quoted(body)
    assert new == text
    assert quoted.startswith(quoted_start)
    assert _words(new) + _words(quoted) == _words(body)


@pytest.mark.parametrize(
    "body",
    [
        "> all of it\n> is quoted",
        "-----Original Message-----\nFrom: x\nSent: y\nTo: z\n\nforwarded only",
        "-- \nonly a signature",
        "My boss wrote:\nwe need this done.\nPlease help.",
        "Meet at 10:00 with bob@x.example:\nbring the documents",
        "Plain text with -- dashes -- inside\nand more.",
    ],
)
def test_whole_body_stays_text_when_nothing_new_would_remain(body: str) -> None:
    assert split_quoted(body) == (body, "")


def test_inline_replies_stay_in_text() -> None:
    body = "On Mon, X <x@y.example> wrote:\n> question one?\n\nanswer one\n\n> question two?\nanswer two"
    new, quoted = split_quoted(body)
    assert "answer one" in new and "answer two" in new
    assert quoted == ""


def test_signature_before_history_is_folded_with_it() -> None:
    body = "Yes.\n-- \nIvan\n\nOn Tue, 3 Jun 2025, s@acme.test wrote:\n> Is it fixed?"
    new, quoted = split_quoted(body)
    assert new == "Yes."
    assert quoted.startswith("-- \nIvan")
    assert quoted.endswith("> Is it fixed?")


def test_empty_body() -> None:
    assert split_quoted("") == ("", "")
