"""NPS beside CSAT: 0-10, sent on a schedule per customer (not per ticket), in the report."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel import select

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import open_desk
from supportdesk.replies import csat, nps
from supportdesk.reports import metrics
from supportdesk.store.models import Event, Message, Outbox
from tests.conftest import write_config
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.sla.conftest import BUSINESS_CONFIG, msk
from tests.sla.helpers import set_status, ticket

NPS_CONFIG = BUSINESS_CONFIG + '\n[nps]\nevery = "90d"\nafter = "1d"\n'


def _desk(home: Any) -> Any:
    write_config(home, NPS_CONFIG)
    return open_desk(home, agent="alice")


def _solved_mail(desk: Any, sender: str, day: int, ext: str) -> int:
    r = ingest(desk, inbound_email(sender_address=sender, external_id=ext, sent_at=msk(day, 10)),
               historical=True)  # fmt: skip
    set_status(desk, r.ticket_id, "solved", msk(day, 11))
    return int(r.ticket_id)


def test_no_survey_without_a_schedule(bdesk: Any) -> None:
    _solved_mail(bdesk, "ivan@x.test", 2, "a@x")
    with bdesk.db.write() as s:
        assert nps.send_due(s, bdesk, msk(10, 10)) == []


def test_once_per_customer_per_period_and_an_email_answer(home: Any) -> None:
    desk = _desk(home)
    try:
        t1 = _solved_mail(desk, "ivan@x.test", 2, "a@x")
        t2 = _solved_mail(desk, "ivan@x.test", 3, "b@x")  # the same customer again
        _solved_mail(desk, "olga@x.test", 3, "c@x")
        with desk.db.write() as s:
            assert nps.send_due(s, desk, msk(2, 12)) == []  # not yet a day after the solve
            sent = nps.send_due(s, desk, msk(5, 10))
            assert len(sent) == 2  # ivan once (for his latest ticket), olga once
            assert nps.send_due(s, desk, msk(6, 10)) == []
        with desk.db.read() as s:
            surveys = s.exec(select(Message).where(Message.is_auto, Message.ticket_id == t2)).all()
            survey = [m for m in surveys if "0 (not at all likely) to 10" in m.text]
            assert len(survey) == 1 and survey[0].message_id
            assert not s.exec(select(Message).where(Message.is_auto, Message.ticket_id == t1)
                              ).all()[1:]  # fmt: skip
            assert len(s.exec(select(Outbox)).all()) >= 2
        ingest(desk, inbound_email(sender_address="ivan@x.test", text="9 - very helpful",
                                   in_reply_to=[survey[0].message_id], sent_at=msk(5, 12)),
               historical=True)  # fmt: skip
        assert ticket(desk, t2).status == "solved"  # a score does not reopen the ticket
        with desk.db.read() as s:
            [ev] = s.exec(select(Event).where(Event.kind == "nps_rated")).all()
            assert '"score": 9' in ev.data
        doc = metrics.report(desk, date(2026, 11, 1), date(2026, 11, 30), now=msk(30, 12))
        assert doc["nps"] == {"requested": 2, "responses": 1, "promoters": 1, "passives": 0,
                              "detractors": 0, "score": 100.0}  # fmt: skip
        with desk.db.write() as s:  # within 90 days nobody is asked twice
            assert nps.send_due(s, desk, msk(5, 10) + timedelta(days=20)) == []
        _solved_mail(desk, "ivan@x.test", 20, "d@x")
        with desk.db.write() as s:
            # 91 days after the first survey: ivan (solved again on the 20th) is asked again;
            # olga, whose last solve is older than 90 days by then, is not
            again = nps.send_due(s, desk, msk(5, 10) + timedelta(days=91))
            assert len(again) == 1
    finally:
        desk.close()


def test_telegram_buttons_and_the_score(home: Any) -> None:
    desk = _desk(home)
    try:
        r = ingest(desk, inbound_telegram(chat_id=1001, sent_at=msk(2, 10)), historical=True)
        set_status(desk, r.ticket_id, "solved", msk(2, 11))
        r2 = ingest(desk, inbound_telegram(chat_id=1002, user_id=1002, username="p",
                                           sent_at=msk(2, 10)), historical=True)  # fmt: skip
        set_status(desk, r2.ticket_id, "solved", msk(2, 11))
        with desk.db.write() as s:
            assert len(nps.send_due(s, desk, msk(4, 10))) == 2
            ob = s.exec(select(Outbox).where(Outbox.ticket_id == r.ticket_id)).all()[-1]
            assert '"nps:' in ob.payload and ":10" in ob.payload
        for chat, score in ((1001, 3), (1002, 10)):
            with desk.db.read() as s:
                cid = s.exec(select(Event.customer_id).where(
                    Event.kind == "nps_requested", Event.ticket_id == (
                        r.ticket_id if chat == 1001 else r2.ticket_id))).one()  # fmt: skip
            press = InboundMessage(kind="telegram", external_id=f"tg:{chat}:cb", sender_address=str(chat),
                                   sent_at=msk(4, 12), channel="telegram",
                                   extra={"chat_id": chat, "callback_data": f"nps:{cid}:{score}",
                                          "callback_query_id": "1"})  # fmt: skip
            with desk.db.write() as s:
                assert csat.handle_inbound_callback(s, desk, press)
            assert str(score) in press.extra["callback_answer"]
        doc = metrics.report(desk, date(2026, 11, 1), date(2026, 11, 30), now=msk(30, 12))
        assert (
            doc["nps"]["responses"] == 2 and doc["nps"]["score"] == 0.0
        )  # 1 promoter, 1 detractor
        assert doc["nps"]["detractors"] == 1
    finally:
        desk.close()
