"""The NPS figures of a report from the scores given (no database, nothing heavy: the report's
quick path loads it; ``replies.nps`` sends the surveys and records the scores)."""

from __future__ import annotations

from datetime import datetime


def summary(rated: list[tuple[datetime, int, int]]) -> dict[str, object]:
    """The NPS figures from (at, customer id, score), the latest score per customer."""
    latest: dict[int, tuple[datetime, int]] = {}
    for at, cid, score in sorted(rated):
        latest[cid] = (at, score)
    scores = [s for _at, s in latest.values()]
    n = len(scores)
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return {
        "responses": n,
        "promoters": promoters,
        "passives": n - promoters - detractors,
        "detractors": detractors,
        "score": round((promoters - detractors) * 100 / n, 1) if n else None,
    }
