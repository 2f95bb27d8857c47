"""Walks online volumes into the index. Never deletes, never follows a symlink, never crosses
onto another filesystem or mount (a bind mount included) or into another volume.

A quick scan skips a shoot whose folders all kept their mtime since the last listing (a folder
whose mtime was within 2 s of its listing is recorded as "racy" and always re-listed: FAT keeps
mtimes to 2 s). `full` re-lists every folder and stats every file.

The walk writes in short transactions (at most 100 shoots or 2,000 files each, a few ms),
so a command from a terminal never waits for a scan. Each one stores only shoots listed before
the volume was found still there, the same drive on the same mount (its marker, device and mount
id), and holds a shoot's row with its whole file list: a reader never sees a shoot half-listed.
What depends on the whole walk (marking unseen shoots missing, forgetting unrecognised folders
gone) is written last, only if the volume is still there then: a drive that goes away mid-scan
retires nothing. A scan killed part-way leaves true listings the next scan trusts or redoes.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from archivekeeper.clock import filesystem_now_ns
from archivekeeper.core import naming
from archivekeeper.core.naming import EARLIEST_PLAUSIBLE
from archivekeeper.core.report import size_text
from archivekeeper.index import walker
from archivekeeper.index.facts import PLAUSIBLE_NS, mtime_date
from archivekeeper.index.filelist import unpack_files
from archivekeeper.index.mounts import mount_id
from archivekeeper.index.store import Store
from archivekeeper.index.volumes import MARKER, MARKER_DIR, VolumeError, VolumeStatus, read_marker
from archivekeeper.logs import get_logger, show_path

EXIF_EXT = {"jpg", "jpeg", "tif", "tiff", "dng", "arw", "nef", "cr2", "orf", "rw2", "pef", "srw",
            "heic", "heif"}
EXIF_SAMPLE = 12
RACY_NS = 2_000_000_000
BATCH_FILES = 2000  # files per write transaction: ~1.5 ms median, ~55 ms worst at 100k files
BATCH_SHOOTS = 100
log = get_logger()


def _crash_after_commits() -> int | None:
    """Test hook: ARCHIVEKEEPER_SCAN_CRASH_AFTER=N kills the process right after the scan's Nth
    write transaction is committed (read once, at import)."""
    value = os.environ.get("ARCHIVEKEEPER_SCAN_CRASH_AFTER", "").strip()
    return int(value) if value.isdigit() else None


_CRASH_AFTER = _crash_after_commits()
_commits = 0


@dataclass
class ScanSummary:
    shoots: int = 0
    files: int = 0
    bytes: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    dropped: int = 0
    unrecognised: int = 0
    errors: int = 0
    offline: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    stopped: bool = False  # should_stop said so: what was written stands, nothing was retired

    def line(self) -> str:
        """One line that fits a terminal: the totals, then only the counts that are not 0."""
        parts = [f"{self.shoots} shoots", f"{self.files} files", human_bytes(self.bytes)]
        parts += [f"{n} {what}" for n, what in (
            (self.new, "new"), (self.changed, "changed"), (self.missing, "missing"),
            (len(self.offline), "offline volumes"), (self.unrecognised, "unrecognised folders"),
            (self.errors, "errors")) if n]
        return "scan: " + ", ".join(parts) + (" (stopped before the end)" if self.stopped else "")


human_bytes = size_text  # one way to write sizes, in the CLI as in the report


class VolumeScan:
    """Scan one online volume into the store, in short transactions of its own. `only`: the
    folders (relative to the volume root) to rescan, each a shoot, a folder in one, or a
    container whose shoots are looked at; None: the whole volume."""

    def __init__(self, status: VolumeStatus, store: Store, patterns, *, full: bool,
                 today: date, now: datetime, exif_reader: Callable[[], object] | None,
                 progress: Callable[[int], None] | None = None, workers: int = 2,
                 should_stop: Callable[[], bool] | None = None,
                 only: list[bytes] | None = None):
        self.status = status
        self.store = store
        self.patterns = patterns
        self.full = full
        self.today = today
        self.now = now  # first seen: the date of new shoots whose mtimes are implausible
        # today: the end of the plausible dates (folder, EXIF), tomorrow included
        self.exif_reader = exif_reader
        self.progress = progress or (lambda n: None)
        self.workers = workers
        self.should_stop = should_stop or (lambda: False)
        self.only = only
        self.stopped = False
        self.root = os.fsencode(str(status.path))
        self.summary = ScanSummary()
        self.newest_ns = 0
        self.start_ns = filesystem_now_ns()
        self.protected: list[bytes] = []
        self.seen: list[int] = []
        self.unrecognised: list[tuple[bytes, str]] = []
        self.scopes: list[bytes] | None = None  # where unseen shoots retire; None: everywhere

    def abs(self, rel: bytes) -> bytes:
        return self.root + b"/" + rel if rel else self.root

    def run(self) -> ScanSummary:
        """Find the shoot folders (skipping unchanged ones on a quick scan), then list and store
        the others a batch at a time; last, retire what the walk did not see. Raise
        _VolumeVanished if the volume is not the one probed when a batch is to be written."""
        with self.store.transaction():
            self.gen = self.store.next_gen()
        self.root_mount = mount_id(self.root)
        self.root_dev = os.lstat(self.root).st_dev
        self._check_volume()
        todo = self._find_shoots()
        walk = walker.Walk(self.root, self.status.dev, self.start_ns - RACY_NS,
                           os.fsencode(MARKER), self.root_mount)
        jobs = [(rel, mtime_ns) for rel, _, mtime_ns, _ in todo]
        at = self.now.isoformat()
        batch: list[tuple] = []
        files = 0
        found = walker.listings(walk, jobs, self.workers)
        try:
            for (rel, verdict, _, shoot_id), listing in zip(todo, found, strict=False):
                batch.append(self._prepare(rel, verdict, shoot_id, listing))
                files += listing.files[0]
                if files >= BATCH_FILES or len(batch) >= BATCH_SHOOTS:
                    self._write(batch, at)
                    batch, files = [], 0
                if self._stop():
                    break
        finally:
            found.close()  # stops the listing workers when the walk ends early
        self._write(batch, at)
        self._finish()
        return self.summary

    def _stop(self) -> bool:
        self.stopped = self.stopped or bool(self.should_stop())
        return self.stopped

    def _check_volume(self) -> None:
        """Raise _VolumeVanished unless the volume root is still the probed drive (marker id,
        device) on the same mount: what was listed before this came from it."""
        try:
            marker, dev = read_marker(self.status.path)
            same = (marker is not None and marker["id"] == self.status.volume_id
                    and dev == self.root_dev and mount_id(self.root) == self.root_mount)
        except (VolumeError, OSError):
            same = False
        if not same:
            raise _VolumeVanished(f"{self.status.path}: the volume went away during the scan")

    def _write(self, batch: list[tuple], at: str) -> None:
        """Store listed shoots, each row with its whole file list, in one transaction."""
        if not batch:
            return
        self._check_volume()
        store, name = self.store, self.status.name
        with store.transaction():
            for rel, fields, shoot_id, listing in batch:
                new_id = store.upsert_shoot(name, rel, fields, self.gen, at, shoot_id)
                store.replace_files(new_id, name, listing.files, listing.dirs,
                                    new=shoot_id is None)
        _committed()

    def _finish(self) -> None:
        """After the walk, if the volume is still there: mark the unchanged shoots seen, record
        the unrecognised folders, the newest mtime; unless stopped, shoots not seen (in the
        rescanned folders, with `only`) become missing, unrecognised folders gone are forgotten
        and the volume is recorded as seen (fully scanned, after a full scan of all of it)."""
        store, name = self.store, self.status.name
        self._check_volume()
        for i in range(0, len(self.seen), BATCH_SHOOTS * 10):
            with store.transaction():
                store.mark_seen(self.seen[i:i + BATCH_SHOOTS * 10], self.gen)
            _committed()
        with store.transaction():
            for rel, reason in self.unrecognised:
                store.record_unrecognised(name, rel, reason, self.gen)
            store.note_newest_mtime(name, self.newest_ns)
            store.set_volume_state(name, offline=False)
            if not self.stopped:
                missing, dropped = store.retire_unseen(name, self.gen, self.full, self.protected,
                                                       self.scopes)
                store.forget_unrecognised(name, self.gen, self.scopes)
                store.mark_volume_seen(name, str(self.status.path), self.now,
                                       self.full and self.only is None)
                self.summary.missing, self.summary.dropped = missing, dropped
            # for the weekly report: scan errors are otherwise only in the log
            store.set_meta(f"scan_errors:{name}", json.dumps(
                {"at": self.now.isoformat(), "errors": self.summary.errors, "full": self.full}))
        _committed()

    def _find_shoots(self) -> list[tuple[bytes, naming.ShootName, int, int | None]]:
        """Walk the containers (all, or those `only` names); note unrecognised folders and
        unchanged shoots; return the shoots to list as (relpath, name, folder mtime_ns, shoot id
        or None if new). Writes nothing."""
        store, name = self.store, self.status.name
        ids = store.known_shoots(name)
        known_dirs = {} if self.full else store.shoot_dirs(name)
        todo: dict[bytes, tuple] = {}
        stack: list[tuple[bytes, tuple[str, ...]]] = []
        if self.only is None:
            stack.append((b"", ()))
        else:
            self.scopes = []
            for rel in self.only:
                self.scopes.append(self._resolve(rel, stack, todo, ids))
        while stack and not self._stop():
            rel, parts = stack.pop()
            try:
                with os.scandir(self.abs(rel)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if rel == b"":
                    raise
                self._error("scan_unreadable_folder", rel, exc.strerror)
                self.protected.append(rel)
                continue
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if rel == b"" and entry.name == os.fsencode(MARKER_DIR):
                    continue
                child = rel + b"/" + entry.name if rel else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self._error("scan_unreadable_folder", child, exc.strerror)
                    self.protected.append(child)
                    continue
                found = self._classify(child, parts, st)
                if found is None or child in todo:
                    continue
                verdict, text = found
                if isinstance(verdict, naming.Container):
                    stack.append((child, (*parts, text)))
                    continue
                known = ids.get(child)
                if not self._skip_unchanged(known, verdict, known_dirs, child, st.st_mtime_ns):
                    todo[child] = (child, verdict, st.st_mtime_ns, known[0] if known else None)
        return list(todo.values())

    def _resolve(self, rel: bytes, stack: list, todo: dict, ids: dict) -> bytes:
        """Given a folder of `only`, put what to rescan for it on `stack` (a container) or in
        `todo` (the shoot it is or is in, re-listed whatever its mtimes); return the folder under
        which shoots not seen retire (a folder gone: every shoot that was under it)."""
        names = [p for p in rel.split(b"/") if p not in (b"", b".")]
        if b".." in names or rel.startswith(b"/"):
            raise ValueError(f"{show_path(rel)}: not a folder path inside the volume")
        here, parts = b"", ()
        for part in names:
            if here == b"" and part == os.fsencode(MARKER_DIR):
                return b"/"  # the marker folder: no shoot is under it
            child = here + b"/" + part if here else part
            try:
                st = os.lstat(self.abs(child))
            except FileNotFoundError:
                return child
            except OSError as exc:
                self._error("scan_unreadable_folder", child, exc.strerror)
                self.protected.append(child)
                return child
            if not stat.S_ISDIR(st.st_mode):
                return child
            found = self._classify(child, parts, st)
            if found is None:
                return child
            verdict, text = found
            if isinstance(verdict, naming.ShootName):
                known = ids.get(child)
                todo[child] = (child, verdict, st.st_mtime_ns, known[0] if known else None)
                return child
            here, parts = child, (*parts, text)
        stack.append((here, parts))
        return here

    def _classify(self, child: bytes, parts: tuple[str, ...], st: os.stat_result):
        """Given a folder met on the walk and its lstat, return (naming verdict, its name as
        text) for a container or a shoot; None for a folder recorded as unrecognised (another
        filesystem, mount or volume, a name that is not UTF-8 or matches no pattern) or
        unreadable."""
        try:
            other_mount = mount_id(self.abs(child)) != self.root_mount
        except OSError as exc:
            self._error("scan_unreadable_folder", child, exc.strerror)
            self.protected.append(child)
            return None
        if st.st_dev != self.root_dev or other_mount:
            self._unrecognised(child, "another filesystem or mount is mounted here (not entered)")
            return None
        if os.path.lexists(self.abs(child) + b"/" + os.fsencode(MARKER)):
            self._unrecognised(child, "another volume (has a volume marker; not entered)")
            return None
        self._saw_mtime(st.st_mtime_ns)
        try:
            text = child.rpartition(b"/")[2].decode("utf-8")
        except UnicodeDecodeError:
            self._unrecognised(child, "folder name is not valid UTF-8")
            return None
        verdict = naming.classify(self.patterns, (*parts, text), self.today)
        if not isinstance(verdict, naming.Container | naming.ShootName):
            self._unrecognised(child, verdict.reason)
            return None
        return verdict, text

    def _saw_mtime(self, mtime_ns: int) -> None:
        """The newest plausible mtime of any folder or file seen: on a fresh index it stands in
        for the clock guard's mark, recognised shoots or not (a clock gone back makes dated
        folders look as if from the future)."""
        if mtime_ns >= PLAUSIBLE_NS:
            self.newest_ns = max(self.newest_ns, mtime_ns)

    def _error(self, event: str, rel: bytes, error: str | None) -> None:
        self.summary.errors += 1
        log.warning(event, volume=self.status.name, path=show_path(rel), error=error)

    def _unrecognised(self, rel: bytes, reason: str) -> None:
        self.summary.unrecognised += 1
        self.unrecognised.append((rel, reason))
        log.info("scan_unrecognised_folder", volume=self.status.name, path=show_path(rel),
                 reason=reason)

    def _skip_unchanged(self, known, name: naming.ShootName, known_dirs, shoot_rel: bytes,
                        shoot_mtime_ns: int) -> bool:
        """A known shoot whose folders all kept their mtimes, still named the same: counted as
        seen, not listed again. shoot_mtime_ns: the shoot folder's own, just read."""
        if not known or known[0] not in known_dirs:
            return False
        shoot_id, customer, shoot_type, files, nbytes = known
        if (customer, shoot_type) != (name.customer, name.type):
            return False
        for rel, mtime_ns in known_dirs[shoot_id]:
            if mtime_ns < 0:
                return False
            if rel == shoot_rel:
                if mtime_ns != shoot_mtime_ns:
                    return False
                continue
            try:
                st = os.lstat(self.abs(rel))
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode) or st.st_mtime_ns != mtime_ns:
                return False
        self.seen.append(shoot_id)
        self._count(files, nbytes)
        return True

    def _prepare(self, rel: bytes, name: naming.ShootName, shoot_id: int | None,
                 listing: walker.Listing) -> tuple:
        """Given a listed shoot, return what _write stores: (relpath, shoots fields, id or None,
        listing). Dates it (folder name, EXIF, mtimes), outside any transaction."""
        for event, path, error in listing.problems:
            if error:
                self._error(event, path, error)
            else:
                log.warning(event, volume=self.status.name, path=show_path(path))
        old = self.store.shoot(shoot_id) if shoot_id is not None else None
        shoot_date, source = name.date, "folder"
        if shoot_date is None:
            shoot_date, source = self._exif_date(listing), "exif"
            if shoot_date is None:
                shoot_date, source = mtime_date(listing.newest_ns), "mtime"
                if shoot_date < EARLIEST_PLAUSIBLE:
                    # a camera clock never set: the later date, the day we first saw the shoot
                    shoot_date = (date.fromisoformat(old["first_seen"][:10]) if old
                                  else self.now.date())
        fields = {
            "customer": name.customer, "customer_key": name.customer_key,
            "date": shoot_date.isoformat(), "date_source": source, "type": name.type,
            "files": listing.files[0], "bytes": listing.nbytes,
            "newest_mtime_ns": listing.newest_ns, "incomplete": int(listing.incomplete),
        }
        self._saw_mtime(listing.newest_ns)
        summary = self.summary
        if old is None:
            summary.new += 1
        elif (old["files"], old["bytes"], old["newest_mtime_ns"], old["date"]) != (
                fields["files"], fields["bytes"], fields["newest_mtime_ns"], fields["date"]):
            summary.changed += 1
        self._count(fields["files"], fields["bytes"])
        return rel, fields, shoot_id, listing

    def _count(self, files: int, nbytes: int) -> None:
        self.summary.shoots += 1
        self.summary.files += files
        self.summary.bytes += nbytes
        self.progress(files)

    def _exif_date(self, listing: walker.Listing) -> date | None:
        """Latest plausible EXIF DateTimeOriginal among a sample of the shoot's images."""
        if self.exif_reader is None:
            return None
        candidates = [f[0] for f in unpack_files(*listing.files)
                      if f[4] in ("image", "raw") and f[0].rsplit(b".", 1)[-1].lower()
                      .decode("ascii", "replace") in EXIF_EXT]  # sorted: stored by relpath
        if not candidates:
            return None
        step = max(1, len(candidates) // EXIF_SAMPLE)
        sample = candidates[::step][:EXIF_SAMPLE] + [candidates[-1]]
        dates = self.exif_reader().read_dates(self.abs(p) for p in dict.fromkeys(sample))
        latest_ok = self.today + timedelta(days=1)
        plausible = [d.date() for d in dates.values()
                     if d is not None and EARLIEST_PLAUSIBLE <= d.date() <= latest_ok]
        return max(plausible, default=None)


def scan(statuses: list[VolumeStatus], store: Store, patterns, *, full: bool, today: date,
         now: datetime, exif_reader=None, progress=None, workers: int = 2,
         should_stop: Callable[[], bool] | None = None,
         only: dict[str, list[bytes]] | None = None) -> ScanSummary:
    """Scan every online volume of `statuses`; offline ones are reported, never touched. Shoot
    folders are listed in up to `workers` processes when there are many (walker.py).

    only: {volume name: [folder relpath, ...]} rescans just those folders (a shoot, a folder in
    one, or a container, whose new shoots are found) of just those volumes; shoots elsewhere
    are neither listed nor retired. should_stop: asked between shoots; when it says True the
    scan ends with what it wrote (consistent, nothing retired) and the summary says stopped.
    progress(files): called outside any transaction after each shoot."""
    total = ScanSummary()
    store.prepare_for_bulk_writes()
    for status in statuses:
        if only is not None and status.name not in only:
            continue
        if not status.online:
            total.offline.append(status.name)
            with store.transaction():
                store.set_volume_state(status.name, offline=True)
            continue
        if should_stop is not None and should_stop():
            total.stopped = True
            break
        volume_scan = VolumeScan(status, store, patterns, full=full, today=today, now=now,
                                 exif_reader=exif_reader, progress=progress, workers=workers,
                                 should_stop=should_stop,
                                 only=None if only is None else only[status.name])
        try:
            part = volume_scan.run()
        except (_VolumeVanished, OSError) as exc:
            message = exc.args[0] if isinstance(exc, _VolumeVanished) else (
                f"{status.path}: {exc.strerror}")
            log.warning("volume_vanished_mid_scan", volume=status.name, error=message)
            total.aborted.append(status.name)
            total.offline.append(status.name)
            total.errors += 1
            continue
        for name in ("shoots", "files", "bytes", "new", "changed", "missing", "dropped",
                     "unrecognised", "errors"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        if volume_scan.stopped:
            total.stopped = True
            break
    return total


def _committed() -> None:
    global _commits
    _commits += 1
    if _commits == _CRASH_AFTER:
        os.kill(os.getpid(), signal.SIGKILL)


class _VolumeVanished(Exception):
    pass
