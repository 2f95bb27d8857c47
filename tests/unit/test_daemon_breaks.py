"""Attempts to break the daemon's own decisions (archivekeeper/service/daemon.py) in-process,
with the seams tests/unit/test_daemon_decisions.py uses. A test that fails on the product as it
is is marked xfail(strict=True) with the defect it shows."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import apscheduler.schedulers.base as aps_base
import pytest
from test_daemon_decisions import (  # noqa: F401 (fixtures)
    HELSINKI,
    Job,
    log_lines,
    make_daemon,
    studio,
)


class WallClock(datetime):
    """datetime for APScheduler, whose now() the test sets (the system clock being corrected)."""

    at: datetime

    @classmethod
    def now(cls, tz=None):
        return cls.at.astimezone(tz)


def wait_queued(daemon, job: Job, timeout: float = 2.0) -> bool:
    """The scheduler's job runs `enqueue` on its thread pool: wait (with a deadline) for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job in daemon.queued():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.xfail(strict=True, reason=(
    "APScheduler keeps the absolute next fire times it computed from a clock that was ahead: "
    "once the clock is set right, no scheduled job (scan, apply, report) fires until the wall "
    "clock reaches those times again, and the daemon never recomputes them"))
def test_a_clock_set_back_while_running_does_not_stop_the_schedule(make_daemon, monkeypatch):
    monkeypatch.setattr(aps_base, "datetime", WallClock)
    right = datetime(2026, 12, 1, 10, 0, tzinfo=HELSINKI)
    WallClock.at = right + timedelta(days=365)  # booted with a clock a year ahead
    daemon = make_daemon(WallClock.at)
    daemon._schedule()
    daemon.scheduler.start(paused=True)
    WallClock.at = right + timedelta(minutes=16)  # NTP set it right; the 10:15 scan is due
    daemon.scheduler._process_jobs()
    assert wait_queued(daemon, Job("scan")), daemon.scheduler.get_job("scan").next_run_time
