"""The clock guard's verdict in full: the words of each refusal, the instant it judged, where it
points the owner, and a plan made on a distrusted clock promising no deletion day."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from archivekeeper.core.durations import parse_period
from archivekeeper.core.model import FileFact, Limits, Rule, ShootFact
from archivekeeper.core.planner import RAN_TOLERANCE, build_plan, check_clock
from archivekeeper.core.policy import evaluate_all

TZ = timezone(timedelta(hours=3))
NOW = datetime(2025, 6, 1, 4, 30, tzinfo=TZ)
SIXTY = parse_period("60 days")
ACCEPT = "if the clock is right, run `archivekeeper clock accept`"


def test_a_clock_gone_back_says_so_in_full():
    check = check_clock(NOW, NOW + timedelta(hours=1), None, SIXTY)
    assert check.refusals == (
        "the clock (2025-06-01T04:30:00+03:00) is earlier than the last time archivekeeper "
        f"recorded (2025-06-01T05:30:00+03:00): the clock went back; fix it, or {ACCEPT}",)


def test_a_jump_past_the_mark_says_so_in_full_and_carries_the_instant_it_judged():
    mark = NOW - timedelta(days=61)
    check = check_clock(NOW, mark, NOW - timedelta(days=1), SIXTY, "studio:x")
    assert check.refusals == (
        "the clock (2025-06-01T04:30:00+03:00) is more than 60 days (safety.max_clock_jump) "
        "after the last time archivekeeper recorded (2025-04-01T04:30:00+03:00): a jump of the "
        f"clock, or the machine was off; {ACCEPT}",)
    assert (check.now, check.reference) == (NOW, mark)
    assert check.hint() == ""  # judged by the mark: the newest mtime is not the reason


def test_a_jump_past_the_newest_mtime_points_at_it_only_when_told_where_it_is():
    stand_in = NOW - timedelta(days=90)
    check = check_clock(NOW, None, stand_in, SIXTY)
    assert not check.trusted and (check.now, check.reference) == (NOW, stand_in)
    assert check.hint() == ""
    assert check_clock(NOW, None, stand_in, SIXTY, "studio:x").hint() == \
        " (the newest is studio:x)"


def test_a_jump_while_the_machine_ran_says_so_in_full():
    mark = NOW - timedelta(days=40)
    check = check_clock(NOW, mark, None, SIXTY, ran=timedelta(minutes=2))
    assert check.refusals == (
        "the clock (2025-06-01T04:30:00+03:00) is 40 days after the last time archivekeeper "
        "recorded (2025-04-22T04:30:00+03:00), 39 days more than this machine has run since "
        f"then: a jump of the clock; {ACCEPT}",)
    assert (check.now, check.reference) == (NOW, mark)


def test_the_running_time_is_judged_to_the_hour():
    mark = NOW - timedelta(days=3)
    ran = timedelta(days=3) - timedelta(hours=1)
    assert check_clock(NOW, mark, None, SIXTY, ran=ran).trusted
    assert not check_clock(NOW, mark, None, SIXTY, ran=ran - timedelta(seconds=1)).trusted
    assert "is 3 hours after" in check_clock(NOW, NOW - timedelta(hours=3), None, SIXTY,
                                             ran=timedelta(seconds=3600)).refusals[0]
    assert "2 hours more than this machine has run" in check_clock(
        NOW, NOW - timedelta(hours=3), None, SIXTY, ran=timedelta(seconds=3600)).refusals[0]
    # a running time below zero (the tolerance used up by earlier steps): the whole excess
    assert "3 days more than" in check_clock(NOW, mark, None, SIXTY,
                                             ran=timedelta(seconds=-5)).refusals[0]


@pytest.mark.parametrize("after, words", [
    (timedelta(0), "0 seconds"),
    (timedelta(minutes=-3), "0 seconds"),  # behind the mark, within CLOCK_TOLERANCE
    (timedelta(seconds=1), "1 second"),
    (timedelta(seconds=59), "59 seconds"),
    (timedelta(seconds=60), "1 minute"),
    (timedelta(seconds=119), "1 minute"),
    (timedelta(seconds=120), "2 minutes"),
    (timedelta(seconds=3599), "59 minutes"),
    (timedelta(hours=1), "1 hour"),
    (timedelta(days=1) - timedelta(seconds=1), "23 hours"),
    (timedelta(days=1), "1 day"),
    (timedelta(days=2), "2 days"),
])
def test_a_jump_is_put_in_words_to_the_unit_that_matters(after, words):
    """The running time below zero (earlier steps used the tolerance up) refuses even a clock
    that has not moved past the mark; the words are the largest whole unit, singular for one."""
    ran = -RAN_TOLERANCE - timedelta(days=5)
    refusal = check_clock(NOW, NOW - after, None, SIXTY, ran=ran).refusals[0]
    assert f"is {words} after the last time" in refusal


def test_no_running_time_known_leaves_the_jump_to_max_clock_jump():
    assert check_clock(NOW, NOW - timedelta(days=59), None, SIXTY, ran=None).trusted
    assert not check_clock(NOW, NOW - timedelta(days=61), None, SIXTY, ran=None).trusted
    # with no mark (a fresh index) the stand-in mtime has no running time to compare with
    assert check_clock(NOW, None, NOW - timedelta(days=30), SIXTY,
                       ran=timedelta(0)).trusted


def test_a_plan_on_a_distrusted_clock_promises_no_deletion_day():
    shot = date(2024, 5, 12)
    path = f"{shot.isoformat()} Virtanen Matti"
    shoots = [ShootFact(1, "studio", path, "Virtanen Matti", "virtanen matti", shot, "folder",
                        None, shot, shot, files=(FileFact(f"{path}/a.jpg", 100, 1),))]
    rules = [Rule("one-year", "delete", parse_period("1 year"))]

    def plan(clock):
        return build_plan(shoots, evaluate_all(shoots, rules, [], []), announcements={},
                          today=NOW.date(), now=NOW, notice=parse_period("14 days"),
                          require_approval=False, limits=Limits(),
                          volume_totals={"studio": (10, 10**6)}, clock=clock)

    assert plan(check_clock(NOW, NOW, None, SIXTY)).items[0].earliest == date(2025, 6, 15)
    distrusted = plan(check_clock(NOW, NOW + timedelta(days=1), None, SIXTY))
    assert distrusted.refused and distrusted.items[0].earliest is None
    assert distrusted.items[0].to_json()["earliest_deletion"] is None
