"""The notice period in each unit it may be written in, and the day an item becomes due."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import Announcement, Erasure, FileFact, Limits, Rule, ShootFact
from archivekeeper.core.planner import build_plan, earliest_deletion
from archivekeeper.core.policy import evaluate_all, explain_shoot

TZ = timezone(timedelta(hours=3))
AT = datetime(2025, 5, 1, 9, 15, tzinfo=TZ)  # when the item was announced
ONE_YEAR = [Rule("one-year", "delete", parse_period("1 year"))]


def shoot(shot: date) -> ShootFact:
    path = f"{shot.isoformat()} Virtanen Matti"
    files = (FileFact(f"{path}/a.jpg", 100, 1), FileFact(f"{path}/b.cr2", 200, 2))
    return ShootFact(1, "studio", path, "Virtanen Matti", "virtanen matti", shot, "folder", None,
                     shot, shot, files=files)


def plan(shot: date, now: datetime, notice: str, announced_at: datetime | None = None,
         require_approval: bool = False, approved_at: datetime | None = None):
    shoots = [shoot(shot)]
    args = dict(today=now.date(), now=now, notice=parse_period(notice),
                require_approval=require_approval, limits=Limits(),
                volume_totals={"studio": (10, 10**6)})
    decisions = evaluate_all(shoots, ONE_YEAR, [], [])
    first = build_plan(shoots, decisions, announcements={}, **args)
    anns = {}
    if announced_at is not None:
        anns = {i.key: Announcement(i.key, announced_at, approved_at) for i in first.items}
    return build_plan(shoots, evaluate_all(shoots, ONE_YEAR, [], []), announcements=anns, **args)


def status(*args, **kw) -> str | None:
    items = plan(*args, **kw).items
    assert len(items) <= 1
    return items[0].status if items else None


# An item dated 2025-05-01 (shot 2024-05-01), announced on its date at 09:15.
SHOT = date(2024, 5, 1)


@pytest.mark.parametrize(
    ("notice", "noticed_at"),
    [
        ("1 day", datetime(2025, 5, 2, 9, 15, tzinfo=TZ)),
        ("1 week", datetime(2025, 5, 8, 9, 15, tzinfo=TZ)),
        # a calendar month: 31 days from 1 May; 30 days would end on 31 May
        ("1 month", datetime(2025, 6, 1, 9, 15, tzinfo=TZ)),
        ("2 weeks", datetime(2025, 5, 15, 9, 15, tzinfo=TZ)),
        ("3 days", datetime(2025, 5, 4, 9, 15, tzinfo=TZ)),
        ("1 year", datetime(2026, 5, 1, 9, 15, tzinfo=TZ)),
    ],
)
def test_an_announced_item_is_due_when_the_notice_period_has_passed_not_a_second_before(
    notice, noticed_at
):
    assert status(SHOT, noticed_at, notice, AT) == "due"
    assert status(SHOT, noticed_at - timedelta(seconds=1), notice, AT) == "upcoming"


def test_one_month_of_notice_is_not_thirty_days():
    assert status(SHOT, datetime(2025, 5, 31, 9, 15, tzinfo=TZ), "1 month", AT) == "upcoming"


@pytest.mark.parametrize(
    ("notice", "last_listed", "listed_as", "first_unlisted"),
    [
        ("1 day", date(2025, 5, 2), "upcoming", date(2025, 5, 3)),
        ("1 week", date(2025, 5, 8), "upcoming", date(2025, 5, 9)),
        ("1 month", date(2025, 6, 1), "upcoming", date(2025, 6, 2)),  # 1 May + a month
        ("0 days", date(2025, 5, 1), "due", date(2025, 5, 2)),
    ],
)
def test_an_item_is_listed_from_one_notice_period_before_its_date(
    notice, last_listed, listed_as, first_unlisted
):
    now = datetime(2025, 5, 1, 9, 15, tzinfo=TZ)
    assert status(last_listed.replace(year=2024), now, notice) == listed_as
    assert status(first_unlisted.replace(year=2024), now, notice) is None


def test_an_item_dated_today_is_due_and_one_dated_tomorrow_is_not():
    now = datetime(2025, 5, 1, 0, 0, tzinfo=TZ)  # the first minute of the item's date
    assert status(SHOT, now, "0 days") == "due"
    # the day before, with no notice, it is not even listed
    assert status(SHOT, now - timedelta(minutes=1), "0 days") is None
    assert status(date(2024, 5, 2), now, "0 days") is None


def test_an_item_announced_long_ago_becomes_due_on_its_date_not_before():
    long_ago = datetime(2025, 1, 1, 9, 0, tzinfo=TZ)
    on_the_day = datetime(2025, 5, 1, 0, 0, tzinfo=TZ)
    assert status(SHOT, on_the_day, "14 days", long_ago) == "due"
    assert status(SHOT, on_the_day - timedelta(minutes=1), "14 days", long_ago) == "upcoming"


def test_with_approval_required_an_item_dated_today_awaits_approval_then_is_due():
    long_ago = datetime(2025, 1, 1, 9, 0, tzinfo=TZ)
    now = datetime(2025, 5, 1, 12, 0, tzinfo=TZ)
    assert status(SHOT, now, "14 days", long_ago, require_approval=True) == "awaiting-approval"
    assert status(SHOT, now - timedelta(days=1), "14 days", long_ago,
                  require_approval=True) == "upcoming"
    assert status(SHOT, now, "14 days", long_ago, require_approval=True,
                  approved_at=now) == "due"


def test_explain_says_delete_on_the_date_itself_and_keep_the_day_before():
    doc = explain_shoot(shoot(SHOT), ONE_YEAR, [], [], date(2025, 5, 1))
    assert (doc.decision, doc.date) == ("delete", date(2025, 5, 1))
    assert {f.decision for f in doc.files} == {"delete"}
    before = explain_shoot(shoot(SHOT), ONE_YEAR, [], [], date(2025, 4, 30))
    assert (before.decision, before.date) == ("keep", date(2025, 5, 1))
    assert {f.decision for f in before.files} == {"keep"}


def test_earliest_deletion_of_a_listed_file_counts_the_notice_from_its_items_announcement():
    """An item announced a week ago goes a week sooner than one a plan would announce today."""
    now = datetime(2025, 5, 20, 12, 0, tzinfo=TZ)
    items = plan(SHOT, now, "14 days", announced_at=now - timedelta(days=7)).items
    assert items[0].earliest == date(2025, 5, 27)
    listed = items[0].files[0]
    assert earliest_deletion(items, [(listed, date(2025, 5, 1), [])], now.date(),
                             parse_period("14 days")) == date(2025, 5, 27)
    # the same file unlisted: its notice period would start today
    assert earliest_deletion([], [(listed, date(2025, 5, 1), [])], now.date(),
                             parse_period("14 days")) == date(2025, 6, 3)


@pytest.mark.parametrize(("notice", "earliest"), [
    ("0 days", date(2025, 5, 1)),  # no notice: its own date, though that is past
    ("1 day", date(2025, 5, 21)),  # first listed today: deletable a day later
    ("14 days", date(2025, 6, 3)),
])
def test_earliest_deletion_of_an_overdue_unannounced_item_is_one_notice_after_today(
        notice, earliest):
    items = plan(SHOT, datetime(2025, 5, 20, 12, 0, tzinfo=TZ), notice).items
    assert items[0].earliest == earliest


def test_earliest_deletion_of_an_erasure_is_its_date_whatever_the_notice():
    shoots = [shoot(SHOT)]
    now = datetime(2025, 5, 20, 12, 0, tzinfo=TZ)
    erased = Erasure("virtanen matti", date(2025, 5, 18), "art. 17")
    items = build_plan(shoots, evaluate_all(shoots, [], [], [erased]), announcements={},
                       today=now.date(), now=now, notice=parse_period("14 days"),
                       require_approval=False, limits=Limits(),
                       volume_totals={"studio": (10, 10**6)}).items
    assert (items[0].erasure, items[0].earliest) == (True, date(2025, 5, 18))


def test_an_announcement_up_to_the_clock_tolerance_ahead_stands_one_further_ahead_does_not():
    """A few minutes of clock skew between two machines do not restart a notice period."""
    now = datetime(2025, 4, 20, 12, 0, tzinfo=TZ)
    at_tolerance = now + timedelta(minutes=5)
    assert plan(SHOT, now, "14 days", announced_at=at_tolerance).items[0].announced_at == \
        at_tolerance
    beyond = now + timedelta(minutes=5, seconds=1)
    assert plan(SHOT, now, "14 days", announced_at=beyond).items[0].announced_at is None
