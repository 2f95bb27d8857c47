"""Periods ("6 months", "1 year"), intervals ("30 seconds") and sizes ("500 GB").

Given text from the config, return a value; raise ValueError with a message a person can act on.
Months and years are calendar arithmetic: 29 Feb + 1 year = 28 Feb, 31 Jan + 1 month = 28/29 Feb.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_UNITS = {"day": "days", "week": "weeks", "month": "months", "year": "years"}
_PERIOD_RE = re.compile(r"^\s*(\d{1,6})\s+([A-Za-z]+)\s*$")


@dataclass(frozen=True, order=True)
class Period:
    count: int
    unit: str  # days | weeks | months | years

    def __str__(self) -> str:
        unit = self.unit if self.count != 1 else self.unit[:-1]
        return f"{self.count} {unit}"

    def add_to(self, start: date) -> date:
        """Given a calendar date, return the date this period later (calendar arithmetic)."""
        if self.unit == "days":
            return start + timedelta(days=self.count)
        if self.unit == "weeks":
            return start + timedelta(weeks=self.count)
        months = self.count * (12 if self.unit == "years" else 1)
        total = start.year * 12 + (start.month - 1) + months
        year, month = divmod(total, 12)
        month += 1
        if year > 9999:
            return date.max
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day)

    def subtract_from(self, end: date) -> date:
        """Given a date, return the date this period earlier (calendar arithmetic)."""
        if self.unit in ("days", "weeks"):
            days = self.count * (7 if self.unit == "weeks" else 1)
            return end - timedelta(days=days)
        months = self.count * (12 if self.unit == "years" else 1)
        total = end.year * 12 + (end.month - 1) - months
        year, month = divmod(total, 12)
        month += 1
        if year < 1:
            return date.min
        day = min(end.day, calendar.monthrange(year, month)[1])
        return date(year, month, day)


def parse_period(text: object) -> Period:
    """Given "N days|weeks|months|years" (singular too), return a Period. Raise ValueError."""
    if not isinstance(text, str):
        raise ValueError("must be text like '6 months'")
    m = _PERIOD_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a period like '14 days', '6 months' or '1 year'")
    count, unit = int(m.group(1)), m.group(2).lower()
    unit = _UNITS.get(unit.removesuffix("s"))
    if unit is None:
        raise ValueError(f"{text!r}: unit must be days, weeks, months or years")
    return Period(count, unit)


_INTERVAL_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_interval(text: object) -> int:
    """Given "N seconds|minutes|hours|days", return seconds. Raise ValueError."""
    if not isinstance(text, str):
        raise ValueError("must be text like '30 seconds'")
    m = _PERIOD_RE.match(text)
    unit = m.group(2).lower().rstrip("s") if m else ""
    if not m or unit not in _INTERVAL_UNITS:
        raise ValueError(f"{text!r} is not an interval like '30 seconds' or '5 minutes'")
    return int(m.group(1)) * _INTERVAL_UNITS[unit]


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


def parse_size(value: object) -> int:
    """Given bytes as an int or text like "500 GB" / "2 TiB", return bytes. Raise ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a size like '500 GB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a size like '500 GB'")
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a size like '500 GB' or '2 TiB'")
    factor = _SIZE_FACTORS[(m.group(2) or "B").lower()]
    return int(float(m.group(1)) * factor)
