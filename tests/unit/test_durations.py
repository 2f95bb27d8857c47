"""Periods, intervals and sizes from the config: calendar arithmetic and clear errors."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archivekeeper.core.durations import Period, parse_interval, parse_period, parse_size


@pytest.mark.parametrize("text,expected", [
    ("14 days", Period(14, "days")), ("1 day", Period(1, "days")),
    ("6 months", Period(6, "months")), ("1 year", Period(1, "years")),
    ("5 Years", Period(5, "years")), ("2 weeks", Period(2, "weeks")),
    (" 0 days ", Period(0, "days")),
])
def test_parse_period(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["5 yeers", "five years", "5", "years", "-1 days", "1.5 years",
                                  "", "6 months ago", "1 fortnight"])
def test_parse_period_rejects(text):
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize("value", [5, None, ["1 day"], 1.5])
def test_parse_period_rejects_non_text(value):
    with pytest.raises(ValueError, match="text"):
        parse_period(value)


@pytest.mark.parametrize("start,period,expected", [
    (date(2024, 2, 29), "1 year", date(2025, 2, 28)),
    (date(2024, 2, 29), "4 years", date(2028, 2, 29)),
    (date(2024, 1, 31), "1 month", date(2024, 2, 29)),
    (date(2023, 1, 31), "1 month", date(2023, 2, 28)),
    (date(2024, 8, 31), "6 months", date(2025, 2, 28)),
    (date(2024, 12, 15), "1 month", date(2025, 1, 15)),
    (date(2024, 3, 30), "14 days", date(2024, 4, 13)),
    (date(2024, 3, 25), "1 week", date(2024, 4, 1)),
    (date(2020, 5, 12), "5 years", date(2025, 5, 12)),
])
def test_calendar_arithmetic(start, period, expected):
    assert parse_period(period).add_to(start) == expected


def test_subtract_mirrors_add_for_months():
    assert parse_period("1 year").subtract_from(date(2025, 2, 28)) == date(2024, 2, 28)
    assert parse_period("1 month").subtract_from(date(2024, 3, 31)) == date(2024, 2, 29)
    assert parse_period("14 days").subtract_from(date(2024, 1, 10)) == date(2023, 12, 27)


def test_far_future_and_past_do_not_overflow():
    assert parse_period("999999 years").add_to(date(2024, 1, 1)) == date.max
    assert parse_period("999999 years").subtract_from(date(2024, 1, 1)) == date.min


@pytest.mark.parametrize("text,seconds", [("30 seconds", 30), ("1 second", 1), ("5 minutes", 300),
                                          ("2 hours", 7200), ("1 day", 86400)])
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["30", "30 secs", "soon", "1 month"])
def test_parse_interval_rejects(text):
    with pytest.raises(ValueError):
        parse_interval(text)


@pytest.mark.parametrize("value,expected", [("500 GB", 500 * 10**9), ("2 TiB", 2 * 2**40),
                                            ("1.5 GB", 1_500_000_000), (1024, 1024),
                                            ("10", 10), ("3 mb", 3_000_000)])
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["lots", "-5 GB", True, -1, "5 PB", None])
def test_parse_size_rejects(value):
    with pytest.raises(ValueError):
        parse_size(value)


@given(st.text())
def test_parsers_raise_only_value_error_on_any_text(text):
    for parser in (parse_period, parse_interval, parse_size):
        try:
            parser(text)
        except ValueError:
            pass


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
       st.integers(0, 200), st.sampled_from(["days", "weeks", "months", "years"]))
def test_adding_a_period_never_goes_back_and_lands_in_the_right_month(start, n, unit):
    end = Period(n, unit).add_to(start)
    assert end >= start
    if unit in ("months", "years"):
        months = n * (12 if unit == "years" else 1)
        assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
        assert end.day <= start.day
