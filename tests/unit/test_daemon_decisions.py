"""The daemon's own decisions (archivekeeper/service/daemon.py), in-process over a real studio
and index, with a fixed clock and a monotonic clock turned by hand: catch-up of missed runs, the
scheduled apply at most once per local day (across a DST change) while a drive's apply is not
held back, debounce of file events, and the fallback to quick scans when file events cannot be
trusted. The loop, signals and sd_notify are tested end to end (tests/e2e/test_daemon.py)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import Studio

from archivekeeper import logs
from archivekeeper.clock import FixedClock
from archivekeeper.service.daemon import FALLBACK_EVERY, LOCK_RETRY, POLL_EVERY, Daemon, Job
from archivekeeper.session import Session

HELSINKI = ZoneInfo("Europe/Helsinki")
CONFIG = """\
schedule:
  scan: "15 * * * *"
  full_scan: "0 2 * * *"
  apply: "30 3 * * *"
  report: "0 7 * * mon"
safety:
  max_clock_jump: 1000 days   # the dates below lie up to a year after the studio's clock mark
"""


class Monotonic:
    """A monotonic clock the test turns."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWatcher:
    """Stands for watch.Watcher: the daemon only reads `degraded` and `watching`."""

    def __init__(self):
        self.degraded: str | None = None
        self.watching: set[str] = set()

    def start(self, statuses):
        self.watching = {s.name for s in statuses if s.online}

    update = start

    def stop(self):
        self.watching = set()


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path, volumes=("studio", "backup-1"), removable=("backup-1",), extra=CONFIG)
    s.init_volumes()
    return s


@pytest.fixture
def log_lines(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    stream = io.StringIO()
    logs.configure(stream=stream, json=True)

    def events(name: str | None = None) -> list[dict]:
        found = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [e for e in found if name is None or e["event"] == name]

    return events


@pytest.fixture
def make_daemon(studio, log_lines):
    made = []

    def make(now: datetime) -> Daemon:
        daemon = Daemon(Session(str(studio.config), FixedClock(now)), monotonic=Monotonic(),
                        make_watcher=FakeWatcher)
        made.append(daemon)
        daemon.start_watching()
        return daemon

    yield make
    for daemon in made:
        daemon.close()
        daemon.session.close()


def set_meta(daemon: Daemon, **values: datetime | str) -> None:
    store = daemon.session.store
    with store.transaction():
        for key, value in values.items():
            text = value.isoformat() if isinstance(value, datetime) else value
            store.set_meta(key.replace("last_", "job_last:"), text)


def test_catch_up_queues_once_each_job_whose_fire_time_passed_since_its_last_success(
        make_daemon, log_lines, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Helsinki")  # the schedules' local time
    now = datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI)  # a Tuesday
    daemon = make_daemon(now)
    set_meta(daemon,
             last_scan=datetime(2026, 12, 8, 9, 20, tzinfo=HELSINKI),  # after the 09:15 fire
             last_full_scan=datetime(2026, 12, 7, 2, 0, 5, tzinfo=HELSINKI),  # missed 02:00
             last_apply=datetime(2026, 12, 8, 3, 30, 1, tzinfo=HELSINKI),
             last_report=datetime(2026, 11, 30, 7, 0, 2, tzinfo=HELSINKI))  # missed Monday's
    daemon.catch_up()
    assert daemon.queued() == [Job("full_scan"), Job("report")]
    assert all(job.why == "catch_up" for job in daemon.queued())
    caught = {e["job"]: e["missed"] for e in log_lines("catch_up")}
    assert caught == {"full_scan": "2026-12-08T02:00:00+02:00",
                      "report": "2026-12-07T07:00:00+02:00"}


def test_the_scheduled_apply_runs_once_per_local_day_across_dst_but_a_drive_apply_still_runs(
        make_daemon, log_lines):
    # 2027-10-31, Helsinki: 03:30 comes twice (summer time ends at 04:00, back to 03:00)
    first = datetime(2027, 10, 31, 3, 30, tzinfo=HELSINKI)
    second = first.replace(fold=1)
    daemon = make_daemon(first)
    daemon.run_job(Job("apply"))
    assert [e["job"] for e in log_lines("job_finished")] == ["apply"]
    assert daemon.session.store.get_meta("apply_day") == "2027-10-31"

    daemon.session._clock = FixedClock(second)  # an hour later, the same wall-clock time
    daemon.run_job(Job("apply"))
    skipped = log_lines("job_skipped")
    assert [e["job"] for e in skipped] == ["apply"] and "once per local day" in skipped[0][
        "reason"]
    assert len(log_lines("job_started")) == 1

    daemon.run_job(Job("apply", volume="backup-1", why="volume_online"))
    assert [e.get("volume") for e in log_lines("job_finished")] == [None, "backup-1"]

    daemon.session._clock = FixedClock(datetime(2027, 11, 1, 3, 30, tzinfo=HELSINKI))
    daemon.run_job(Job("apply"))
    assert len(log_lines("job_finished")) == 3  # the next local day it runs again


def test_file_events_are_scanned_only_after_debounce_seconds_of_quiet(make_daemon):
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    clock = daemon.monotonic
    debounce = daemon.session.config.daemon.debounce
    daemon.hints.mark("studio", b"2024-05-12 Anna", clock.now)
    clock.now += debounce / 2
    daemon.hints.mark("studio", b"2024-05-12 Anna", clock.now)  # still busy
    daemon.tick()
    clock.now += debounce - 0.1
    daemon.tick()
    assert daemon.queued() == []
    clock.now += 0.1
    daemon.tick()
    assert daemon.queued() == [Job("scan", folders=(("studio", (b"2024-05-12 Anna",)),))]
    assert daemon.queued()[0].why == "file_events"


def test_when_the_watcher_degrades_it_is_logged_once_and_quick_scans_take_over(
        make_daemon, log_lines):
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    clock = daemon.monotonic
    daemon.tick()
    assert daemon.queued() == [] and log_lines("watch_degraded") == []
    reason = ("the file watcher of volume studio stopped (its thread died): falling back to "
              "periodic quick scans")
    daemon.watcher.degraded = reason
    clock.now += POLL_EVERY
    daemon.tick()
    assert daemon.queued() == [Job("scan")]  # events were lost: a scan at once
    assert daemon.queued()[0].why == "watch_degraded"
    assert daemon._take_job() is not None
    for _ in range(3):
        clock.now += FALLBACK_EVERY / 2
        daemon.tick()
    assert daemon.queued() == [Job("scan")]  # one scan per FALLBACK_EVERY seconds
    degraded = log_lines("watch_degraded")
    assert len(degraded) == 1 and degraded[0]["reason"] == reason


# was: a job that found the CLI holding the run lock was skipped until its next time, so a
#   drive plugged in while the owner ran a command got no scan nor apply (nor its pending
#   erasure) until it was plugged in again, and a skipped daily apply waited a day
@pytest.mark.parametrize("job", [Job("apply", volume="backup-1", why="volume_online"),
                                 Job("apply", why="schedule")])
def test_a_job_skipped_while_the_cli_holds_the_run_lock_runs_again_soon(
        make_daemon, log_lines, studio, monkeypatch, job):
    import fcntl

    monkeypatch.setenv("ARCHIVEKEEPER_LOCK_WAIT", "0")
    daemon = make_daemon(datetime(2026, 12, 8, 10, 0, tzinfo=HELSINKI))
    with open(studio.state / "lock", "a") as held:  # a CLI run: another open file, same lock
        fcntl.flock(held, fcntl.LOCK_EX)
        daemon.run_job(job)
        [skipped] = log_lines("job_skipped")
        assert "again in 5 minutes" in skipped["reason"]
        daemon.tick()
        assert daemon.queued() == []
        daemon.monotonic.now += LOCK_RETRY - 1
        daemon.tick()
        assert daemon.queued() == []
        assert 0 < daemon._timeout() <= 1  # the loop wakes for it, not only at its next poll
        fcntl.flock(held, fcntl.LOCK_UN)
    daemon.monotonic.now += 1
    daemon.tick()
    assert daemon.queued() == [job] and daemon.queued()[0].why == job.why
    daemon.run_job(daemon._take_job())
    assert [e["job"] for e in log_lines("job_finished")] == ["apply"]
    daemon.monotonic.now += 10 * LOCK_RETRY
    daemon.tick()
    assert daemon.queued() == []  # done: not again
