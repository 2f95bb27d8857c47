"""Watching as hints (archivekeeper/service/watch.py): real temp trees, real inotify observers.
Nothing sleeps to wait for an event: a test polls with a deadline, and proves an event was NOT
recorded by making a later one in another folder and waiting for that (one inotify queue per
volume keeps events in order)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import warnings
from datetime import date, datetime
from pathlib import Path

import pytest

from archivekeeper.act.volume_init import init_volume
from archivekeeper.core.naming import compile_pattern
from archivekeeper.index.volumes import VolumeStatus
from archivekeeper.service.watch import Hints, Watcher, _Observer, folder_of

PATTERNS = [compile_pattern(p) for p in (
    "{date} {customer}", "{date}_{customer}_{type}", "{customer}/{date} {type}")]
TODAY = date(2025, 6, 1)
SHOOT = b"2024-05-12 Virtanen Matti"


def wait_for(condition, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


def make_volume(tmp_path: Path, name: str) -> VolumeStatus:
    root = tmp_path / name
    root.mkdir()
    marker, _ = init_volume(root, name, datetime(2025, 6, 1).astimezone())
    (root / os.fsdecode(SHOOT)).mkdir()
    (root / os.fsdecode(SHOOT) / "a.jpg").write_bytes(b"x")
    return VolumeStatus(name=name, path=root, online=True, volume_id=marker["id"])


def offline(status: VolumeStatus) -> VolumeStatus:
    return VolumeStatus(name=status.name, path=status.path, online=False, reason="gone")


def write(path: bytes | Path, data: bytes = b"x") -> None:
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def watch(tmp_path):
    """A started watcher over one volume "studio"; yields (watcher, volume root as bytes)."""
    status = make_volume(tmp_path, "studio")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
    watcher.start([status])
    yield watcher, os.fsencode(status.path)
    watcher.stop()


def marked(watcher, volume="studio"):
    return watcher.hints.pending().get(volume, set())


def test_a_new_file_in_a_shoot_marks_that_shoot(watch):
    watcher, root = watch
    write(root + b"/" + SHOOT + b"/b.jpg")
    assert wait_for(lambda: marked(watcher), "a hint") == {SHOOT}
    assert watcher.degraded is None


def test_a_change_deep_in_a_nested_shoot_marks_the_shoot_folder(watch):
    watcher, root = watch
    shoot = b"Virtanen Matti/12.05.2024 passport"
    os.makedirs(root + b"/" + shoot + b"/raw")
    wait_for(lambda: shoot in marked(watcher), "the new shoot marked")
    watcher.hints.take_quiet(time.monotonic() + 60)
    write(root + b"/" + shoot + b"/raw/c.cr2")
    assert wait_for(lambda: marked(watcher), "a hint") == {shoot}


def test_a_new_folder_that_is_no_shoot_yet_marks_that_folder(watch):
    watcher, root = watch
    os.mkdir(root + b"/random stuff")
    write(root + b"/random stuff/notes.txt")
    assert wait_for(lambda: marked(watcher), "a hint") == {b"random stuff"}


def test_names_with_odd_bytes_are_kept_as_bytes(watch):
    watcher, root = watch
    write(root + b"/" + SHOOT + b"/caf\xe9.jpg")
    os.mkdir(root + b"/bad\xff name")
    write(root + b"/bad\xff name/x.jpg")
    assert wait_for(lambda: len(marked(watcher)) == 2 and marked(watcher), "two hints") == {
        SHOOT, b"bad\xff name"}


def test_events_in_archivekeepers_own_folder_and_reads_are_ignored(watch):
    watcher, root = watch
    trash = root + b"/.archivekeeper/trash"
    os.makedirs(trash)
    write(trash + b"/moved.jpg")
    os.rename(trash + b"/moved.jpg", trash + b"/moved2.jpg")
    with open(root + b"/" + SHOOT + b"/a.jpg", "rb") as f:  # the scanner reading EXIF
        f.read()
    write(root + b"/notes.txt")  # a file at the root lies in no shoot
    os.mkdir(root + b"/sentinel")  # after all the above in the volume's one event queue
    assert wait_for(lambda: marked(watcher), "the sentinel") == {b"sentinel"}


def test_a_file_moved_between_shoots_marks_both(watch):
    watcher, root = watch
    other = b"2024-06-01 Korhonen"
    os.mkdir(root + b"/" + other)
    wait_for(lambda: other in marked(watcher), "the new shoot")
    watcher.hints.take_quiet(time.monotonic() + 60)
    os.rename(root + b"/" + SHOOT + b"/a.jpg", root + b"/" + other + b"/a.jpg")
    assert wait_for(lambda: len(marked(watcher)) == 2 and marked(watcher), "two hints") == {
        SHOOT, other}


def test_debounce_returns_a_folder_only_after_quiet_time():
    hints = Hints(debounce=30)
    hints.mark("studio", b"a", 100.0)
    hints.mark("studio", b"b", 110.0)
    hints.mark("studio", b"a", 105.0)  # a later event in the same folder restarts its quiet
    assert hints.take_quiet(134.9) == {}
    assert hints.take_quiet(135.0) == {"studio": {b"a"}}
    assert hints.take_quiet(135.0) == {}  # taken once
    assert hints.take_quiet(139.99) == {}
    hints.mark("backup-1", b"c", 120.0)
    assert hints.take_quiet(150.0) == {"studio": {b"b"}, "backup-1": {b"c"}}
    assert hints.pending() == {}


def test_the_watcher_stamps_events_with_its_monotonic_clock(tmp_path):
    status = make_volume(tmp_path, "studio")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY, monotonic=lambda: 1000.0)
    watcher.start([status])
    try:
        write(status.path / os.fsdecode(SHOOT) / "b.jpg")
        wait_for(lambda: marked(watcher), "a hint")
        assert watcher.hints.take_quiet(1029.0) == {}
        assert watcher.hints.take_quiet(1030.0) == {"studio": {SHOOT}}
    finally:
        watcher.stop()


@pytest.mark.parametrize(("rel", "is_dir", "folder"), [
    (SHOOT + b"/a.jpg", False, SHOOT),
    (SHOOT + b"/sub/deeper/a.jpg", False, SHOOT),
    (SHOOT, True, SHOOT),
    (b"Virtanen Matti", True, b"Virtanen Matti"),  # a container came or went
    (b"Virtanen Matti/stray.txt", False, None),  # a file in a container lies in no shoot
    (b"Virtanen Matti/12.05.2024 passport/x.jpg", False, b"Virtanen Matti/12.05.2024 passport"),
    (b"Virtanen Matti/not a shoot/x.jpg", False, b"Virtanen Matti/not a shoot"),
    (b"2999-01-01 Future/x.jpg", False, b"2999-01-01 Future"),  # the scanner will say why not
    (b"notes.txt", False, None),
    (b".archivekeeper/trash/x", False, None),
    (b".archivekeeper", True, None),
    (b"\xff\xfe/x.jpg", False, b"\xff\xfe"),
])
def test_folder_of(rel, is_dir, folder):
    assert folder_of(PATTERNS, rel, is_dir, TODAY) == folder


def test_update_starts_and_stops_volumes(tmp_path):
    a, b = make_volume(tmp_path, "a"), make_volume(tmp_path, "b")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
    try:
        watcher.start([a, offline(b)])
        assert watcher.watching == {"a"}
        write(a.path / os.fsdecode(SHOOT) / "pending.jpg")
        wait_for(lambda: marked(watcher, "a"), "a's hint")
        watcher.update([offline(a), b])
        assert watcher.watching == {"b"}
        assert "a" not in watcher.hints.pending()  # gone offline: its hints are moot
        write(a.path / os.fsdecode(SHOOT) / "unseen.jpg")
        write(b.path / os.fsdecode(SHOOT) / "seen.jpg")
        wait_for(lambda: marked(watcher, "b"), "b's hint")
        write(b.path / "sentinel.txt")
        os.mkdir(b.path / "sentinel")
        wait_for(lambda: b"sentinel" in marked(watcher, "b"), "b's sentinel")
        assert watcher.hints.pending() == {"b": {SHOOT, b"sentinel"}}
        watcher.update([a, b])
        assert watcher.watching == {"a", "b"}
        assert watcher.degraded is None
    finally:
        started = time.monotonic()
        watcher.stop()
        assert time.monotonic() - started < 3
    assert watcher.watching == set()


def test_stop_ends_every_thread_it_started(tmp_path):
    before = set(threading.enumerate())
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
    watcher.start([make_volume(tmp_path, "a"), make_volume(tmp_path, "b")])
    assert len(set(threading.enumerate()) - before) >= 2
    watcher.stop()
    assert set(threading.enumerate()) - before == set()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_observer_thread_that_dies_degrades_to_quick_scans(tmp_path):
    class Dying(_Observer):
        def dispatch_events(self, event_queue):
            super().dispatch_events(event_queue)
            raise RuntimeError("handler blew up")

    status = make_volume(tmp_path, "studio")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY, observer_factory=Dying)
    watcher.start([status])
    try:
        assert watcher.degraded is None
        write(status.path / os.fsdecode(SHOOT) / "b.jpg")
        reason = wait_for(lambda: watcher.degraded, "degraded")
        assert "file watcher of volume studio stopped" in reason
        assert "periodic quick scans" in reason
    finally:
        watcher.stop()


def test_the_watch_limit_when_scheduling_degrades_with_the_sysctl_to_raise(tmp_path):
    made = []

    class Full(_Observer):
        def __init__(self, on_overflow):
            super().__init__(on_overflow)
            made.append(self)

        def schedule(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY, observer_factory=Full)
    watcher.start([make_volume(tmp_path, "studio")])
    reason = watcher.degraded
    assert reason is not None and "watch limit reached watching volume studio" in reason
    assert "sysctl fs.inotify.max_user_watches=" in reason
    assert "/etc/sysctl.d/" in reason
    assert watcher.watching == set()
    assert not made[0].reader.is_alive()  # the failed observer's inotify reader was stopped


def test_a_volume_unplugged_between_probe_and_watch_is_skipped_without_degrading(tmp_path):
    status = make_volume(tmp_path, "studio")
    gone = VolumeStatus(name="gone", path=tmp_path / "nowhere", online=True, volume_id="x")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
    watcher.start([gone, status])
    try:
        assert watcher.watching == {"studio"}
        assert watcher.degraded is None
    finally:
        watcher.stop()


def test_the_watch_limit_reached_below_the_root_is_noticed(tmp_path):
    """watchdog registers the root's watch, then silently skips the folders it has no watch
    left for. Run where the limit can be lowered for real: a user namespace of its own."""
    if subprocess.run(["unshare", "-U", "-r", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a user namespace here (unshare -U -r)")
    script = f"""
import os, sys
sys.path[:0] = {sys.path!r}
from test_watch import *
from pathlib import Path
tmp = Path({str(tmp_path)!r})
status = make_volume(tmp, "studio")
for i in range(30):
    os.makedirs(status.path / os.fsdecode(SHOOT) / f"sub{{i}}")
watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
watcher.start([status])
print("watching", sorted(watcher.watching))
print("degraded", watcher.degraded)
watcher.stop()
"""
    out = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c",
         f"echo 20 > /proc/sys/user/max_inotify_watches && exec {sys.executable} -c \"$0\"",
         script], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    assert "watching ['studio']" in out.stdout  # the root was watched: no error from schedule
    assert "degraded inotify watch limit reached watching volume studio" in out.stdout
    assert "max_user_watches" in out.stdout


def test_an_inotify_queue_overflow_degrades_to_quick_scans(tmp_path):
    """A real overflow: the observer's inotify reader is held on its first event while more
    events than the kernel queues (fs.inotify.max_queued_events) are made."""
    held, release = threading.Event(), threading.Event()

    class Stalled(_Observer):
        def __init__(self, on_overflow):
            super().__init__(on_overflow)
            handle = self.reader.handle_event

            def stall(event):
                if not held.is_set():
                    held.set()
                    release.wait(30)
                handle(event)

            self.reader.handle_event = stall

    status = make_volume(tmp_path, "studio")
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY, observer_factory=Stalled)
    watcher.start([status])
    try:
        folder = status.path / os.fsdecode(SHOOT)
        write(folder / "first.jpg")
        wait_for(held.is_set, "the reader held")
        queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        for i in range(queued // 2 + 100):  # each new file: IN_CREATE and IN_CLOSE_WRITE
            write(folder / f"{i}.jpg", b"")
        assert watcher.degraded is None
        release.set()
        reason = wait_for(lambda: watcher.degraded, "degraded")
        assert "inotify event queue overflowed on volume studio" in reason
        assert "sysctl fs.inotify.max_queued_events=" in reason
    finally:
        release.set()
        watcher.stop()


TWICE = """
import sys, tempfile
if sys.argv[1] == "daemon":
    import archivekeeper.service.watch  # noqa: F401
from watchdog.events import FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver
folder = tempfile.mkdtemp()
observer = InotifyObserver()
observer.schedule(FileSystemEventHandler(), folder, recursive=True)
observer.start()
# what watchdog does for a folder created while it walks the parent: watch it a second time
next(iter(observer.emitters))._inotify._add_callback(folder.encode())
observer.stop()
observer.join()
"""


def test_a_folder_watched_twice_puts_no_warning_on_the_daemons_stderr(tmp_path):
    script = tmp_path / "twice.py"
    script.write_text(TWICE)
    plain = subprocess.run([sys.executable, str(script), "plain"], capture_output=True,
                           text=True, timeout=60)
    assert "already exists for watch" in plain.stderr  # watchdog does warn
    daemon = subprocess.run([sys.executable, str(script), "daemon"], capture_output=True,
                            text=True, timeout=60)
    assert daemon.returncode == 0 and daemon.stderr == ""


STOPPED = """\
import logging, sys
if sys.argv[1] == "daemon":
    import archivekeeper.service.watch  # noqa: F401
log = logging.getLogger("watchdog.observers.inotify")
log.error("InotifyEmitter.queue_events() called when the thread is inactive")
if sys.argv[1] == "daemon":
    log.error("inotify watch limit reached")  # any other error still shows
"""


# was: a SIGTERM while an observer's thread was in a read made watchdog log this error, raw on
#   the daemon's stderr (seen once in tests/safety/test_daemon_crash.py)
def test_an_observer_stopped_mid_read_puts_nothing_on_the_daemons_stderr(tmp_path):
    script = tmp_path / "stopped.py"
    script.write_text(STOPPED)
    plain = subprocess.run([sys.executable, str(script), "plain"], capture_output=True,
                           text=True, timeout=60)
    assert "called when the thread is inactive" in plain.stderr  # watchdog does log it
    daemon = subprocess.run([sys.executable, str(script), "daemon"], capture_output=True,
                            text=True, timeout=60)
    assert daemon.returncode == 0 and daemon.stderr == "inotify watch limit reached\n"


# was: the daemon rescanned "2024-05-12 Syva Asiakas" (300 nested folders) every ~2-5 s for
#   minutes, and no other folder's event came through (tests/safety/test_fuzz_daemon.py). A
#   folder created while watchdog walks its parent has its whole subtree walked again, each
#   folder in it watched a second time; watchdog 7.1 then builds a warning holding the repr of
#   every watched path of the volume (inotify_c.py:448-450), ~2 s per walk of that tree, while
#   the one observer thread holds back every later event.
def test_watching_a_deep_tree_again_builds_no_warning_of_every_watched_path(tmp_path):
    status = make_volume(tmp_path, "studio")
    top = os.fsencode(status.path) + b"/2024-05-12 Syva Asiakas"
    os.makedirs(top + b"/" + b"/".join([b"kansio"] * 300))
    watcher = Watcher(PATTERNS, Hints(debounce=30), lambda: TODAY)
    watcher.start([status])
    try:
        group = next(iter(watcher._observers["studio"][0].emitters))._inotify
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            group._add_all_callbacks(top + b"/kansio")  # what a late IN_CREATE of it does
        assert not caught, (len(caught), sum(len(str(w.message)) for w in caught))
        write(top + b"/" + b"/".join([b"kansio"] * 300) + b"/IMG.jpg")
        wait_for(lambda: b"2024-05-12 Syva Asiakas" in marked(watcher), "the deep file seen")
    finally:
        watcher.stop()
