"""Attempts to break the daemon's own decisions (archivekeeper/service/daemon.py) in-process,
with the seams tests/unit/test_daemon_decisions.py uses. A test that fails on the product as it
is is marked xfail(strict=True) with the defect it shows; those found so far are fixed, each
test saying what it was."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import apscheduler.schedulers.base as aps_base
import test_daemon_decisions as decisions
from test_daemon_decisions import HELSINKI, POLL_EVERY, Job

studio, log_lines, make_daemon = decisions.studio, decisions.log_lines, decisions.make_daemon


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


# was (found by the daemon breaker, failed before the fix): APScheduler kept the next fire times
# it computed on a clock a year ahead; once the clock was set right nothing fired for a year
def test_a_clock_set_back_while_running_does_not_stop_the_schedule(make_daemon, monkeypatch):
    monkeypatch.setattr(aps_base, "datetime", WallClock)
    right = datetime(2026, 12, 1, 10, 0, tzinfo=HELSINKI)
    WallClock.at = right + timedelta(days=365)  # booted with a clock a year ahead
    daemon = make_daemon(WallClock.at)
    daemon._schedule()
    daemon.scheduler.start(paused=True)
    WallClock.at = right + timedelta(minutes=16)  # NTP set it right
    daemon.session._clock = decisions.FixedClock(WallClock.at)
    daemon.tick()  # the main loop notices the next fire times lie a year out
    assert daemon.scheduler.get_job("scan").next_run_time == right + timedelta(minutes=75)
    WallClock.at = right + timedelta(minutes=76)  # the 11:15 scan is due
    daemon.scheduler.resume()  # its thread processes the jobs due on WallClock
    assert wait_queued(daemon, Job("scan")), daemon.scheduler.get_job("scan").next_run_time


# was (failed before the fix): a file-event rescan while the marker was away for an instant the
# 2 s probe did not see left the volume offline in the index and its new shoot unindexed
def test_a_folder_rescan_during_a_marker_blip_leaves_no_stale_offline(make_daemon, studio,
                                                                      log_lines):
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    studio.shoot("studio", "2026-11-01 Vanha Asiakas")
    daemon.run_job(Job("scan", why="start"))
    studio.shoot("studio", "2026-11-30 Uusi Asiakas")
    clock = daemon.monotonic
    daemon.hints.mark("studio", b"2026-11-30 Uusi Asiakas", clock.now)
    clock.now += daemon.session.config.daemon.debounce
    daemon.tick()
    marker = studio.volumes["studio"] / ".archivekeeper"
    away = studio.root / "marker-away"
    marker.rename(away)  # the marker gone for an instant, no probe in between
    daemon.run_job(daemon._take_job())
    away.rename(marker)
    assert log_lines("job_finished")[-1]["offline"] == ["studio"]
    for _ in range(3):  # 6 s of the main loop
        clock.now += POLL_EVERY
        daemon.tick()
        while (queued := daemon._take_job()) is not None:
            daemon.run_job(queued)
    shoots = {bytes(row["path"]): row["state"] for row in daemon.session.store.db.execute(
        "SELECT path, state FROM shoots WHERE volume = 'studio'")}
    assert shoots == {b"2026-11-01 Vanha Asiakas": "online", b"2026-11-30 Uusi Asiakas": "online"}


# was (failed before the fix): a reload during a job cleared the volume changes the job saw, so
# a drive plugged in meanwhile never got its apply
def test_a_drive_plugged_in_during_a_job_with_a_reload_pending_still_gets_its_apply(
        make_daemon, studio):
    marker = studio.volumes["backup-1"] / ".archivekeeper"
    away = studio.root / "marker-away"
    marker.rename(away)  # unplugged at start
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    away.rename(marker)  # plugged in while a long job runs: its progress probes the volumes
    daemon.monotonic.now += POLL_EVERY
    daemon.poll_volumes()
    daemon.reload_requested = True  # and `systemctl reload` during the same job
    daemon.tick()  # the job ended: the main loop's next turn
    assert Job("apply", volume="backup-1") in daemon.queued(), daemon.queued()


def due_config(studio, more: str = "") -> None:
    """Shoots older than five years due at once (no notice, no fraction limit)."""
    studio.write_config(decisions.CONFIG.replace("safety:\n", "safety:\n  notice_period: 0 days\n"
                                             "  max_fraction_per_volume: 1.0\n")
                        + "rules:\n  - {name: old-shoots, delete_after: 5 years}\n" + more)


def test_a_drive_apply_on_a_distrusted_clock_is_refused_logged_and_the_daemon_goes_on(
        make_daemon, studio, log_lines):
    from conftest import OLD

    due_config(studio)
    shoot = studio.shoot("backup-1", "2015-01-01 Vanha Asiakas", mtime=OLD)
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("scan", why="start"))
    daemon.session._clock = decisions.FixedClock(datetime(2031, 1, 1, 10, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("apply", volume="backup-1", why="volume_online"))
    [failed] = log_lines("job_failed")
    assert failed["code"] == 3 and "clock" in failed["error"]
    assert sorted(p.name for p in shoot.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]
    daemon.session._clock = decisions.FixedClock(datetime(2026, 12, 8, 11, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("apply", volume="backup-1", why="volume_online"))
    assert log_lines("job_finished")[-1]["moved_files"] == 2  # a trusted clock: it goes on


def test_a_hold_added_from_the_cli_during_the_daemons_apply_keeps_the_next_shoot(
        make_daemon, studio, log_lines):
    from conftest import OLD

    due_config(studio)
    first = studio.shoot("studio", "2015-01-01 Ensimmainen", mtime=OLD)
    second = studio.shoot("studio", "2015-01-02 Toinen", mtime=OLD)
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("scan", why="start"))
    asked, added = [], []
    real = daemon.should_stop

    def should_stop():  # asked before each file operation
        asked.append(1)
        if len(asked) == 2:  # before the first shoot's second file
            result = studio.cli("hold", "add", "--customer", "Toinen", "--kind", "invoice",
                                "--reason", "open invoice", "--force")
            added.append(result.returncode)
        return real()

    daemon.should_stop = should_stop
    daemon.run_job(Job("apply", volume="studio", why="volume_online"))
    assert added == [0]
    assert not first.exists() or not any(p.is_file() for p in first.rglob("*"))
    assert sorted(p.name for p in second.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]
    assert log_lines("job_finished")[-1]["moved_files"] == 2


# was (failed before the fix): a hold added to the config and reloaded (SIGHUP) while an apply
# ran did not protect the shoots the run had not reached
def test_a_config_hold_reloaded_during_the_daemons_apply_keeps_the_next_shoot(
        make_daemon, studio, log_lines):
    from conftest import OLD

    due_config(studio)
    first = studio.shoot("studio", "2015-01-01 Ensimmainen", mtime=OLD)
    second = studio.shoot("studio", "2015-01-02 Toinen", mtime=OLD)
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("scan", why="start"))
    asked = []
    real = daemon.should_stop

    def should_stop():  # asked before each file operation
        asked.append(1)
        if len(asked) == 2:  # before the first shoot's second file: the owner edits, reloads
            due_config(studio, "holds:\n  - {customer: Toinen, kind: invoice, reason: open}\n")
            daemon.reload_requested = True  # what SIGHUP's handler does
        return real()

    daemon.should_stop = should_stop
    daemon.run_job(Job("apply", volume="studio", why="volume_online"))
    assert not first.exists() or not any(p.is_file() for p in first.rglob("*"))
    assert sorted(p.name for p in second.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]


def test_a_config_hold_reloaded_between_jobs_keeps_its_shoot_from_the_next_apply(
        make_daemon, studio, log_lines):
    from conftest import OLD

    due_config(studio)
    shoot = studio.shoot("studio", "2015-01-02 Toinen", mtime=OLD)
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    daemon.run_job(Job("scan", why="start"))
    due_config(studio, "holds:\n  - {customer: Toinen, kind: invoice, reason: open}\n")
    daemon.reload_requested = True  # SIGHUP
    daemon.tick()
    assert log_lines("config_reloaded")
    daemon.run_job(Job("apply", volume="studio", why="volume_online"))
    assert sorted(p.name for p in shoot.rglob("*") if p.is_file()) == ["IMG_1.CR2", "IMG_1.jpg"]
    assert log_lines("job_finished")[-1]["moved_files"] == 0


# was: a scheduled apply or a job's last success recorded on a clock a year ahead held the
#   daily apply (and so retention) and the catch-up back until that day came round again
def test_days_recorded_on_a_clock_that_was_ahead_hold_nothing_back(make_daemon):
    now = datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI)
    daemon = make_daemon(now)
    ahead = now + timedelta(days=365)
    decisions.set_meta(daemon, apply_day=ahead.date().isoformat(), last_report=ahead,
                       last_scan=ahead, last_full_scan=ahead, last_apply=ahead)
    assert daemon.apply_allowed()
    daemon.catch_up()
    assert {job.name for job in daemon.queued()} >= {"report", "apply", "scan", "full_scan"}
    decisions.set_meta(daemon, apply_day=now.date().isoformat())
    assert not daemon.apply_allowed()  # today's apply stays once a day


# was (found in review): a config reloaded during an apply was read once; a second SIGHUP (the
#   owner fixed a typo) in the same run was not read, so its hold did not protect
def test_each_sighup_during_an_apply_reads_the_config_again(make_daemon, studio):
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    hold = "holds:\n  - {customer: Toinen, kind: invoice, reason: open, until: 2099-%s-01}\n"
    due_config(studio, hold % "13")  # a typo: no such month
    daemon.reload_requested, daemon._hups = True, 1
    assert daemon._reloaded_holds() == ()
    due_config(studio, hold % "12")
    daemon._hups = 2  # the owner reloads again
    assert [h.customer_key for h in daemon._reloaded_holds()] == ["toinen"]


# was (found in review): catch-up judged past fire times by now's fixed UTC offset, so in the
#   week after a DST change a weekly report that did run counted as missed and was sent again
def test_catch_up_across_a_dst_change_does_not_repeat_a_run_that_happened(
        make_daemon, monkeypatch):
    from datetime import timezone

    monkeypatch.setenv("TZ", "Europe/Helsinki")
    now = datetime(2026, 10, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # as the system
    daemon = make_daemon(now)  # clock gives it: a fixed offset, winter time since 04:00
    ran = datetime(2026, 10, 19, 7, 0, 30, tzinfo=timezone(timedelta(hours=3)))  # summer time
    decisions.set_meta(daemon, last_report=ran, last_scan=now, last_full_scan=now,
                       last_apply=now)
    daemon.catch_up()
    assert "report" not in {job.name for job in daemon.queued()}
