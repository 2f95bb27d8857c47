"""The clock guard measured against the machine's own running time: a forward jump smaller than
safety.max_clock_jump (60 days) but longer than the notice period or the trash retention, made
while the machine ran (a bad NTP answer), must not skip either. Since the same boot, the kernel's
boot-time clock (which counts suspend) says how long really passed; after a reboot nothing
does, and max_clock_jump alone judges.

ARCHIVEKEEPER_FAKE_BOOT ("BOOT_ID:SECONDS") stands in for the boot id and the boot-time clock
wherever ARCHIVEKEEPER_FAKE_NOW pins the wall clock; without it a pinned clock has no boot
evidence (every other test)."""

from __future__ import annotations

import os
import subprocess
from datetime import date, datetime, timedelta

from conftest import BIN, DUE_RULES, OLD, at

from archivekeeper import ops
from archivekeeper.session import Session

DAY = 86400
FILES = {"JPEG/IMG_1.jpg": b"j" * 100, "RAW/IMG_1.CR2": b"r" * 300}
DUE = "2015-03-01 Mäkinen Anna"  # due at once under the 5-year rule
NOTICE_RULES = DUE_RULES.replace("notice_period: 0 days", "notice_period: 14 days")
START = date.today()
STEP = timedelta(minutes=50)


def when(days: int, boot: str, seconds: float) -> dict:
    """13:00 (an hour after the studio's set-up clock), `days` later, at `seconds` of `boot`."""
    return at(START + timedelta(days=days), 13, ARCHIVEKEEPER_FAKE_BOOT=f"{boot}:{seconds}")


def trashed(studio) -> list[str]:
    trash = studio.volumes["studio"] / ".archivekeeper" / "trash"
    return sorted(str(p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())


def trash_one_shoot(studio) -> None:
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan", env=when(0, "b1", 1000))
    assert "moved 2 files" in studio.ok("apply", env=when(0, "b1", 1060)).stdout
    assert len(trashed(studio)) == 2


# was: a jump of 40 days in one minute of running time is believed (it is under 60 days), and
#   the purge deletes trash made the same real minute: trash_retention (30 days) skipped
def test_a_jump_while_the_machine_ran_does_not_purge_fresh_trash(studio):
    trash_one_shoot(studio)
    result = studio.cli("trash", "purge", env=when(40, "b1", 1120))
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "more than this machine has run" in result.stderr
    assert len(trashed(studio)) == 2
    assert studio.cli("audit", "verify").returncode == 0


# was: the same jump skips the notice period: announced today, moved 20 days "later"
def test_a_jump_while_the_machine_ran_does_not_skip_the_notice_period(studio):
    studio.write_config(NOTICE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    studio.ok("scan", env=when(0, "b1", 1000))
    studio.ok("plan", env=when(0, "b1", 1010))  # announced: due in 14 days
    result = studio.cli("apply", env=when(20, "b1", 1100))
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert trashed(studio) == []
    plan = studio.cli("plan", env=when(20, "b1", 1110))
    assert "more than this machine has run" in plan.stdout + plan.stderr


def test_after_clock_accept_the_jumped_clock_is_trusted_again(studio):
    trash_one_shoot(studio)
    assert studio.cli("trash", "purge", env=when(40, "b1", 1120)).returncode == 3
    studio.ok("clock", "accept", env=when(40, "b1", 1130))
    assert studio.cli("trash", "purge", env=when(40, "b1", 1140)).returncode == 0
    assert trashed(studio) == []  # 40 days after the move, by the accepted clock


def test_time_the_machine_really_ran_is_believed(studio):
    trash_one_shoot(studio)
    result = studio.cli("trash", "purge", env=when(40, "b1", 1060 + 40 * DAY))
    assert result.returncode == 0, result.stderr
    assert trashed(studio) == []


def test_after_a_reboot_max_clock_jump_alone_judges(studio):
    """Nothing measures the time the machine was off: a studio machine off for a month is
    believed, as before (up to max_clock_jump)."""
    trash_one_shoot(studio)
    result = studio.cli("trash", "purge", env=when(40, "b2", 30))
    assert result.returncode == 0, result.stderr
    assert trashed(studio) == []


def test_small_differences_between_the_two_clocks_are_tolerated(studio):
    trash_one_shoot(studio)
    # NTP slewing, a command's own run time: minutes either way never distrust the clock
    assert studio.cli("scan", env=when(0, "b1", 1060 - 200)).returncode == 0
    result = studio.cli("trash", "purge", env=when(1, "b1", 1060 + DAY - 240))
    assert result.returncode == 0, result.stderr
    assert len(trashed(studio)) == 2  # not expired: kept, and not refused


def test_the_real_clocks_do_not_distrust_each_other(studio):
    """No pinned clock at all: the wall clock and the kernel's boot-time clock of this
    machine, read by the installed command, agree."""
    studio.write_config(DUE_RULES)
    studio.shoot("studio", DUE, FILES, mtime=OLD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVEKEEPER_FAKE")}
    for args in (["clock", "accept"], ["scan"], ["apply"], ["trash", "purge"]):
        ran = subprocess.run([str(BIN), "--config", str(studio.config), *args],
                             capture_output=True, text=True, env=env, timeout=120)
        assert ran.returncode == 0, (args, ran.stdout, ran.stderr)
    assert len(trashed(studio)) == 2


# was: the boot sample of an instant sat in a cache of the last 256 instants the clock returned;
#   the daemon's watcher thread reads the clock for each file event (and the audit log for each
#   record), so a burst of them between a job's reading of now and its clock check lost it, and
#   the check judged a 40-day jump by max_clock_jump alone: believed, and made the mark
def test_an_instant_keeps_its_boot_sample_however_many_are_read_after_it(studio, monkeypatch):
    trash_one_shoot(studio)
    for name, value in when(40, "b1", 1120).items():
        monkeypatch.setenv(name, value)
    session = Session(str(studio.config))
    try:
        now = session.clock.now()  # a job's now
        for second in range(1, 301):  # the watcher thread: one read per file event
            monkeypatch.setenv("ARCHIVEKEEPER_FAKE_NOW",
                               (now + timedelta(seconds=second)).isoformat())
            session.clock.now()
        check = ops.check_clock(session.config, session.store, now)
    finally:
        session.close()
    assert not check.trusted
    assert "more than this machine has run" in check.refusals[0]


# was: each command that noted its time took the boot sample read with it as its new base, so
#   the hour's tolerance was granted afresh each time: a clock set forward 50 minutes at a time,
#   a scan noting it after each step, ran ahead of the machine's running time without limit
#   (about 900 such steps skip the trash retention, 400 the notice period)
def test_steps_forward_each_within_the_tolerance_do_not_add_up_unnoticed(studio):
    trash_one_shoot(studio)
    start = datetime.fromisoformat(when(0, "b1", 0)["ARCHIVEKEEPER_FAKE_NOW"])
    for n in range(1, 4):  # 150 minutes forward in 3 minutes of running time
        studio.cli("scan", env={"ARCHIVEKEEPER_FAKE_NOW": (start + n * STEP).isoformat(),
                                "ARCHIVEKEEPER_FAKE_BOOT": f"b1:{1060 + n * 60}"})
    result = studio.cli("trash", "purge", env={
        "ARCHIVEKEEPER_FAKE_NOW": (start + 3 * STEP).isoformat(),
        "ARCHIVEKEEPER_FAKE_BOOT": "b1:1250"})
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "more than this machine has run" in result.stderr
