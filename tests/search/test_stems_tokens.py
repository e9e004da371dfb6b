"""``stems.tokens`` normalizes the text once: the same tokens as normalizing each again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.channels.base import InboundMessage
from supportdesk.inbound.prep import stems_of
from supportdesk.store.stems import _TOKEN, normalize, stem_text, tokens


def _per_token(text: str) -> list[str]:
    """The former definition: each token normalized again after the text was."""
    return [normalize(t) for t in _TOKEN.findall(normalize(text))]


TRICKY = [
    "ΟΔΟΣ ΣΟΦΟΣ Σ",  # final sigma in context
    "İstanbul ǅemal ǈ ẞ ß ﬁ ﬀ",  # lower-casing that grows or titlecase digraphs
    "ЁЛКА ёлка Ёж",  # ё folded to е
    "Ⅻ ⓐ Ⓐ K Å Ω",  # letter-like symbols, Kelvin, Angstrom, Ohm
    "mixed_under score 123 x²",
]


def test_tricky_strings() -> None:
    for text in TRICKY:
        assert tokens(text) == _per_token(text), text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text(text: str) -> None:
    assert tokens(text) == _per_token(text)


def test_title_stems_reused_only_when_equal() -> None:
    def msg(subject: str) -> InboundMessage:
        return InboundMessage(
            kind="email", external_id="x@y", sender_address="a@b", subject=subject, text="t"
        )

    for subject in ["Printer not working", "Re: Printer not working", "", "  Fwd: ЁЖ  "]:
        s, _t, title = stems_of(msg(subject))[:3]
        from supportdesk.channels.email.subject import ticket_title

        assert s == stem_text(subject[:998])
        assert title == stem_text(ticket_title(subject))
