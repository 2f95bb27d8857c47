"""One way in for the CLI and the daemon: the config, the index, the audit log, the run lock,
crash recovery, volume probing and the scan, set up the same way whichever door a run comes
through. A door turns a SessionError into its own way of failing (a one-line message and an
exit code for the CLI, a log line for the daemon)."""

from __future__ import annotations

import os
from pathlib import Path

EXIT_RUNTIME, EXIT_CONFIG = 1, 78
LOCK_WAIT = 120.0  # seconds a command waits for another run ($ARCHIVEKEEPER_LOCK_WAIT)


class SessionError(Exception):
    """A failure a person can act on: `code` is the exit code, `lines` what to show first
    (the errors of an invalid config, one per line, each naming its line)."""

    def __init__(self, message: str, code: int = EXIT_RUNTIME, lines: tuple[str, ...] = ()):
        super().__init__(message)
        self.code = code
        self.lines = lines


def load(config_arg: str | None):
    """Given --config (or None), return the loaded config; raise SessionError (78) if there is
    none or it is invalid, naming the file and every error."""
    from archivekeeper.config import ConfigError, load_config, resolve_config_path

    path = resolve_config_path(config_arg, os.environ)
    if not os.path.lexists(path):
        raise SessionError(
            f"no configuration at {path}: give one with --config PATH or "
            "ARCHIVEKEEPER_CONFIG=PATH (every key is explained in "
            "config/archivekeeper.yaml of the source; `archivekeeper demo` needs none)",
            EXIT_CONFIG)
    try:
        return load_config(path)
    except ConfigError as exc:
        raise SessionError(f"{path}: invalid configuration; nothing was done", EXIT_CONFIG,
                           tuple(exc.errors)) from None


class Session:
    """Per-run state: the config path, and lazily the config, clock, index, audit log and
    run lock. `fail` is how this door fails; the CLI overrides it."""

    def __init__(self, config_path: str | None, clock=None):
        self.config_arg = config_path
        self._config = None
        self._store = None
        self._audit = None
        self._lock = None
        self._clock = clock  # None: the system clock (ARCHIVEKEEPER_FAKE_NOW pins it)
        self.warned_offline: set[str] = set()  # each offline volume is warned about once

    def fail(self, error: SessionError):
        raise error

    @property
    def config(self):
        if self._config is None:
            try:
                self._config = load(self.config_arg)
            except SessionError as exc:
                self.fail(exc)
        return self._config

    def reload(self, new=None):
        """Put a config in force from the next run on (SIGHUP): `new`, as the caller loaded and
        checked it, or the file read again. If it is invalid, raise SessionError and keep the
        one in force."""
        self._config, self._audit = new if new is not None else load(self.config_arg), None
        return self._config

    @property
    def clock(self):
        if self._clock is None:
            from archivekeeper.clock import SystemClock

            self._clock = SystemClock()
        return self._clock

    @property
    def store(self):
        if self._store is None:
            from archivekeeper.index.store import Store, StoreError

            try:
                self._store = Store(self.config.state_dir)
                if self._store.fresh:
                    self._note_if_index_lost(self._store)
            except StoreError as exc:
                self.fail(SessionError(str(exc)))
        return self._store

    def _note_if_index_lost(self, store) -> None:
        """A new index beside an audit log that already holds records: the old index was lost
        or deleted, and with it the holds `hold add` kept there. Noted for the clock guard."""
        from archivekeeper.act.audit import LOG_NAME
        from archivekeeper.index.store import StoreError

        log = Path(self.config.state_dir) / LOG_NAME
        try:
            records = log.stat().st_size > 0
        except FileNotFoundError:
            records = False
        except OSError as exc:
            raise StoreError(f"{log}: {exc.strerror}") from exc
        if records:
            with store.transaction():
                store.note_index_lost(self.clock.now().isoformat())

    @property
    def audit(self):
        """The audit log; the first use records a config change when the file's hash moved."""
        if self._audit is None:
            from archivekeeper.act.audit import AuditError
            from archivekeeper.ops import open_audit

            try:
                self._audit = open_audit(self.config, self.clock, self.store)
                if self.store.get_meta("config_hash") != self.config.config_hash:
                    with self.store.transaction():
                        self._audit.append("config_change", hash=self.config.config_hash)
                        self.store.set_meta("config_hash", self.config.config_hash)
            except (AuditError, OSError) as exc:
                self._audit = None
                self.fail(SessionError(f"audit log: {exc}; nothing was done"))
        return self._audit

    def close(self) -> None:
        """Release the run lock and the index (the end of every command)."""
        from archivekeeper import logs

        logs.forget()
        self.unlock()
        self._audit = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def lock(self, wait: float | None = None):
        """Hold state_dir/lock until `unlock` (or `close`); fail clearly if another run keeps
        it past `wait` seconds. Every scan, apply, purge and restore takes it, from the CLI and
        the daemon alike, so they never overlap."""
        from archivekeeper.index.store import RunLock, StoreError

        if self._lock is None:
            lock = RunLock(self.config.state_dir)
            if wait is None:
                wait = float(os.environ.get("ARCHIVEKEEPER_LOCK_WAIT", LOCK_WAIT))
            try:
                acquired = lock.acquire(wait)
            except StoreError as exc:
                self.fail(SessionError(str(exc)))
            if not acquired:
                self.fail(SessionError(
                    f"another archivekeeper run holds {lock.path} (scan, apply, purge or "
                    "restore in progress); try again when it has finished"))
            self._lock = lock
        return self._lock

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def recover(self) -> None:
        """Before a run writes to the index: finish or roll back half-done file steps a crash
        left behind (cheap when there are none; skipped while another run holds the lock,
        since its steps are not half-done but under way)."""
        if not self.store.has_half_done_steps():
            return
        from archivekeeper import ops
        from archivekeeper.act.executor import Executor
        from archivekeeper.index.store import RunLock

        lock = self._lock or RunLock(self.config.state_dir)
        if lock.fd is None and not lock.acquire(0):
            return
        executor = None
        try:
            now = self.clock.now()
            executor = Executor(self.config, self.store, self.audit, now)
            ops.recover(self.config, self.store, executor,
                        ops.check_clock(self.config, self.store, now))
        finally:
            if executor is not None:
                executor.close()
            if self._lock is None:
                lock.release()

    def volume_statuses(self, register: bool = True):
        """Probe every configured volume; register first-seen ids in the index."""
        from archivekeeper.index.volumes import probe

        recorded = self.store.volume_ids()
        statuses = probe(self.config.volumes, recorded)
        if register:
            new = [s for s in statuses if s.online and s.name not in recorded]
            if new:
                with self.store.transaction():
                    for s in new:
                        self.store.register_volume(s.name, s.volume_id, str(s.path))
        return statuses

    def scan(self, only: str | None = None, full: bool = False, *, progress=None,
             statuses=None, folders=None, should_stop=None):
        """Index online volumes (or `only`); return (summary, statuses, clock warnings).
        Takes the run lock and recovers first. `folders` ({volume: [relpath]}) rescans only
        those folders; `should_stop` is asked between shoots."""
        from archivekeeper import ops
        from archivekeeper.core import naming
        from archivekeeper.index import scanner

        cfg = self.config
        self.lock()
        self.recover()
        if statuses is None:
            statuses = self.volume_statuses()
        statuses = [s for s in statuses if only is None or s.name == only]
        patterns = [naming.compile_pattern(p) for p in cfg.shoots.patterns]
        check = ops.check_clock(cfg, self.store, self.clock.now())
        seen_at, today = ops.scan_instants(check)
        ops.before_scan(self.store, seen_at, check)
        readers = []

        def exif_reader():
            if not readers:
                from archivekeeper.index.exif import ExifReader

                readers.append(ExifReader(workers=min(2, os.cpu_count() or 1)))
            return readers[0]

        extra = {}
        if folders is not None:
            extra["only"] = folders
        if should_stop is not None:
            extra["should_stop"] = should_stop
        try:
            summary = scanner.scan(statuses, self.store, patterns, full=full, today=today,
                                   now=seen_at, exif_reader=exif_reader,
                                   progress=progress or (lambda n: None), **extra)
        finally:
            for reader in readers:
                reader.close()
        # judged again: on a fresh index, what was just indexed is the first thing to judge by
        after = ops.check_clock(cfg, self.store, self.clock.now())
        ops.after_scan(self.store, seen_at, check, after)
        warnings = [f"{refusal}{after.hint()}" for refusal in after.refusals]
        return summary, statuses, warnings
