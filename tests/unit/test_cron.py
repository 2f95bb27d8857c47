"""crontab(5) schedules: parsing, matching, and agreement with APScheduler's CronTrigger."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from archivekeeper.core.cron import parse_cron

HELSINKI = ZoneInfo("Europe/Helsinki")


def test_fields_become_sets_of_numbers():
    spec = parse_cron("*/20 9-17 1,15 jan-mar/2 1-5")
    assert spec.minutes == {0, 20, 40}
    assert spec.hours == set(range(9, 18))
    assert spec.days == {1, 15}
    assert spec.months == {1, 3}
    assert spec.weekdays == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(("text", "weekdays"), [
    ("0 7 * * 0", {0}),
    ("0 7 * * 7", {0}),
    ("0 7 * * SUN", {0}),
    ("0 7 * * Mon,sun", {0, 1}),
    ("0 7 * * 5-7", {5, 6, 0}),
    ("0 7 * * fri-sun", {5, 6, 0}),
    ("0 7 * * sun-sat", {0, 1, 2, 3, 4, 5, 6}),
    ("0 7 * * */2", {0, 2, 4, 6}),
])
def test_day_of_week_numbers_sunday_as_0_or_7(text, weekdays):
    assert parse_cron(text).weekdays == weekdays


@pytest.mark.parametrize(("text", "expanded"), [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@ANNUALLY", "0 0 1 1 *"),
])
def test_shortcuts_mean_their_five_field_forms(text, expanded):
    spec, plain = parse_cron(text), parse_cron(expanded)
    assert spec.text == text
    assert (spec.minutes, spec.hours, spec.days, spec.months, spec.weekdays) == (
        plain.minutes, plain.hours, plain.days, plain.months, plain.weekdays)


@pytest.mark.parametrize(("text", "message"), [
    ("", "'' has 0 fields, not 5 (minute hour day-of-month month day-of-week, "
         "e.g. '0 7 * * mon', or @daily)"),
    ("0 7 * *", "'0 7 * *' has 4 fields, not 5"),
    ("0 7 * * * *", "has 6 fields, not 5"),
    ("60 * * * *", "minute '60': 60 is out of range (0-59)"),
    ("0 24 * * *", "hour '24': 24 is out of range (0-23)"),
    ("0 0 0 * *", "day-of-month '0': 0 is out of range (1-31)"),
    ("0 0 32 * *", "day-of-month '32': 32 is out of range (1-31)"),
    ("0 0 * 13 *", "month '13': 13 is out of range (1-12 or jan-dec)"),
    ("0 7 * * 8", "day-of-week '8': 8 is out of range (0-7 or sun-sat, 0 and 7 both Sunday)"),
    ("0 7 * * mon-sat-sun", "day-of-week 'mon-sat-sun': 'sat-sun' is not a day-of-week"),
    ("0 7 * * monday", "day-of-week 'monday': 'monday' is not a day-of-week"),
    ("0 7 * jan-feb mon", None),
    ("0 7 mon * *", "day-of-month 'mon': 'mon' is not a day-of-month (1-31)"),
    ("*/0 * * * *", "minute '*/0': step '0' is not a positive whole number (e.g. */15)"),
    ("*/x * * * *", "minute '*/x': step 'x' is not a positive whole number (e.g. */15)"),
    ("5/15 * * * *", "minute '5/15': a step needs a range or * (5-59/15)"),
    ("0 17-9 * * *", "hour '17-9': the range runs backwards (low-high, e.g. 1-5)"),
    ("1,,2 * * * *", "minute '': '' is not a minute (0-59)"),
    ("\u0661 * * * *", "minute '\u0661': '\u0661' is not a minute (0-59)"),
    ("0 0 30 feb *", "'0 0 30 feb *' never fires: no chosen month has the chosen day-of-month"),
    ("@reboot", "unknown shortcut '@reboot' (one of @hourly, @daily, @midnight, @weekly, "
                "@monthly, @yearly, @annually)"),
])
def test_malformed_schedules_say_what_is_wrong(text, message):
    if message is None:
        assert parse_cron(text).months == {1, 2}
        return
    with pytest.raises(ValueError) as caught:
        parse_cron(text)
    assert message in str(caught.value)
    assert str(caught.value).endswith(")")


def test_february_29_is_a_valid_if_rare_day():
    assert parse_cron("0 0 29 2 *").matches(datetime(2024, 2, 29, 0, 0))


@pytest.mark.parametrize(("text", "when", "expected"), [
    ("0 7 * * mon", datetime(2024, 9, 30, 7, 0), True),  # a Monday
    ("0 7 * * mon", datetime(2024, 10, 1, 7, 0), False),
    ("0 7 * * 0", datetime(2024, 9, 29, 7, 0), True),  # a Sunday
    ("0 7 * * 7", datetime(2024, 9, 29, 7, 0), True),
    ("0 0 1 * mon", datetime(2024, 10, 1, 0, 0), True),  # the 1st, a Tuesday: either field
    ("0 0 1 * mon", datetime(2024, 10, 7, 0, 0), True),  # a Monday, not the 1st
    ("0 0 1 * mon", datetime(2024, 10, 8, 0, 0), False),
    ("0 0 */2 * mon", datetime(2024, 10, 7, 0, 0), True),  # '*/2' is unrestricted: both
    ("0 0 */2 * mon", datetime(2024, 10, 14, 0, 0), False),
    ("0 0 */2 * mon", datetime(2024, 10, 3, 0, 0), False),
])
def test_matches_follows_crontab_day_rules(text, when, expected):
    assert parse_cron(text).matches(when) is expected


def test_triggers_name_weekdays_because_apscheduler_counts_from_monday():
    assert parse_cron("0 7 * * 0,1").apscheduler_triggers() == [
        {"minute": "0", "hour": "7", "month": "*", "day": "*", "day_of_week": "sun,mon"}
    ]


def test_both_day_fields_restricted_gives_two_triggers():
    assert parse_cron("0 0 1 * mon").apscheduler_triggers() == [
        {"minute": "0", "hour": "0", "month": "*", "day": "1", "day_of_week": "*"},
        {"minute": "0", "hour": "0", "month": "*", "day": "*", "day_of_week": "mon"},
    ]


AGREEMENT_SPECS = [
    "0 7 * * mon",
    "0 7 * * 0",
    "0 7 * * 7",
    "0 0 1 * mon",
    "*/20 9-17 * * 1-5",
    "15 * * * *",
    "30 4 * * *",
    "0 2 * * *",
    "0 0 */2 * mon",
    "5-50/15 */6 1-10,28 * sat,sun",
    "0 12 29 2 *",
    "0 8 * jan-mar,oct fri-sun",
    "@weekly",
    "@monthly",
]
# Two-week windows without a DST change: one across a month end, one across 29 February.
WINDOWS = [
    (datetime(2024, 9, 23, tzinfo=HELSINKI), datetime(2024, 10, 7, tzinfo=HELSINKI)),
    (datetime(2024, 2, 20, tzinfo=HELSINKI), datetime(2024, 3, 5, tzinfo=HELSINKI)),
]


def _apscheduler_fire_times(text: str, start: datetime, end: datetime) -> set[datetime]:
    triggers = [CronTrigger(**kwargs, timezone=HELSINKI)
                for kwargs in parse_cron(text).apscheduler_triggers()]
    trigger = triggers[0] if len(triggers) == 1 else OrTrigger(triggers)
    fires: set[datetime] = set()
    now = start
    while (fire := trigger.get_next_fire_time(None, now)) is not None and fire < end:
        fires.add(fire)
        now = fire + timedelta(minutes=1)
    return fires


@pytest.mark.parametrize("text", AGREEMENT_SPECS)
def test_matches_agrees_with_apscheduler_minute_by_minute(text):
    spec = parse_cron(text)
    fired = 0
    for start, end in WINDOWS:
        minutes = int((end - start).total_seconds() // 60)
        expected = {
            when for when in (start + timedelta(minutes=m) for m in range(minutes))
            if spec.matches(when)
        }
        assert _apscheduler_fire_times(text, start, end) == expected
        fired += len(expected)
    assert fired, f"{text} never fires in the test windows, so it proves nothing"
