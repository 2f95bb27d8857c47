"""Watching as hints: a file event says where to look, never what to do.

One watchdog observer per online volume; its threads only record which folder an event lies in
(`Hints`). The daemon's main loop takes the folders that have been quiet for `daemon.debounce`
and rescans just those. No decision and no file operation happens on an observer thread, so a
flood of events or a dying watcher can at worst leave a change unseen until the next scheduled
scan; it can never make anything happen.

When the hints cannot be trusted (an observer thread died, the kernel's inotify queue overflowed
and dropped events, the watch limit left part of a volume unwatched) `Watcher.degraded` says why
and what to do; the daemon logs it once and falls back to periodic quick scans.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import date

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.inotify_c import InotifyConstants, inotify_add_watch, inotify_init

from archivekeeper.core import naming
from archivekeeper.index.volumes import MARKER_DIR, VolumeStatus

# A folder created while watchdog walks its parent is watched twice; watchdog 7.1 then warns that
# the (same) callback is overwritten, on stderr, where a daemon says only what matters: harmless.
# (_Observer's reader does not even build that warning; this is for a watchdog it cannot patch.)
warnings.filterwarnings("ignore", message=r"Callback with id .* already exists for watch",
                        category=RuntimeWarning, module=r"watchdog\.")
# Stopping an observer while its thread is in a read makes watchdog 7.1 log an error, which
# Python's last-resort handler puts raw on stderr: the watch was being stopped, nothing is lost.
logging.getLogger("watchdog.observers.inotify").addFilter(
    lambda record: "called when the thread is inactive" not in record.getMessage())

# What changes a listing. Not opens and read-only closes: the scanner reading EXIF would
# otherwise mark the shoots it just scanned, and so on forever. Not a folder's own "modified":
# watchdog adds one for the parent of every change, which the change's own event already covers.
EVENTS = [FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent, FileMovedEvent,
          DirMovedEvent, FileModifiedEvent, FileClosedEvent, FileAttribEvent]
_META = os.fsencode(MARKER_DIR)
SYSCTL_FILE = "/etc/sysctl.d/90-archivekeeper.conf"


class Hints:
    """The folders that saw file events, per volume, with the monotonic time of the last one.
    Written by observer threads, taken by the main loop: every access holds the lock."""

    def __init__(self, debounce: float):
        self.debounce = debounce
        self._lock = threading.Lock()
        self._last: dict[tuple[str, bytes], float] = {}

    def mark(self, volume: str, rel: bytes, now: float) -> None:
        with self._lock:
            self._last[(volume, rel)] = now

    def take_quiet(self, now: float) -> dict[str, set[bytes]]:
        """Remove and return {volume: {relpath}} of the folders with no event for `debounce`
        seconds before `now` (time.monotonic()); a folder still busy stays for a later call."""
        quiet: dict[str, set[bytes]] = {}
        with self._lock:
            for key, last in list(self._last.items()):
                if now - last >= self.debounce:
                    del self._last[key]
                    quiet.setdefault(key[0], set()).add(key[1])
        return quiet

    def forget(self, volume: str) -> None:
        """Drop a volume's pending folders: gone offline, it is rescanned when it returns."""
        with self._lock:
            for key in [k for k in self._last if k[0] == volume]:
                del self._last[key]

    def pending(self) -> dict[str, set[bytes]]:
        with self._lock:
            out: dict[str, set[bytes]] = {}
            for volume, rel in self._last:
                out.setdefault(volume, set()).add(rel)
            return out


def folder_of(patterns, rel: bytes, is_dir: bool, today: date) -> bytes | None:
    """Given a path relative to the volume root, return the folder the scanner must look at
    again: the shoot folder it lies in (the first prefix the layout patterns do not take as a
    container), a container folder itself when one comes or goes (its shoots went with it), or
    None for archivekeeper's own `.archivekeeper/` and files outside any shoot. A prefix the
    patterns do not recognise is returned too: the scanner decides what a new folder is."""
    parts = rel.split(b"/")
    if not rel or parts[0] == _META:
        return None
    if not is_dir:
        parts.pop()
    texts: list[str] = []
    for i, part in enumerate(parts):
        try:
            texts.append(part.decode("utf-8"))
        except UnicodeDecodeError:
            return b"/".join(parts[: i + 1])
        if not isinstance(naming.classify(patterns, tuple(texts), today), naming.Container):
            return b"/".join(parts[: i + 1])
    return b"/".join(parts) if is_dir else None


class _Recorder(FileSystemEventHandler):
    """Runs on an observer thread: maps an event to its folder and marks it. Nothing else."""

    def __init__(self, watcher: Watcher, volume: str, root: bytes):
        self.watcher, self.volume, self.prefix = watcher, volume, root + b"/"

    def dispatch(self, event: FileSystemEvent) -> None:
        if not isinstance(event, tuple(EVENTS)):
            return
        watcher = self.watcher
        for path in (event.src_path, event.dest_path):
            raw = os.fsencode(path)
            if not raw.startswith(self.prefix):
                continue
            folder = folder_of(watcher.patterns, raw[len(self.prefix):], event.is_directory,
                               watcher.today())
            if folder is not None:
                watcher.hints.mark(self.volume, folder, watcher.monotonic())


class _Observer(InotifyObserver):
    """An inotify observer that reports a kernel queue overflow (events were lost).

    watchdog never tells a handler: 6.0.0 skips the kernel's IN_Q_OVERFLOW record (wd -1) unread
    (inotify_c.py:335, `if wd == -1: continue`); 7.1.0 passes it to InotifyFD.handle_event
    (inotify_c.py:335-348), which only logs and rebuilds its watches (inotify.py:212-225), and no
    event reaches the queue. So the mask is checked where every raw kernel event passes: this
    observer's own InotifyFD reader. `reports_overflow` is False on a watchdog without that
    reader (the Watcher then does not trust the hints).

    Its reader also watches a folder watched already without a word. A folder created while
    watchdog walks its parent has its subtree walked (and every folder in it watched) again;
    7.1.0 then formats a warning holding the repr of every watched path of the volume
    (inotify_c.py:448-450), once per folder: for 300 nested folders, 200 MB of text per walk,
    seconds in which the observer thread passes on no event of any folder."""

    def __init__(self, on_overflow: Callable[[], None]):
        super().__init__()
        self.reader = getattr(self, "_inotify_fd", None)
        handle = getattr(self.reader, "handle_event", None)
        self.reports_overflow = handle is not None
        if handle is not None:
            def handle_event(event):
                if event.mask & InotifyConstants.IN_Q_OVERFLOW:
                    on_overflow()
                handle(event)

            self.reader.handle_event = handle_event
        watch_for = getattr(self.reader, "_get_or_create_watch", None)
        if watch_for is not None and hasattr(self.reader, "_add_callback"):
            def add_callback(path, mask, callback, id_):
                watch = watch_for(path, mask)
                watch.callbacks[id_] = callback
                return watch.wd

            self.reader._add_callback = add_callback


def watch_limit_reached(root: bytes) -> bool:
    """True if this user cannot add one more inotify watch. watchdog 7.1.0 ignores a watch it
    cannot add below the root (inotify.py:364-372), so a volume whose watching stopped halfway
    at the limit looks watched. The limit counts all the user's watches, so a probe with an
    inotify instance of its own tells."""
    fd = inotify_init()
    if fd == -1:
        return False  # out of inotify instances: that says nothing about watches
    try:
        failed = inotify_add_watch(fd, root, InotifyConstants.IN_DELETE_SELF) == -1
        return failed and ctypes.get_errno() == errno.ENOSPC
    finally:
        os.close(fd)


def _sysctl_hint(key: str, default: int) -> str:
    try:
        with open(f"/proc/sys/fs/inotify/{key}") as f:
            now = int(f.read())
    except (OSError, ValueError):
        now = default // 2
    want = max(default, 2 * now)
    return (f"fs.inotify.{key} is {now}: raise it with `sysctl fs.inotify.{key}={want}` and "
            f"keep it across reboots with `echo fs.inotify.{key}={want} > {SYSCTL_FILE}`, "
            "then restart the daemon")


class Watcher:
    """The observers of the online volumes, feeding `hints`. `patterns` may be replaced by the
    main loop (a reload); observer threads read it per event. `observer_factory(on_overflow)`
    is the seam tests use to make an observer fail."""

    def __init__(self, patterns, hints: Hints, today: Callable[[], date], *,
                 observer_factory: Callable[[Callable[[], None]], InotifyObserver] = _Observer,
                 monotonic: Callable[[], float] = time.monotonic):
        self.patterns = patterns
        self.hints = hints
        self.today = today
        self.monotonic = monotonic
        self._factory = observer_factory
        self._observers: dict[str, tuple[InotifyObserver, bytes]] = {}
        self._reason: str | None = None

    @property
    def watching(self) -> set[str]:
        return set(self._observers)

    @property
    def degraded(self) -> str | None:
        """Why file events are no longer trusted and what to do, or None. Once set it stays: a
        dropped event is not coming back, so only scans can be trusted from then on."""
        if self._reason is None:
            self._check()
        return self._reason

    def _degrade(self, reason: str) -> None:
        if self._reason is None:  # the first cause is the one to fix
            self._reason = reason

    def _check(self) -> None:
        for name, (observer, root) in list(self._observers.items()):
            threads = [observer, *observer.emitters, getattr(observer, "reader", None)]
            if any(t is not None and not t.is_alive() for t in threads):
                if not os.path.isdir(root):
                    continue  # the volume went away (its emitter stops): Presence says so
                self._degrade(f"the file watcher of volume {name} stopped (its thread died, "
                              "see the log above): file events are no longer seen; falling back "
                              "to periodic quick scans until the daemon is restarted")
                return
        if self._observers:
            root = next(iter(self._observers.values()))[1]
            if watch_limit_reached(root):
                self._degrade(self._limit_reason())

    def _limit_reason(self, where: str = "") -> str:
        return (f"inotify watch limit reached{where}: part of the volumes is not watched, "
                "falling back to periodic quick scans; "
                + _sysctl_hint("max_user_watches", 524288))

    def start(self, statuses: Iterable[VolumeStatus]) -> None:
        """Watch every online volume of `statuses` (not already watched)."""
        for status in statuses:
            if status.online and status.name not in self._observers:
                self._start_one(status)

    def update(self, statuses: Iterable[VolumeStatus]) -> None:
        """Given the current statuses of all volumes: stop watching those offline or gone (and
        forget their pending hints), start watching those newly online."""
        statuses = list(statuses)
        online = {s.name for s in statuses if s.online}
        for name in set(self._observers) - online:
            observer, _ = self._observers.pop(name)
            _halt(observer, deadline=time.monotonic() + 2)
            self.hints.forget(name)
        self.start(statuses)

    def stop(self) -> None:
        """Stop every observer; returns within about two seconds."""
        observers = [observer for observer, _ in self._observers.values()]
        self._observers.clear()
        for observer in observers:
            observer.stop()
        deadline = time.monotonic() + 2
        for observer in observers:
            _halt(observer, deadline)

    def _start_one(self, status: VolumeStatus) -> None:
        root = os.fsencode(str(status.path))

        def on_overflow() -> None:
            self._degrade(f"the inotify event queue overflowed on volume {status.name} (file "
                          "events were lost): falling back to periodic quick scans; "
                          + _sysctl_hint("max_queued_events", 65536))

        observer = self._factory(on_overflow)
        if not getattr(observer, "reports_overflow", True):
            self._degrade("this watchdog cannot report an inotify queue overflow, so lost file "
                          "events would go unnoticed: falling back to periodic quick scans; "
                          "install watchdog>=7.1")
        try:
            observer.schedule(_Recorder(self, status.name, root), os.fsdecode(root),
                              recursive=True, event_filter=EVENTS)
            observer.start()
        except OSError as exc:
            _halt(observer, deadline=time.monotonic() + 2)
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return  # unplugged since the probe: Presence reports it offline
            if exc.errno == errno.ENOSPC:
                self._degrade(self._limit_reason(f" watching volume {status.name}"))
            elif exc.errno == errno.EMFILE:
                self._degrade(f"inotify instance limit reached watching volume {status.name}: "
                              "falling back to periodic quick scans; "
                              + _sysctl_hint("max_user_instances", 1024))
            else:
                self._degrade(f"cannot watch volume {status.name} ({status.path}: "
                              f"{exc.strerror or exc}): falling back to periodic quick scans")
            return
        self._observers[status.name] = (observer, root)
        if watch_limit_reached(root):
            self._degrade(self._limit_reason(f" watching volume {status.name}"))


def _halt(observer, deadline: float) -> None:
    """Stop an observer (started or not) and wait for its thread until `deadline`."""
    observer.stop()
    if observer.is_alive():
        observer.join(max(0.0, deadline - time.monotonic()))
