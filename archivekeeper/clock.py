"""The only place that reads the wall clock. Everything else takes `now` as a parameter.

ARCHIVEKEEPER_FAKE_NOW (ISO 8601, e.g. 2027-06-01T04:30:00+03:00) pins the clock for end-to-end
tests of time-dependent behaviour (notice periods, the clock guard) through the real CLI.
ARCHIVEKEEPER_FAKE_BOOT ("BOOT_ID:SECONDS") stands in for the boot id and the boot-time clock
beside it; a pinned clock without it has no boot evidence.
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime


class Instant(datetime):
    """An instant SystemClock.now() returned, with the boot sample read together with it (an
    attribute, not a cache beside it: no other thread's reads of the clock can lose it). An
    instant computed from it (arithmetic, astimezone) has none."""

    boot: tuple[str, float] | None = None


class SystemClock:
    def now(self) -> datetime:
        """Return the current local time, timezone-aware."""
        fake = os.environ.get("ARCHIVEKEEPER_FAKE_NOW")
        if fake:
            pinned = datetime.fromisoformat(fake)
            at = pinned if pinned.tzinfo else pinned.astimezone()
        else:
            at = datetime.now().astimezone()
        instant = Instant.combine(at.date(), at.timetz())
        instant.boot = _read_boot()
        return instant

    def today(self) -> date:
        return self.now().date()


def _read_boot() -> tuple[str, float] | None:
    """(this boot's id, seconds since boot counting suspend), or None when unknown."""
    if os.environ.get("ARCHIVEKEEPER_FAKE_NOW"):
        fake = os.environ.get("ARCHIVEKEEPER_FAKE_BOOT", "")
        boot, _, seconds = fake.rpartition(":")
        try:
            return (boot, float(seconds)) if boot else None
        except ValueError:  # a malformed test hook: no boot evidence
            return None
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return boot, time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, AttributeError):
        return None


def boot_of(now: datetime) -> tuple[str, float] | None:
    """The boot id and boot-time clock read together with `now` by SystemClock.now(): how
    much time really passed between two instants of the same boot, whatever the wall clock
    did. None for an instant it did not return: a FixedClock's (the demo's later days, tests)
    are judged without it."""
    return getattr(now, "boot", None)


def filesystem_now_ns() -> int:
    """The kernel's present time, as it stamps file mtimes: only to tell a folder changed
    during a scan (racy mtimes), never for a date. Not pinned by ARCHIVEKEEPER_FAKE_NOW, since
    the kernel does not pin the mtimes it compares with."""
    return time.time_ns()


class FixedClock:
    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at

    def today(self) -> date:
        return self.at.date()
