"""crontab(5) schedules: parse once, then match wall-clock times or hand them to APScheduler.

Syntax and meaning follow crontab(5) (Vixie cron / cronie): five fields, minute hour
day-of-month month day-of-week; `*`, lists, ranges, steps (`*/15`, `1-5/2`), month names
jan-dec and day names sun-sat in any case, day-of-week 0 or 7 = Sunday; the shortcuts @hourly,
@daily, @midnight, @weekly, @monthly, @yearly, @annually. As in cron, a day field counts as
restricted when it does not start with `*`, and when both day fields are restricted a day
matches if either matches.

Time is local wall-clock time: the caller passes aware datetimes (tzinfo a zoneinfo.ZoneInfo).
Across a DST change a schedule fires once for each wall-clock minute it names: a minute skipped by
a spring-forward gap fires at the first instant after the gap, and a minute that a fall-back
repeats fires on its first occurrence only. (cron(8) runs wildcard-hour jobs in the repeated hour
again; here every job is treated alike, so an hourly scan skips one run a year.)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_SHORTCUTS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_WEEKDAY_ABBR = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SEARCH_DAYS = 400  # last_fire looks this far back: past a year, for yearly schedules
_FORM = "minute hour day-of-month month day-of-week, e.g. '0 7 * * mon', or @daily"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    expected: str


_FIELDS = (
    _Field("minute", 0, 59, {}, "0-59"),
    _Field("hour", 0, 23, {}, "0-23"),
    _Field("day-of-month", 1, 31, {}, "1-31"),
    _Field("month", 1, 12, _MONTH_NAMES, "1-12 or jan-dec"),
    _Field("day-of-week", 0, 7, _DAY_NAMES, "0-7 or sun-sat, 0 and 7 both Sunday"),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed schedule. weekdays use 0=Sunday..6=Saturday (7 is folded into 0)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, dt: datetime) -> bool:
        """Given a (wall-clock) datetime, return whether the schedule fires in its minute."""
        return dt.minute in self.minutes and dt.hour in self.hours and self._day_matches(dt)

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        day_ok = day.day in self.days
        weekday_ok = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def last_fire(self, now: datetime) -> datetime | None:
        """Given an aware `now`, return the latest instant <= now at which the schedule fires
        (see the module's note on DST), aware in now's zone; None if it did not fire in the
        last 400 days."""
        zone = now.tzinfo
        now_utc = now.astimezone(UTC)  # one zone compares wall times, blind to a repeated hour
        times = sorted(((h, m) for h in self.hours for m in self.minutes), reverse=True)
        today = now.date()
        for back in range(_SEARCH_DAYS + 1):
            day = today - timedelta(days=back)
            if not self._day_matches(day):
                continue
            # within a day, a later wall time never fires earlier: the first one <= now wins
            for hour, minute in times:
                fire = _fire_instant(datetime(day.year, day.month, day.day, hour, minute,
                                              tzinfo=zone))
                if fire.astimezone(UTC) <= now_utc:
                    return fire
        return None

    def apscheduler_triggers(self) -> list[dict[str, str]]:
        """Return kwargs for apscheduler.triggers.cron.CronTrigger, one dict per trigger.

        Weekdays are given by name because APScheduler numbers them from Monday. When both day
        fields are restricted, two dicts come back; combine them with OrTrigger (cron's "either").
        """
        base = {
            "minute": _number_list(self.minutes, 0, 59),
            "hour": _number_list(self.hours, 0, 23),
            "month": _number_list(self.months, 1, 12),
        }
        days = _number_list(self.days, 1, 31)
        weekdays = (
            "*"
            if len(self.weekdays) == 7
            else ",".join(_WEEKDAY_ABBR[d] for d in sorted(self.weekdays))
        )
        if self.days_restricted and self.weekdays_restricted:
            return [
                {**base, "day": days, "day_of_week": "*"},
                {**base, "day": "*", "day_of_week": weekdays},
            ]
        return [{**base, "day": days, "day_of_week": weekdays}]


def _fire_instant(wall: datetime) -> datetime:
    """Given a local wall time (fold=0: the first of a repeated pair), return when it fires: the
    end of the gap if a spring-forward skipped it."""
    while not _exists(wall):
        wall += timedelta(minutes=1)  # same-zone arithmetic moves the wall clock
    return wall


def _exists(wall: datetime) -> bool:
    back = wall.astimezone(UTC).astimezone(wall.tzinfo)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


def missed_run(spec: CronSpec, last_success: datetime | None, now: datetime) -> datetime | None:
    """Given a job's schedule, when it last succeeded (aware, or None if it never ran) and now,
    return the scheduled time of the latest run that was due and did not happen, or None. However
    many runs were missed (the machine off or asleep, the daemon stopped), one is owed."""
    due = spec.last_fire(now)
    if due is None or (last_success is not None
                       and last_success.astimezone(UTC) >= due.astimezone(UTC)):
        return None
    return due


def apply_allowed(last_apply_day: date | None, now: datetime) -> bool:
    """Given the local day of the last apply and an aware now, return whether apply may run:
    at most once per local day, whatever DST does. A recorded day after today (the clock set
    back) waits for that day to pass."""
    return last_apply_day is None or last_apply_day < now.date()


def _number_list(values: frozenset[int], low: int, high: int) -> str:
    if values == frozenset(range(low, high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def parse_cron(text: str) -> CronSpec:
    """Given a crontab(5) schedule, return a CronSpec. Raise ValueError saying what is wrong and
    what is expected if it is malformed or can never fire."""
    if not isinstance(text, str):
        raise ValueError(f"a schedule must be text ({_FORM})")
    stripped = text.strip()
    if stripped.startswith("@"):
        expanded = _SHORTCUTS.get(stripped.lower())
        if expanded is None:
            raise ValueError(
                f"unknown shortcut {stripped!r} "
                "(one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually)"
            )
        stripped = expanded
    parts = stripped.split()
    if len(parts) != 5:
        raise ValueError(f"{text!r} has {len(parts)} fields, not 5 ({_FORM})")
    minutes, hours, days, months, weekdays = (
        _parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)
    )
    spec = CronSpec(
        text=text,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(d % 7 for d in weekdays),
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )
    if not spec.weekdays_restricted and not any(
        day <= _longest_month(month) for month in months for day in days
    ):
        raise ValueError(
            f"{text!r} never fires: no chosen month has the chosen day-of-month "
            "(a day that exists in one of the months)"
        )
    return spec


def _longest_month(month: int) -> int:
    return calendar.monthrange(2000, month)[1]  # 2000 is a leap year: 29 February counts


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, field))
    return frozenset(values)


def _parse_item(item: str, field: _Field) -> range:
    where = f"{field.name} {item!r}"
    range_text, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _is_number(step_text) or int(step_text) == 0:
            raise ValueError(f"{where}: step {step_text!r} is not a positive whole number "
                             "(e.g. */15)")
        step = int(step_text)
    if range_text == "*":
        return range(field.low, field.high + 1, step)
    start_text, dash, end_text = range_text.partition("-")
    start = _value(start_text, field, where)
    if not dash:
        if slash:
            raise ValueError(f"{where}: a step needs a range or * ({start}-{field.high}/{step})")
        return range(start, start + 1)
    end = _value(end_text, field, where)
    if field.names is _DAY_NAMES and end_text.lower() == "sun" and start > 0:
        end = 7  # "fri-sun" means Friday to Sunday, not a backwards range
    if end < start:
        raise ValueError(f"{where}: the range runs backwards (low-high, e.g. 1-5)")
    return range(start, end + 1, step)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _value(text: str, field: _Field, where: str) -> int:
    if _is_number(text):
        value = int(text)
    elif text.lower() in field.names:
        value = field.names[text.lower()]
    else:
        raise ValueError(f"{where}: {text!r} is not a {field.name} ({field.expected})")
    if not field.low <= value <= field.high:
        raise ValueError(f"{where}: {value} is out of range ({field.expected})")
    return value
