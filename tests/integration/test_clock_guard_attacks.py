"""Attacks on the clock guard through the installed commands, each a hole the first version
(383f285) left open and a test that failed on it: a wrong clock that becomes the mark, a date
recorded on a distrusted clock that later cuts a retention period, a half-done purge finished
before its trash expired, and an earliest deletion earlier than the day apply can delete."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from conftest import DUE_RULES, OLD, Studio, at

TODAY = date.today()  # studios run on noon today unless a test pins another clock
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
DUE = "2015-03-01 Mäkinen Anna"  # due at once under the 5-year rule
UNSET = "Arkisto/Unset Camera"  # no folder date, mtime 0: dated by the day it is first seen
NOTICE_RULES = DUE_RULES.replace("notice_period: 0 days", "notice_period: 14 days")
YEAR_2000 = date(2000, 1, 1)  # a dead CMOS battery
YEAR_2061 = date(2061, 3, 1)  # a bad NTP answer


def files_in_place(studio: Studio, rel: str) -> set[str]:
    base = studio.volumes["studio"] / rel
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def trashed(studio: Studio) -> list[str]:
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    return sorted(str(p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())


def fresh_install(tmp_path, rules: str = NOTICE_RULES) -> tuple[Studio, str]:
    """A new install (no clock accepted): a 2015 shoot due at once and a shoot a working
    studio made ten days ago. Return the studio and the recent shoot's folder."""
    studio = Studio(tmp_path, volumes=("studio",), extra=rules)
    studio.init_volumes(accept_clock=False)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    recent = f"{(TODAY - timedelta(days=10)).isoformat()} Laine Tuula"
    studio.shoot("studio", recent, FILES, mtime=time.time() - 10 * 86400)
    return studio, recent


# was: on an index with nothing indexed yet the clock is trusted, and apply/trash purge record a
#   run whose start clock_mark() then takes as the mark: a clock decades ahead becomes trusted
#   before any evidence
@pytest.mark.parametrize("first", [["apply"], ["trash", "purge"]])
def test_a_command_before_the_first_scan_does_not_make_a_wrong_clock_trusted(tmp_path, first):
    studio, recent = fresh_install(tmp_path)
    studio.cli(*first, env=at(YEAR_2061))  # nothing indexed: nothing to do either way
    studio.cli("scan", env=at(YEAR_2061))
    studio.cli("plan", env=at(YEAR_2061))
    result = studio.cli("apply", env=at(YEAR_2061 + timedelta(days=15)))
    # the 2026 shoot is not due until 2031: 2061 must be judged a jump from its mtime
    assert files_in_place(studio, recent) == set(FILES), result.stdout
    assert files_in_place(studio, DUE) == set(FILES)
    assert result.returncode == 3


# was: a scan on a clock behind the mark stores first_seen at the mark but dates a shoot with
#   implausible mtimes by the wrong clock's today (scanner `today`), and quick scans keep that date
def test_a_shoot_first_seen_on_a_clock_behind_the_mark_keeps_its_retention(studio):
    studio.write_config(NOTICE_RULES)  # the studio fixture accepted noon today: the mark
    studio.shoot("studio", UNSET, FILES, mtime=0)
    studio.cli("scan", env=at(YEAR_2000))  # distrusted, it says so, and still indexes
    studio.ok("scan")  # the clock is right again
    studio.ok("plan")
    result = studio.cli("apply", env=at(TODAY + timedelta(days=14)))
    # first seen today (or at the mark): deletable in five years, not in fourteen days
    assert files_in_place(studio, UNSET) == set(FILES), result.stdout
    assert studio.shoots()[("studio", UNSET)]["date"] >= TODAY.isoformat()


# was: on a fresh index the scan has no reference before it indexes, so first_seen and the date of
#   a shoot with implausible mtimes come from a dead-CMOS clock and stay after the clock is set
#   right
def test_a_first_scan_on_a_dead_cmos_clock_does_not_date_shoots_in_the_past(tmp_path):
    studio, _ = fresh_install(tmp_path)
    studio.shoot("studio", UNSET, FILES, mtime=0)
    scanned = studio.cli("scan", env=at(YEAR_2000))
    assert "clock accept" in scanned.stderr  # the guard saw the clock was wrong
    studio.ok("scan")  # clock set right: the recent shoot's mtime vouches for it
    studio.ok("plan")
    result = studio.cli("apply", env=at(TODAY + timedelta(days=14)))
    assert files_in_place(studio, UNSET) == set(FILES), result.stdout
    assert studio.shoots()[("studio", UNSET)]["date"] >= TODAY.isoformat()


# was: a scan on a clock decades ahead (distrusted) stores first_seen and the date of a shoot with
#   implausible mtimes in 2061: its maximum retention is silently not enforced for decades
def test_a_scan_on_a_clock_decades_ahead_does_not_push_a_retention_date_decades_out(studio):
    studio.write_config(NOTICE_RULES)
    studio.shoot("studio", UNSET, FILES, mtime=0)
    scanned = studio.cli("scan", env=at(YEAR_2061))
    assert "safety.max_clock_jump" in scanned.stderr
    studio.ok("scan")
    studio.ok("scan", "--full")
    assert studio.shoots()[("studio", UNSET)]["date"] <= TODAY.isoformat()


# was: a purge killed on a clock ahead (within max_clock_jump) never moves the mark (note_time runs
#   at the end), and recovery never checks purge_after: on the corrected clock the next scan
#   finishes purging trash whose retention has 29 days to run
def test_a_half_done_purge_on_a_clock_ahead_is_not_finished_once_the_clock_is_set_right(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout  # purge after TODAY + 30 days
    killed = studio.cli("trash", "purge",
                        env=at(TODAY + timedelta(days=35), ARCHIVEKEEPER_CRASH_AFTER=1))
    assert killed.returncode < 0 and len(trashed(studio)) == 1
    studio.cli("scan", env=at(TODAY + timedelta(days=1)))  # NTP set the clock right
    assert len(trashed(studio)) == 1  # still restorable for 29 days


# was: recovery finishes a half-done purge without checking the group's purge_after against the
#   (now accepted) clock
def test_recovery_after_clock_accept_does_not_purge_trash_before_it_expires(studio):
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    assert "moved 2 files" in studio.ok("apply").stdout
    killed = studio.cli("trash", "purge",
                        env=at(TODAY + timedelta(days=35), ARCHIVEKEEPER_CRASH_AFTER=1))
    assert killed.returncode < 0 and len(trashed(studio)) == 1
    right = at(TODAY + timedelta(days=1))
    studio.ok("clock", "accept", env=right)  # the owner: "the clock is right now"
    assert studio.cli("trash", "restore", "1", env=right).returncode in (0, 1)
    assert len(trashed(studio)) + len(files_in_place(studio, DUE)) == 1


# was: explain's earliest_deletion of a held file whose rule date lies beyond the notice window is
#   its own date: the notice that can only start when the hold ends is left out
def test_explain_earliest_deletion_of_a_held_shoot_is_not_before_apply_can_delete_it(studio):
    studio.write_config(NOTICE_RULES)
    shot = TODAY.replace(year=TODAY.year - 5) + timedelta(days=60)  # due in 60 days
    rel = f"{shot.isoformat()} Nieminen Ilkka"
    studio.shoot("studio", rel, FILES, mtime=OLD)
    studio.ok("scan")
    hold_end = TODAY + timedelta(days=90)
    studio.ok("hold", "add", "--customer", "Nieminen Ilkka", "--kind", "invoice",
              "--reason", "open invoice", "--until", hold_end.isoformat())
    earliest = date.fromisoformat(studio.json("explain", f"studio:{rel}")["earliest_deletion"])
    studio.ok("plan", env=at(TODAY + timedelta(days=50)))  # a studio plans every day
    studio.ok("plan", env=at(hold_end + timedelta(days=1)))  # the first day it is not held
    moved_on = None
    for day in sorted({earliest, hold_end + timedelta(days=15)}):
        if "moved 2 files" in studio.ok("apply", env=at(day)).stdout:
            moved_on = day
            break
    assert moved_on == earliest  # explain said the day it actually went


# was: plan on a clock behind the mark computes earliest_deletion from the wrong today: a date
#   before the mark, when nothing can be deleted
def test_plan_on_a_clock_behind_the_mark_gives_no_earliest_deletion_before_the_mark(studio):
    studio.write_config(NOTICE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    item = studio.json("plan", env=at(TODAY - timedelta(days=20)))["items"][0]
    assert item["announced_at"] is None
    earliest = item["earliest_deletion"]
    assert earliest is None or earliest >= (TODAY + timedelta(days=14)).isoformat()


# was: a scan judges 'folder date in the future' by the distrusted clock: on a clock gone back
#   every dated shoot is unrecognised, goes missing, and full scans drop it from the index
def test_full_scans_on_a_clock_behind_the_mark_do_not_drop_dated_shoots(studio):
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan")
    for _ in range(3):  # the daemon's nightly full scan, three nights on a dead CMOS battery
        studio.cli("scan", "--full", env=at(YEAR_2000))
    shoot = studio.shoots().get(("studio", DUE))
    assert shoot is not None and shoot["state"] == "online"


# was: scans write in short transactions, so one killed part-way has stored shoots first seen on
#   its clock but never reached after_scan; on a fresh index that clock had nothing to be judged
#   by, and once the clock is right the next scan took those dates as settled
def test_a_killed_first_scan_on_a_dead_cmos_clock_does_not_date_shoots_in_the_past(tmp_path):
    studio, _ = fresh_install(tmp_path)
    studio.shoot("studio", UNSET, FILES, mtime=0)
    killed = studio.cli("scan", env=at(YEAR_2000, ARCHIVEKEEPER_SCAN_CRASH_AFTER=1))
    assert killed.returncode == -9, killed.stderr
    assert ("studio", UNSET) in studio.shoots()  # written before the kill
    studio.ok("scan")  # clock set right
    studio.ok("plan")
    result = studio.cli("apply", env=at(TODAY + timedelta(days=14)))
    assert files_in_place(studio, UNSET) == set(FILES), result.stdout
    assert studio.shoots()[("studio", UNSET)]["date"] >= TODAY.isoformat()
