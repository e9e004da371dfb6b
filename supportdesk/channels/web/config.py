"""The `web` channel's config.toml table: where it listens, who may embed it, how it looks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from supportdesk.core.config import ChannelConfigBase, parse_duration

# The widget's and the contact page's texts. A desk overrides any of them per language:
#   [channel.texts.ru]
#   title = "Поддержка Acme"
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "",  # the first line before the visitor writes; default: the channel's greeting
        "open": "Chat with us",
        "close": "Close the chat",
        "title": "Support",
        "online": "We are online",
        "offline": "Nobody is online right now",
        "promise": "We usually answer within {time}",
        "offline_ask": "Leave your e-mail and the answer will follow by mail.",
        "email": "Your e-mail",
        "name": "Your name",
        "placeholder": "Write a message…",
        "send": "Send",
        "sending": "sending…",
        "received": "received",
        "suggest": "These articles may answer it:",
        "log": "Conversation",
        "reconnecting": "Connection lost, reconnecting…",
        "error": "The message could not be sent",
        "form_title": "Contact us",
        "form_intro": "Write to us and we will answer by e-mail.",
        "subject": "Subject",
        "message": "Message",
        "files": "Attachments (images or PDF, up to {size} each)",
        "submit": "Send",
        "thanks": "Thank you. Your request is ticket #{ticket}; a confirmation is on its way to your e-mail.",
        "form_error": "The form could not be sent",
    },
    "ru": {
        "greeting": "",
        "open": "Напишите нам",
        "close": "Закрыть чат",
        "title": "Поддержка",
        "online": "Мы на связи",
        "offline": "Сейчас никого нет на связи",
        "promise": "Обычно мы отвечаем в течение {time}",
        "offline_ask": "Оставьте e-mail — ответ придёт на почту.",
        "email": "Ваш e-mail",
        "name": "Ваше имя",
        "placeholder": "Напишите сообщение…",
        "send": "Отправить",
        "sending": "отправляется…",
        "received": "получено",
        "suggest": "Возможно, ответ есть в этих статьях:",
        "log": "Переписка",
        "reconnecting": "Связь прервалась, подключаемся снова…",
        "error": "Сообщение не отправлено",
        "form_title": "Напишите нам",
        "form_intro": "Напишите нам, и мы ответим по электронной почте.",
        "subject": "Тема",
        "message": "Сообщение",
        "files": "Вложения (изображения или PDF, до {size} каждое)",
        "submit": "Отправить",
        "thanks": "Спасибо! Номер вашей заявки — #{ticket}; подтверждение отправлено на ваш e-mail.",
        "form_error": "Форма не отправлена",
    },
}

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class WebConfig(ChannelConfigBase):
    """A `[[channel]]` table with `type = "web"` (display_name is the widget's title, greeting
    its first line before the visitor writes)."""

    type: Literal["web"] = "web"
    listen: str = "127.0.0.1:8085"  # behind a TLS reverse proxy in production
    public_url: str | None = None  # how browsers reach `listen` (https://help.example.com)
    allowed_origins: list[str] = Field(default_factory=list)  # sites that may embed the widget
    language: Literal["auto", "en", "ru"] = "auto"  # auto: the embedding page's <html lang>
    color: str = "#1f6feb"  # the desk's colour: header and buttons
    text_color: str = "#ffffff"  # text on that colour
    texts: dict[str, dict[str, str]] = Field(default_factory=dict)
    mail_channel: str | None = None  # e-mail channel for form tickets and mail fallback
    kb_url: str | None = None  # the exported help site; suggestions link to <kb_url>/<slug>.html
    secret_env: str | None = None  # the cookie/CSRF signing key; default: <home>/web-secret
    secret_cmd: str | None = None
    away_after: str = "2m"  # a visitor without a connection this long has gone (mail fallback)
    max_message_chars: int = 5000
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_attachments: int = 3
    rate_per_minute: int = 30  # requests per client address
    visitor_messages_per_minute: int = 12  # chat messages per visitor
    trust_proxy: bool = True  # take X-Forwarded-For / X-Real-IP from a loopback peer

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("listen is host:port, such as 127.0.0.1:8085")
        return v

    @field_validator("color", "text_color")
    @classmethod
    def _color(cls, v: str) -> str:
        if not _COLOR.match(v):
            raise ValueError("a colour is #rrggbb, such as #1f6feb")
        return v

    @field_validator("away_after")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("texts")
    @classmethod
    def _texts(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for lang, table in v.items():
            if lang not in TEXTS:
                raise ValueError(f"texts are given for en and ru, not {lang!r}")
            for key in table:
                if key not in TEXTS[lang]:
                    raise ValueError(f"there is no widget text named {key!r}")
        return v

    def secret(self) -> str | None:
        return self._resolve(
            self.secret_env, self.secret_cmd, f"signing key of channel {self.name}"
        )

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def text_table(self, lang: str, desk_name: str) -> dict[str, str]:
        out = dict(TEXTS[lang])
        out["title"] = self.display_name or desk_name or out["title"]
        out.update(self.texts.get(lang, {}))
        return out
