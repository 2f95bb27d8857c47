"""Holes a second read of the change since 79495d4 found, each reproduced through the installed
commands on a real temp archive. Each test failed on the code it was written against (the old
xfail reason is kept above it as a comment) and passes since its fix."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

from conftest import DUE_RULES, OLD, Studio, at

FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
UNSET = "Arkisto/Unset Camera"  # no folder date, mtime 0: dated by the day it is first seen
ONE_YEAR = """\
rules:
  - {name: one-year, delete_after: 1 year}
safety:
  notice_period: 14 days
  max_fraction_per_volume: 1.0
"""


def files_in_place(studio: Studio, rel: str) -> set[str]:
    base = studio.volumes["studio"] / rel
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


# was a hole: ops.scan_instants/redate_first_seen date a shoot first seen on a distrusted clock by
#   the stand-in (the newest mtime, years old on an archive drive); `clock accept` keeps that date,
#   so a shoot with implausible mtimes first seen today is deleted years early
def test_a_new_install_on_an_old_archive_keeps_the_first_seen_date_after_clock_accept(tmp_path):
    # a new install on a right clock; the archive's newest file is two years old
    studio = Studio(tmp_path, volumes=("studio",), extra=ONE_YEAR)
    studio.init_volumes(accept_clock=False)
    today = date(2025, 6, 1)
    studio.clock_env = at(today)
    two_years_back = at(today - timedelta(days=730))["ARCHIVEKEEPER_FAKE_NOW"]
    studio.shoot("studio", "2023-06-01 Virtanen Matti", FILES,
                 mtime=datetime.fromisoformat(two_years_back).timestamp())
    studio.shoot("studio", UNSET, FILES, mtime=0)
    os.utime(studio.volumes["studio"] / "Arkisto", (OLD, OLD))  # the container folder: old too

    scanned = studio.ok("scan")
    assert "clock accept" in scanned.stderr  # as the README tells a new owner: accept it
    studio.ok("clock", "accept")
    studio.ok("plan")
    result = studio.cli("apply", env=at(today + timedelta(days=15)))
    # first seen on 2025-06-01: deletable from 2026-06-01, not a fortnight later
    assert files_in_place(studio, UNSET) == set(FILES), result.stdout
    assert studio.shoots()[("studio", UNSET)]["date"] == today.isoformat()


# was a hole: ops.scan_instants dates a shoot first seen after a real gap (machine off for a
#   summer) by the old mark; `clock accept` keeps that date, cutting the retention by the gap
def test_a_shoot_first_seen_after_a_summer_off_keeps_its_date_after_clock_accept(tmp_path):
    rules = ONE_YEAR.replace("1 year", "60 days").replace("14 days", "0 days")
    studio = Studio(tmp_path, volumes=("studio",), extra=rules)
    studio.init_volumes()  # the mark: noon today
    back = date.today() + timedelta(days=90)  # the machine was off for the summer
    studio.shoot("studio", UNSET, FILES, mtime=0)
    scanned = studio.cli("scan", env=at(back))
    assert "clock accept" in scanned.stderr
    studio.ok("clock", "accept", env=at(back))
    result = studio.cli("apply", env=at(back + timedelta(days=30)))
    # first seen on `back`: deletable 60 days after it, not 30
    assert files_in_place(studio, UNSET) == set(FILES), result.stdout


# was a hole: policy matches config holds against logs.show_path text; show_path now doubles a
#   backslash, so a config hold naming a folder with a backslash no longer reaches it
def test_a_config_hold_on_a_folder_with_a_backslash_keeps_it(tmp_path):
    rel = "2015-03-01 AC\\DC"
    studio = Studio(tmp_path, volumes=("studio",), extra=DUE_RULES + (
        "holds:\n"
        f"  - {{shoot: 'studio:{rel}', kind: legal-claim, reason: dispute}}\n"))
    studio.init_volumes()
    studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    result = studio.ok("apply")
    assert files_in_place(studio, rel) == set(FILES), result.stdout


# was a hole: ops.redate_first_seen dates the shoots a fresh index's first scan saw by the stand-in
#   when it lies ahead (one file with a wrong future mtime); `clock accept` keeps that date, so a
#   shoot first seen today is kept until that future year
def test_one_file_with_a_future_mtime_does_not_push_a_first_seen_date_decades_out(tmp_path):
    studio = Studio(tmp_path, volumes=("studio",), extra=ONE_YEAR)
    studio.init_volumes(accept_clock=False)
    today = date(2025, 6, 1)
    studio.clock_env = at(today)
    may = datetime.fromisoformat(at(date(2025, 5, 20))["ARCHIVEKEEPER_FAKE_NOW"]).timestamp()
    shoot = studio.shoot("studio", "2025-05-20 Virtanen Matti", FILES, mtime=may)
    year_2090 = datetime.fromisoformat(at(date(2090, 1, 1))["ARCHIVEKEEPER_FAKE_NOW"]).timestamp()
    os.utime(shoot / "RAW" / "IMG_1.CR2", (year_2090, year_2090))  # a camera clock set wrong
    os.utime(shoot, (may, may))
    studio.shoot("studio", UNSET, FILES, mtime=0)
    os.utime(studio.volumes["studio"] / "Arkisto", (OLD, OLD))

    assert "clock accept" in studio.ok("scan").stderr  # the clock is right: the owner accepts
    studio.ok("clock", "accept")
    studio.ok("scan")
    # first seen on 2025-06-01 on a clock the owner vouched for: deletable a year later
    assert studio.shoots()[("studio", UNSET)]["date"] == today.isoformat()
    explained = studio.json("explain", f"studio:{UNSET}")
    assert explained["date"] == "2026-06-01"
