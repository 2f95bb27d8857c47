"""`archivekeeper daemon`: the service door beside the CLI (docs/daemon.md).

One main thread does all the work, one job at a time: the scheduler's thread and the file
watcher's threads only queue what should happen, so scan, apply and purge never overlap and no
decision or file operation is made off the main thread. Every job takes the run lock the CLI
takes (Session.lock). The main loop sleeps in poll() on a wake-up pipe (signals, queued jobs) and
/proc/self/mountinfo, waking at least every POLL_EVERY seconds to probe the volumes.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from archivekeeper import logs
from archivekeeper.service import notify
from archivekeeper.session import Session, SessionError, load

JOBS = ("scan", "full_scan", "apply", "report")
POLL_EVERY = 2.0  # s between volume probes
FALLBACK_EVERY = 300.0  # s between quick scans while file events cannot be trusted
HINT_CHECK = 0.5  # s between looks at pending file events (for folders quiet for `debounce`)
STATUS_EVERY = 1.0  # s between STATUS= updates during a job
LOCK_WAIT = 60.0  # s a job waits for a CLI run that holds the run lock
LOCK_RETRY = 300.0  # s after which a job skipped for the run lock is queued again

log = logs.get_logger()


@dataclass(frozen=True)
class Job:
    """What the main loop runs: a scheduled job by name; a quick scan of one volume (`volume`)
    or of some folders (`folders`); an apply asked for by `volume` coming online. `why` is
    logged, not compared: the same job queued twice runs once."""

    name: str
    volume: str | None = None
    folders: tuple[tuple[str, tuple[bytes, ...]], ...] | None = None
    why: str = field(default="schedule", compare=False)

    @property
    def scheduled(self) -> bool:
        """A run of the configured schedule (its success is what catch-up counts)."""
        return self.volume is None and self.folders is None

    def fields(self) -> dict:
        out: dict = {"job": self.name, "why": self.why}
        if self.volume is not None:
            out["volume"] = self.volume
        if self.folders is not None:
            out["folders"] = sum(len(rels) for _, rels in self.folders)
        return out


def local_zone():
    """The system's time zone: $TZ if it names one, else /etc/localtime (UTC if neither)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").removeprefix(":")
    try:
        if name and not name.startswith("/"):
            return ZoneInfo(name)
        with open(name or "/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key=name or "localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return UTC


def serve(config_arg: str | None) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit code. Raise SessionError when it
    cannot start (an invalid config: 78; another daemon on this state_dir: 1)."""
    from archivekeeper.index.store import RunLock, StoreError

    logs.configure(stream=sys.stdout, json=True)
    session = Session(config_arg)
    cfg = session.config
    lock = RunLock(cfg.state_dir, "daemon.lock")
    try:
        acquired = lock.acquire(0)
    except StoreError as exc:
        raise SessionError(str(exc)) from None
    if not acquired:
        try:
            pid = lock.path.read_text().strip() or "unknown"
        except OSError:
            pid = "unknown"
        raise SessionError(f"another archivekeeper daemon (pid {pid}) is running for state_dir "
                           f"{cfg.state_dir} (it holds {lock.path}); only one may run: stop it "
                           "first (systemctl stop archivekeeper)")
    try:
        return Daemon(session).serve()
    finally:
        session.close()
        lock.release()


class Daemon:
    """The service over a Session. `monotonic` and `make_watcher` are the seams tests use."""

    def __init__(self, session: Session, *, monotonic=time.monotonic, make_watcher=None):
        from apscheduler.schedulers.background import BackgroundScheduler

        from archivekeeper.service.hotplug import MountTable
        from archivekeeper.service.watch import Hints

        self.session = session
        self.monotonic = monotonic
        self.make_watcher = make_watcher or self._watcher
        self.tz = local_zone()
        self.scheduler = BackgroundScheduler(timezone=self.tz)
        self.hints = Hints(session.config.daemon.debounce)
        self.mounts = MountTable()
        self.presence = self.watcher = None  # start_watching sets them
        self.stop_requested = self.reload_requested = False
        self._stop_signal: str | None = None
        self.ping_every = notify.watchdog_interval()
        self._queue: list[Job] = []
        self._queue_lock = threading.Lock()
        self._changes: list = []  # volume changes seen during a job: handled after it
        self._hups = 0  # SIGHUPs received
        self._pending_holds: tuple | None = None  # (SIGHUPs, holds of the config they read)
        self._recheck: set[str] = set()  # volumes a folder scan found offline, unseen by probes
        self._next_ping = self._next_poll = 0.0
        self._next_fallback: float | None = None
        self._retries: dict[Job, float] = {}  # skipped for the run lock: queued again then
        self._degraded_logged = False
        self._status = ""
        self._status_at = 0.0
        self._job: Job | None = None
        self._done = 0  # files scanned or file operations of the running job
        self._failed: list[dict] = []  # failed jobs the index could not take yet (a full disk)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- the loop ---------------------------------------------------------------------------------
    def serve(self) -> int:
        previous = self._install_signals()
        try:
            self.start_watching()  # opens the index (created on first use) before READY
            self._schedule()
            self.scheduler.start()
            self.enqueue(Job("scan", why="start"))  # what changed while no one watched
            self.catch_up()
            cfg = self.session.config
            log.info("daemon_started", pid=os.getpid(), config=str(cfg.source),
                     state_dir=str(cfg.state_dir), timezone=str(self.tz),
                     watchdog_every=self.ping_every)
            notify.ready()
            while not self.stop_requested:
                try:
                    self.step()
                except Exception as exc:  # e.g. the index busy past its timeout: try again
                    if os.environ.get("ARCHIVEKEEPER_DEBUG"):
                        raise
                    log.error("daemon_error", error=f"{type(exc).__name__}: {exc}")
                    self._wait(POLL_EVERY)
        finally:
            self._shutdown(previous)
        return 0

    def step(self) -> None:
        """One turn of the main loop: the next queued job, or a wait for something to happen."""
        self.tick()
        job = self._take_job()
        if job is not None:
            self.run_job(job)
            return
        self._set_status(self._idle_text())
        self._wait(self._timeout())

    def tick(self) -> None:
        """What the main loop looks at between jobs, without waiting: a reload asked for, the
        watchdog, the volumes, file events quiet for `debounce`, the fallback scans."""
        if self.reload_requested:
            self.reload()
        self.heartbeat()
        self.resync_schedule()
        if self.monotonic() >= self._next_poll:
            self.poll_volumes()
        self._handle_changes()
        self._check_watch()
        for job, due in list(self._retries.items()):
            if self.monotonic() >= due:
                del self._retries[job]
                self.enqueue(job)
        quiet = self.hints.take_quiet(self.monotonic())
        if quiet:
            self.enqueue(Job("scan", folders=tuple(sorted(
                (volume, tuple(sorted(rels))) for volume, rels in quiet.items())),
                why="file_events"))

    def _timeout(self) -> float:
        deadlines = [self._next_poll]
        if self.ping_every is not None:
            deadlines.append(self._next_ping)
        if self._next_fallback is not None:
            deadlines.append(self._next_fallback)
        deadlines.extend(self._retries.values())
        timeout = min(deadlines) - self.monotonic()
        if self.hints.pending():
            timeout = min(timeout, HINT_CHECK)
        return max(0.0, timeout)

    def _wait(self, timeout: float) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        mounts = self.mounts.fileno()
        if mounts is not None:
            poller.register(mounts, self.mounts.POLL_EVENTS)
        for fd, _ in poller.poll(timeout * 1000):
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            elif self.mounts.changed():
                self._next_poll = 0.0  # a drive mounted or unmounted: probe now

    def heartbeat(self) -> None:
        """WATCHDOG=1 when due. Called by the main loop and by a running job's progress, never
        by a thread of its own: work that is stuck stops the pings, and systemd restarts us."""
        if self.ping_every is not None and self.monotonic() >= self._next_ping:
            notify.watchdog_ping()
            self._next_ping = self.monotonic() + self.ping_every

    # -- the queue --------------------------------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        """Queue a job (any thread); the main loop runs it."""
        with self._queue_lock:
            if job not in self._queue:
                self._queue.append(job)
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop is awake anyway

    def queued(self) -> list[Job]:
        with self._queue_lock:
            return list(self._queue)

    def _take_job(self) -> Job | None:
        with self._queue_lock:
            return self._queue.pop(0) if self._queue else None

    # -- schedule and catch-up --------------------------------------------------------------------
    def _schedule(self) -> None:
        """(Re)build the scheduler's jobs from the config: each only queues its name."""
        from apscheduler.triggers.combining import OrTrigger
        from apscheduler.triggers.cron import CronTrigger

        from archivekeeper.core.cron import parse_cron

        self.scheduler.remove_all_jobs()
        for name in JOBS:
            spec = parse_cron(getattr(self.session.config.schedule, name))
            triggers = [CronTrigger(timezone=self.tz, **kwargs)
                        for kwargs in spec.apscheduler_triggers()]
            # misfire_grace_time=None: a fire missed while the machine slept runs late, once
            # (coalesce), rather than being dropped until the next fire time
            self.scheduler.add_job(
                self.enqueue, triggers[0] if len(triggers) == 1 else OrTrigger(triggers),
                args=[Job(name)], id=name, name=name, max_instances=1, coalesce=True,
                misfire_grace_time=None, replace_existing=True)

    def resync_schedule(self) -> None:
        """APScheduler keeps the absolute next fire times it computed: after a clock that was
        ahead is set right (NTP after a boot on a bad clock), they lie in that wrong future and
        nothing would run until the wall clock got there. Any next fire time later than the
        trigger's next one from now is brought back."""
        now = self.session.clock.now().astimezone(self.tz)
        for job in self.scheduler.get_jobs():
            planned = getattr(job, "next_run_time", None)  # none before the scheduler starts
            fresh = job.trigger.get_next_fire_time(None, now)
            if planned is not None and fresh is not None and fresh < planned:
                log.warning("schedule_resynced", job=job.id, was=planned.isoformat(),
                            next=fresh.isoformat(), reason="the clock went back")
                job.modify(next_run_time=fresh)

    def catch_up(self) -> None:
        """Queue once each job whose last fire time passed since its last success (the machine
        was off or the daemon stopped)."""
        from archivekeeper.core.cron import missed_run, parse_cron

        now = self.session.clock.now().astimezone(self.tz)  # the zone's rules, across DST
        store = self.session.store
        for name in JOBS:
            text = store.get_meta(f"job_last:{name}")
            last = datetime.fromisoformat(text) if text else None
            if last is not None and last > now:  # recorded on a clock that was ahead
                last = None
            missed = missed_run(parse_cron(getattr(self.session.config.schedule, name)), last,
                                now)
            if missed is not None:
                log.info("catch_up", job=name, missed=missed.isoformat(), last_success=text)
                self.enqueue(Job(name, why="catch_up"))

    def apply_allowed(self) -> bool:
        """The scheduled apply runs at most once per local day, whatever DST does."""
        from archivekeeper.core.cron import apply_allowed

        now = self.session.clock.now()
        text = self.session.store.get_meta("apply_day")
        day = date.fromisoformat(text) if text else None
        if day is not None and day > now.date():  # recorded on a clock that was ahead: a
            day = None  # wrong day must not hold the apply (and retention) back until then
        return apply_allowed(day, now)

    # -- volumes and file events ------------------------------------------------------------------
    def _probe(self):
        # not registering first-seen drives: a probe may run inside a job's transaction; the
        # scan queued for a drive coming online registers it
        return self.session.volume_statuses(register=False)

    def _watcher(self):
        from archivekeeper.core import naming
        from archivekeeper.service.watch import Watcher

        patterns = [naming.compile_pattern(p) for p in self.session.config.shoots.patterns]
        return Watcher(patterns, self.hints, lambda: self.session.clock.now().date())

    def start_watching(self) -> None:
        """Watch from a first look at every volume (at start, after a reload). A first look
        queues no hot-plug jobs: the quick scan queued with it covers every drive."""
        from archivekeeper.service.hotplug import Presence

        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self.presence = Presence(self._probe)
        self.poll_volumes()
        self._changes.clear()
        self.hints.debounce = self.session.config.daemon.debounce
        self.watcher = self.make_watcher()
        self.watcher.start(self.presence.statuses)
        self._degraded_logged, self._next_fallback = False, None

    def poll_volumes(self) -> None:
        """Probe the volumes; log each change at once, keep it for the main loop."""
        self._next_poll = self.monotonic() + POLL_EVERY
        # the scheduler's timer counts monotonic time, which stands still while the machine
        # sleeps: woken, it looks at the wall clock again and runs what fell due (once)
        if self.scheduler.running:
            self.scheduler.wakeup()
        for status, state in self.presence.poll():
            if state == "online":
                log.info("volume_online", volume=status.name, path=str(status.path))
            else:
                log.warning("volume_offline", volume=status.name, path=str(status.path),
                            reason=status.reason or None)
            self._changes.append((status, state))
        for status in self.presence.statuses:
            if status.name in self._recheck:
                self._recheck.discard(status.name)
                if status.online:
                    self.enqueue(Job("scan", volume=status.name, why="offline_in_scan"))
        if self.watcher is not None and not self._degraded_logged:
            reason = self.watcher.degraded
            if reason is not None:  # said once; events were lost: a quick scan now, then often
                log.warning("watch_degraded", reason=reason, fallback_scan_every=FALLBACK_EVERY)
                self._degraded_logged, self._next_fallback = True, self.monotonic()

    def _handle_changes(self) -> None:
        """A volume gone offline is shown offline at once; one come online gets a quick scan,
        then an apply with every check of a normal apply (docs/daemon.md says why the
        once-a-day rule does not hold it back)."""
        changes, self._changes = self._changes, []
        if not changes:
            return
        store = self.session.store
        for status, state in changes:
            if state == "offline":
                with store.transaction():
                    store.set_volume_state(status.name, offline=True)
            else:
                self.enqueue(Job("scan", volume=status.name, why="volume_online"))
                self.enqueue(Job("apply", volume=status.name, why="volume_online"))
        self.watcher.update(self.presence.statuses)

    def _check_watch(self) -> None:
        """While file events cannot be trusted, a quick scan every FALLBACK_EVERY seconds."""
        now = self.monotonic()
        if self._next_fallback is not None and now >= self._next_fallback:
            self.enqueue(Job("scan", why="watch_degraded"))
            self._next_fallback = now + FALLBACK_EVERY

    # -- signals and reload -----------------------------------------------------------------------
    def _install_signals(self) -> dict:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        previous["wakeup"] = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        return previous

    def _on_signal(self, signum, _frame) -> None:
        # only flags and one datagram here: writing a log line could re-enter the stdout buffer
        if signum == signal.SIGHUP:
            self.reload_requested, self._hups = True, self._hups + 1
        elif not self.stop_requested:
            self.stop_requested = True
            self._stop_signal = signal.Signals(signum).name
            notify.stopping()

    def reload(self) -> None:
        """SIGHUP: the new config in force, or, if it is invalid, the old one kept (promise 10)."""
        self.reload_requested, self._pending_holds = False, None
        notify.reloading()
        old = self.session.config
        try:
            new = load(self.session.config_arg)
            if Path(new.state_dir) != Path(old.state_dir):
                raise SessionError(
                    f"{new.source}: state_dir changed from {old.state_dir} to {new.state_dir}: "
                    "restart the daemon to use another state_dir")
            self.session.reload(new)
        except SessionError as exc:
            log.error("config_invalid", error=f"{exc}; the running configuration stays in force",
                      errors=list(exc.lines))
        else:
            self._handle_changes()  # drives that came or went during a job keep their jobs
            self._schedule()
            self.start_watching()
            self.enqueue(Job("scan", why="config_reloaded"))  # new patterns, new volumes
            log.info("config_reloaded", config=str(new.source), hash=new.config_hash)
        notify.ready()

    def _shutdown(self, previous: dict) -> None:
        log.info("daemon_stopping", signal=self._stop_signal)
        notify.stopping()
        signal.set_wakeup_fd(previous.pop("wakeup"))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        self.close()

    def close(self) -> None:
        """Stop the scheduler and the observers (about 2 s at most), close what is open."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.watcher is not None:
            self.watcher.stop()
        self.mounts.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- jobs -------------------------------------------------------------------------------------
    def run_job(self, job: Job) -> None:
        """Run one job under the run lock; log how it went. A failure is logged, kept for the
        next report, and the daemon goes on: the next run (or crash recovery) finishes what it
        left."""
        from archivekeeper.act.audit import AuditError
        from archivekeeper.core.report import plural
        from archivekeeper.index.store import StoreError
        from archivekeeper.ops import OpError

        fields = job.fields()
        if job.name == "apply" and job.scheduled and not self.apply_allowed():
            log.info("job_skipped", **fields, reason="apply already ran today (at most once "
                                                     "per local day)")
            return
        log.info("job_started", **fields)
        started, self._job, self._done = self.monotonic(), job, 0
        self._set_status(f"{job.name} ({job.why}): waiting for the run lock")
        try:
            if not self._take_lock(job):
                return
            at = self.session.clock.now()
            result = getattr(self, f"_{job.name}")(job)
        except SessionError as exc:
            log.error("job_failed", **fields, error=str(exc), errors=list(exc.lines) or None)
            self._keep_failure(job, str(exc))
        except OpError as exc:
            log.error("job_failed", **fields, error=str(exc), code=exc.code)
            if exc.code != 3:  # a refusal is in the audit log, and so in the report, already
                self._keep_failure(job, str(exc))
        except (AuditError, StoreError) as exc:  # a full or failing disk under state_dir
            error = f"audit log: {exc}" if isinstance(exc, AuditError) else str(exc)
            log.error("job_failed", **fields, error=error)
            self._keep_failure(job, error)
        except Exception as exc:  # promise 9: one failed run never takes the daemon down
            if os.environ.get("ARCHIVEKEEPER_DEBUG"):
                raise
            log.error("job_failed", **fields,
                      error=f"internal error: {type(exc).__name__}: {exc}")
            # the message itself may name a customer: the report, kept for years, does not
            self._keep_failure(job, f"internal error ({type(exc).__name__}), named in the "
                                    "daemon's log")
        else:
            seconds = round(self.monotonic() - started, 1)
            if result.get("failed"):
                self._keep_failure(job, f"{plural(result['failed'], 'file operation')} "
                                        f"failed ({', '.join(result['errors'])}); those files "
                                        "stay where they were, each named in the daemon's log")
            if result.pop("stopped", False):
                log.warning("job_stopped", **fields, seconds=seconds, **result)
                return
            if job.scheduled:
                store = self.session.store
                with store.transaction():
                    store.set_meta(f"job_last:{job.name}", at.isoformat())
                    if job.name == "apply":
                        store.set_meta("apply_day", at.date().isoformat())
            log.info("job_finished", **fields, seconds=seconds, **result)
        finally:
            self._job = None
            self.session.unlock()
            if self._failed:
                self._store_failures()

    def _keep_failure(self, job: Job, error: str) -> None:
        self._failed.append({"job": job.name, "why": job.why, "error": error,
                             "at": self.session.clock.now().isoformat()})

    def _store_failures(self) -> None:
        """Keep the failed jobs for the next report: in the index, or, while it cannot be
        written (a full disk under state_dir), here until the end of a later job."""
        from archivekeeper.index.store import StoreError
        from archivekeeper.report import gather

        try:
            gather.note_failed_jobs(self.session.store, self._failed)
        except StoreError as exc:
            log.warning("job_failure_not_stored", error=str(exc),
                        reason="kept in memory for the next report until the index can be "
                               "written")
        else:
            self._failed.clear()

    def _take_lock(self, job: Job) -> bool:
        """The run lock, waiting a bounded time for a CLI run (pinging the watchdog); on
        timeout the job is skipped and queued again LOCK_RETRY later: a drive plugged in
        while the owner runs a command gets its scan, apply and pending erasure while it is
        still plugged in, not when it next happens to be."""
        wait = float(os.environ.get("ARCHIVEKEEPER_LOCK_WAIT", LOCK_WAIT))
        deadline = self.monotonic() + wait
        while True:
            try:
                self.session.lock(wait=max(0.0, min(1.0, deadline - self.monotonic())))
                return True
            except SessionError as exc:
                if self.stop_requested or self.monotonic() >= deadline:
                    log.warning("job_skipped", **job.fields(),
                                reason=f"{exc}; it runs again in {int(LOCK_RETRY // 60)} "
                                       "minutes")
                    self._retries[job] = self.monotonic() + LOCK_RETRY
                    return False
                self.heartbeat()

    def should_stop(self) -> bool:
        """Asked by a running job between shoots and file operations: also its heartbeat."""
        self._progress(1 if self._job is not None and self._job.name == "apply" else 0)
        return self.stop_requested

    def _progress(self, done: int) -> None:
        self._done += done
        self.heartbeat()
        if self.monotonic() >= self._next_poll:
            self.poll_volumes()  # an unplug is logged at once, even during a long job
        if self._job is not None and self.monotonic() - self._status_at >= STATUS_EVERY:
            what = "applying" if self._job.name == "apply" else (
                f"{'full-' if self._job.name == 'full_scan' else ''}scanning "
                + (self._job.volume or ("changed folders" if self._job.folders else
                                        "all volumes")))
            unit = "file operations" if self._job.name == "apply" else "files"
            self._set_status(f"{what}: {self._done:,} {unit}")

    def _scan(self, job: Job) -> dict:
        folders = None
        if job.folders is not None:
            folders = {volume: list(rels) for volume, rels in job.folders}
        summary, _, warnings = self.session.scan(
            job.volume, job.name == "full_scan", progress=self._progress, folders=folders,
            should_stop=self.should_stop)
        for warning in warnings:
            log.warning("clock_warning", message=warning)
        if folders is not None:  # a marker away for an instant the 2 s probe did not see: the
            # scan found the volume offline (and said so in the index); the next probe that
            # finds it online again queues a quick scan of it, which says so too
            self._recheck |= set(summary.offline) & set(folders)
        return {"shoots": summary.shoots, "files": summary.files, "new": summary.new,
                "changed": summary.changed, "missing": summary.missing,
                "errors": summary.errors, "offline": summary.offline,
                "aborted": summary.aborted, "stopped": summary.stopped}

    _full_scan = _scan

    def _apply(self, job: Job) -> dict:
        """Crash recovery, apply and purge: ops.apply, as `archivekeeper apply` runs it."""
        from archivekeeper import ops

        s = self.session
        _, result = ops.apply(s.config, s.store, s.audit, s.clock, dry_run=False,
                              should_stop=self.should_stop, more_holds=self._reloaded_holds,
                              scan=lambda volume: s.scan(only=volume,
                                                         should_stop=self.should_stop))
        for line in result.skipped:
            log.warning("apply_skipped", detail=line)
        return {"moved_files": result.moved_files, "moved_bytes": result.moved_bytes,
                "shoots": result.shoots, "skipped": len(result.skipped),
                "failed": len(result.failed), "errors": sorted(set(result.failed)),
                "purged_files": result.purged_files, "purged_bytes": result.purged_bytes,
                "erased_files": result.erased_files, "stopped": result.stopped}

    def _reloaded_holds(self) -> tuple:
        """The holds of a config reloaded (SIGHUP) while an apply runs: the reload itself waits
        for the job's end, but a hold the owner added must protect what the run has not reached
        (promise 3), as a `hold add` does. Read once per reload; an invalid config adds none."""
        if not self.reload_requested:
            return ()
        if self._pending_holds is None or self._pending_holds[0] != self._hups:
            try:  # read again on each SIGHUP: the owner may have fixed a typo and reloaded
                holds = tuple(load(self.session.config_arg).model_holds())
            except SessionError:
                holds = ()
            self._pending_holds = (self._hups, holds)
        return self._pending_holds[1]

    def _report(self, job: Job) -> dict:
        """The weekly report, as `archivekeeper report [--send]` makes it: stored in
        report.dir, and mailed when report.email is configured."""
        from archivekeeper.report import ReportError, run

        s = self.session
        email = s.config.report.email
        try:
            outcome = run(s.config, s.store, s.audit, s.clock.now(), s.volume_statuses(),
                          send=email is not None)
        except ReportError as exc:
            raise SessionError(str(exc), exc.code) from None
        if outcome.mail_error:  # not counted as done: a restart's catch-up sends it again
            raise SessionError(f"the report was written but not sent: {outcome.mail_error}")
        paths = [str(path) for path in outcome.paths]
        if email is None:
            log.info("report_nothing_to_send", reason="report.email is not configured: the "
                     "report is only stored", paths=paths)
        return {"paths": paths, "sent_to": list(email.to) if email is not None else None}

    # -- STATUS= ----------------------------------------------------------------------------------
    def _set_status(self, text: str) -> None:
        if text != self._status:
            notify.status(text)
            self._status, self._status_at = text, self.monotonic()

    def _idle_text(self) -> str:
        parts = ["idle"]
        if self.watcher is not None:
            parts.append(f"watching {len(self.watcher.watching)} volumes")
        if self._next_fallback is not None:
            parts.append("file events untrusted: quick scan every "
                         f"{FALLBACK_EVERY / 60:.0f} min")
        upcoming = sorted((j for j in self.scheduler.get_jobs() if j.next_run_time),
                          key=lambda j: j.next_run_time)
        for job in upcoming[:1] + [j for j in upcoming[1:] if j.id == "apply"]:
            parts.append(f"next {job.id} {job.next_run_time:%a %H:%M}")
        return "; ".join(parts)
