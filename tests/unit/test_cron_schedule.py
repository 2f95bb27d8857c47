"""When a schedule last fired, which run was missed, and apply once per local day (DST too).

Fixed clocks in Europe/Helsinki. In 2027 its clocks go 03:00 -> 04:00 on 28 March (03:xx does
not exist) and 04:00 -> 03:00 on 31 October (03:xx happens twice).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archivekeeper.core.cron import apply_allowed, missed_run, parse_cron

HELSINKI = ZoneInfo("Europe/Helsinki")
MINUTE = timedelta(minutes=1)


def at(*args, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=HELSINKI, fold=fold)


def utc(dt: datetime | None) -> datetime | None:
    """Instants compare in UTC: two datetimes of one zone compare by wall time, fold ignored."""
    return None if dt is None else dt.astimezone(UTC)


@pytest.mark.parametrize("text", ["0 7 * * 1", "0 7 * * mon", "0 7 * * MON"])
def test_monday_schedule_fires_on_monday(text):
    spec = parse_cron(text)
    fire = spec.last_fire(at(2027, 3, 10, 12, 0))  # a Wednesday
    assert fire == at(2027, 3, 8, 7, 0)
    assert fire.isoweekday() == 1
    assert spec.last_fire(at(2027, 3, 8, 7, 0)) == at(2027, 3, 8, 7, 0)  # <= now, inclusive
    assert spec.last_fire(at(2027, 3, 8, 6, 59, 59)) == at(2027, 3, 1, 7, 0)


@pytest.mark.parametrize("text", ["0 7 * * 0", "0 7 * * 7", "0 7 * * sun"])
def test_sunday_is_0_or_7(text):
    fire = parse_cron(text).last_fire(at(2027, 3, 10, 12, 0))
    assert fire == at(2027, 3, 7, 7, 0)
    assert fire.isoweekday() == 7


@pytest.mark.parametrize(("text", "now", "expected"), [
    ("0 7 * * mon", at(2027, 1, 1, 8, 0), at(2026, 12, 28, 7, 0)),  # back over a year end
    ("0 0 1 * *", at(2027, 3, 15, 9, 0), at(2027, 3, 1, 0, 0)),
    ("0 0 1 * *", at(2027, 3, 1, 0, 0), at(2027, 3, 1, 0, 0)),
    ("59 23 * * *", at(2027, 3, 1, 0, 0), at(2027, 2, 28, 23, 59)),  # back over a month end
    ("30 4 31 * *", at(2027, 5, 10, 0, 0), at(2027, 3, 31, 4, 30)),  # April has no 31st
    ("0 12 29 2 *", at(2028, 3, 1, 0, 0), at(2028, 2, 29, 12, 0)),
    ("0 12 25 12 *", at(2027, 12, 24, 0, 0), at(2026, 12, 25, 12, 0)),  # a year back
    ("*/15 9-17 * * 1-5", at(2027, 3, 13, 10, 0), at(2027, 3, 12, 17, 45)),  # Saturday
    ("*/15 9-17 * * 1-5", at(2027, 3, 12, 10, 14), at(2027, 3, 12, 10, 0)),
])
def test_last_fire_across_day_month_and_year_boundaries(text, now, expected):
    assert utc(parse_cron(text).last_fire(now)) == utc(expected)


def test_last_fire_gives_up_after_400_days():
    # 29 February 2024 is more than 400 days before this now
    assert parse_cron("0 12 29 2 *").last_fire(at(2027, 6, 1, 0, 0)) is None


@pytest.mark.parametrize(("now", "expected"), [
    (at(2027, 8, 16, 0, 0), at(2027, 8, 13, 0, 0)),  # Friday the 13th: both match
    (at(2027, 10, 14, 0, 0), at(2027, 10, 13, 0, 0)),  # the 13th, a Wednesday
    (at(2027, 10, 12, 0, 0), at(2027, 10, 8, 0, 0)),  # a Friday, not the 13th
])
def test_either_rule_when_both_day_fields_are_restricted(now, expected):
    assert parse_cron("0 0 13 * 5").last_fire(now) == expected


def test_a_day_field_starting_with_star_is_not_restricted():
    # '*/2' is unrestricted: a day must be both odd and a Monday
    fire = parse_cron("0 0 */2 * mon").last_fire(at(2027, 3, 31, 0, 0))
    assert fire == at(2027, 3, 29, 0, 0)  # 22 March is a Monday but even
    assert (fire.day % 2, fire.isoweekday()) == (1, 1)


# -- missed runs ---------------------------------------------------------------------------------
REPORT = parse_cron("0 7 * * mon")


def test_monday_report_missed_over_a_weekend_off_runs_at_next_start():
    last_success = at(2027, 3, 1, 7, 0, 4)  # the previous Monday's report went out
    # the machine was off from Friday evening; the daemon starts on Tuesday at 09:00
    assert missed_run(REPORT, last_success, at(2027, 3, 9, 9, 0)) == at(2027, 3, 8, 7, 0)
    assert missed_run(REPORT, at(2027, 3, 9, 9, 0, 30), at(2027, 3, 9, 9, 1)) is None
    # the report ran on time: nothing is owed
    assert missed_run(REPORT, at(2027, 3, 8, 7, 0, 5), at(2027, 3, 9, 9, 0)) is None


def test_fresh_install_owes_the_latest_run():
    assert missed_run(REPORT, None, at(2027, 3, 9, 9, 0)) == at(2027, 3, 8, 7, 0)


def test_many_missed_runs_owe_one():
    scan = parse_cron("15 * * * *")
    now = at(2027, 3, 12, 10, 20)
    owed = missed_run(scan, at(2027, 3, 9, 9, 15, 10), now)  # three days of hourly scans missed
    assert owed == at(2027, 3, 12, 10, 15)
    assert missed_run(scan, now, now + MINUTE) is None  # the one catch-up ran


def test_missed_run_compares_instants_in_the_repeated_hour():
    daily = parse_cron("30 3 * * *")
    first = at(2027, 10, 31, 3, 30)  # EEST; the same wall time comes again an hour later
    after_first = at(2027, 10, 31, 3, 5, fold=1)  # EET: later than `first`, though 03:05 < 03:30
    assert missed_run(daily, first + timedelta(seconds=5), after_first) is None
    # a run that began at `first` and finished at 03:01 EET is the success of `first`
    assert missed_run(daily, at(2027, 10, 31, 3, 1, fold=1), after_first) is None
    assert missed_run(daily, at(2027, 10, 30, 3, 30, 5), after_first) == first


# -- apply once per local day, across both DST changes -------------------------------------------
def test_apply_allowed_once_per_local_day():
    assert apply_allowed(None, at(2027, 3, 28, 4, 0))
    assert apply_allowed(date(2027, 3, 27), at(2027, 3, 28, 0, 0))
    assert not apply_allowed(date(2027, 3, 28), at(2027, 3, 28, 23, 59, 59))
    assert not apply_allowed(date(2027, 3, 29), at(2027, 3, 28, 12, 0))  # clock set back


def _simulate_daemon(text: str, start: datetime, end: datetime) -> list[datetime]:
    """A daemon that wakes every minute (real instants, stepped in UTC), runs apply when a run
    is owed and allowed, and records the run as the last success."""
    spec = parse_cron(text)
    runs: list[datetime] = []
    last_success, last_day = None, date(1970, 1, 1)
    tick, stop = utc(start), utc(end)
    while tick < stop:
        now = tick.astimezone(HELSINKI)
        if missed_run(spec, last_success, now) is not None and apply_allowed(last_day, now):
            runs.append(now)
            last_success, last_day = now, now.date()
        tick += MINUTE
    return runs


@pytest.mark.parametrize("text", ["30 3 * * *", "0 3 * * *", "59 3 * * *", "30 4 * * *",
                                  "0 0 * * *"])
@pytest.mark.parametrize(("start", "end"), [
    (at(2027, 3, 26, 12, 0), at(2027, 3, 31, 0, 0)),
    (at(2027, 10, 29, 12, 0), at(2027, 11, 3, 0, 0)),
])
def test_apply_runs_exactly_once_each_local_day_across_dst(text, start, end):
    runs = _simulate_daemon(text, start, end)
    per_day = Counter(run.date() for run in runs)
    days = [start.date() + timedelta(days=n) for n in range(1, (end.date() - start.date()).days)]
    assert {day: per_day[day] for day in days} == dict.fromkeys(days, 1)


def test_apply_in_the_skipped_hour_runs_when_the_gap_ends():
    runs = _simulate_daemon("30 3 * * *", at(2027, 3, 27, 12, 0), at(2027, 3, 29, 0, 0))
    assert [utc(r) for r in runs if r.day == 28] == [utc(at(2027, 3, 28, 4, 0))]  # 04:00 EEST, 01:00 UTC


@pytest.mark.parametrize("text", ["0 3 * * *", "31 3 * * *", "59 3 * * *", "*/7 3 * * *"])
def test_every_skipped_minute_fires_at_the_end_of_the_gap(text):
    fire = parse_cron(text).last_fire(at(2027, 3, 28, 4, 30))
    assert utc(fire) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # 04:00 EEST
    assert (fire.hour, fire.minute, fire.utcoffset()) == (4, 0, timedelta(hours=3))


def test_apply_in_the_repeated_hour_runs_on_its_first_occurrence_only():
    runs = [r for r in _simulate_daemon("30 3 * * *", at(2027, 10, 30, 12, 0),
                                        at(2027, 11, 1, 0, 0)) if r.day == 31]
    assert [utc(r) for r in runs] == [datetime(2027, 10, 31, 0, 30, tzinfo=UTC)]  # EEST
    assert runs[0].utcoffset() == timedelta(hours=3)
    # a scheduler that fires by wall time would fire again at 03:30 EET: refused
    assert not apply_allowed(runs[0].date(), at(2027, 10, 31, 3, 30, fold=1))


# -- property: last_fire is the latest matching minute, by brute force ---------------------------
def _brute_last_fire(spec, now: datetime, since: datetime) -> datetime | None:
    """Minute by minute back from now: a minute fires if its wall time matches on its first
    occurrence, or if the minute just after a gap, for any matching wall time the gap skipped."""
    tick = utc(now).replace(second=0, microsecond=0)
    while tick >= utc(since):
        local = tick.astimezone(HELSINKI)
        if local.fold == 0 and spec.matches(local):
            return local
        wall = (tick - MINUTE).astimezone(HELSINKI).replace(tzinfo=None) + MINUTE
        while wall < local.replace(tzinfo=None):  # wall minutes skipped just before `local`
            if spec.matches(wall):
                return local
            wall += MINUTE
        tick -= MINUTE
    return None


def _field(values: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), st.sets(values, min_size=1, max_size=3).map(
        lambda s: ",".join(str(v) for v in sorted(s))))


SPECS = st.tuples(
    _field(st.sampled_from([0, 1, 29, 30, 31, 59])),
    st.one_of(_field(st.integers(0, 23)), st.just("3"), st.just("2,3,4")),
    _field(st.integers(1, 31)),
    _field(st.sampled_from([2, 3, 10, 11, 12])),
    _field(st.integers(0, 7)),
).map(" ".join)
WINDOW = timedelta(days=3)
STARTS = [at(2027, 3, 26, 0, 0), at(2027, 10, 29, 0, 0), at(2027, 2, 26, 0, 0),
          at(2027, 12, 30, 0, 0)]


@settings(max_examples=150, deadline=None)
@given(text=SPECS, start=st.sampled_from(STARTS),
       offset=st.integers(0, int(WINDOW.total_seconds())))
def test_last_fire_is_the_latest_matching_minute(text, start, offset):
    try:
        spec = parse_cron(text)
    except ValueError:
        assume(False)  # a schedule that can never fire
    now = (utc(start) + timedelta(seconds=offset)).astimezone(HELSINKI)
    since = (utc(now) - WINDOW).astimezone(HELSINKI)
    fire, expected = spec.last_fire(now), _brute_last_fire(spec, now, since)
    if expected is None:
        assert fire is None or utc(fire) < utc(since)
        return
    assert utc(fire) == utc(expected)
    assert fire.fold == 0
    before = (utc(fire) - MINUTE).astimezone(HELSINKI)
    after_a_gap = before.replace(tzinfo=None) + MINUTE != fire.replace(tzinfo=None)
    assert spec.matches(fire) or after_a_gap


# -- agreement with APScheduler ------------------------------------------------------------------
@pytest.mark.parametrize("text", ["0 7 * * mon", "30 4 * * *", "0 0 13 * 5"])
def test_apscheduler_fires_exactly_when_last_fire_says(text):
    spec = parse_cron(text)
    triggers = [CronTrigger(**kwargs, timezone=HELSINKI) for kwargs in spec.apscheduler_triggers()]
    trigger = triggers[0] if len(triggers) == 1 else OrTrigger(triggers)
    fires = []
    start = at(2027, 3, 1, 0, 0)
    while (fire := trigger.get_next_fire_time(None, start)) < at(2027, 12, 1, 0, 0):
        fires.append(fire)
        start = (utc(fire) + timedelta(seconds=1)).astimezone(HELSINKI)
    assert len(fires) >= 30
    for previous, fire in zip(fires, fires[1:], strict=False):
        assert utc(spec.last_fire(fire)) == utc(fire)
        # nothing fires between two of APScheduler's fire times
        just_before = (utc(fire) - timedelta(microseconds=1)).astimezone(HELSINKI)
        assert utc(spec.last_fire(just_before)) == utc(previous)
