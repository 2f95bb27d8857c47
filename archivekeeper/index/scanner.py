"""Walks online volumes into the index. Never deletes, never follows a symlink, never crosses
onto another filesystem or mount (a bind mount included) or into another volume.

A quick scan skips a shoot whose folders all kept their mtime since the last listing (a folder
whose mtime was within 2 s of its listing is recorded as "racy" and always re-listed: FAT keeps
mtimes to 2 s). `full` re-lists every folder and stats every file. A volume is scanned in one
transaction, committed only if its marker is still there at the end: a drive that goes away
mid-scan changes nothing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from archivekeeper.clock import filesystem_now_ns
from archivekeeper.core import naming
from archivekeeper.core.naming import EARLIEST_PLAUSIBLE
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
log = get_logger()


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

    def line(self) -> str:
        """One line that fits a terminal: the totals, then only the counts that are not 0."""
        parts = [f"{self.shoots} shoots", f"{self.files} files", human_bytes(self.bytes)]
        parts += [f"{n} {what}" for n, what in (
            (self.new, "new"), (self.changed, "changed"), (self.missing, "missing"),
            (len(self.offline), "offline volumes"), (self.unrecognised, "unrecognised folders"),
            (self.errors, "errors")) if n]
        return "scan: " + ", ".join(parts)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


class VolumeScan:
    """Scan one online volume into the store (the caller owns the transaction)."""

    def __init__(self, status: VolumeStatus, store: Store, patterns, *, full: bool,
                 today: date, now: datetime, exif_reader: Callable[[], object] | None,
                 progress: Callable[[int], None] | None = None, workers: int = 2):
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
        self.root = os.fsencode(str(status.path))
        self.summary = ScanSummary()
        self.newest_ns = 0
        self.start_ns = filesystem_now_ns()
        self.protected: list[bytes] = []

    def abs(self, rel: bytes) -> bytes:
        return self.root + b"/" + rel if rel else self.root

    def run(self) -> ScanSummary:
        """Find the shoot folders (skipping unchanged ones on a quick scan), then list and store
        the others."""
        store, name = self.store, self.status.name
        gen = store.next_gen()
        at = self.now.isoformat()
        self.seen: list[int] = []
        self.root_mount = mount_id(self.root)
        todo = self._find_shoots(gen)
        walk = walker.Walk(self.root, self.status.dev, self.start_ns - RACY_NS,
                           os.fsencode(MARKER), self.root_mount)
        jobs = [(rel, mtime_ns) for rel, _, mtime_ns, _ in todo]
        for (rel, verdict, _, shoot_id), listing in zip(
                todo, walker.listings(walk, jobs, self.workers), strict=True):
            self._store_shoot(rel, verdict, shoot_id, listing, gen, at)
        store.mark_seen(self.seen, gen)
        store.note_newest_mtime(name, self.newest_ns)
        missing, dropped = store.retire_unseen(name, gen, self.full, self.protected)
        store.forget_unrecognised(name, gen)
        self.summary.missing, self.summary.dropped = missing, dropped
        # for the weekly report: scan errors are otherwise only in the log
        store.set_meta(f"scan_errors:{name}", json.dumps(
            {"at": at, "errors": self.summary.errors, "full": self.full}))
        return self.summary

    def _find_shoots(self, gen: int) -> list[tuple[bytes, naming.ShootName, int, int | None]]:
        """Walk the containers; record unrecognised folders and unchanged shoots; return the
        shoots to list as (relpath, name, folder mtime_ns, shoot id or None if new)."""
        store, name = self.store, self.status.name
        ids = store.known_shoots(name)
        known_dirs = {} if self.full else store.shoot_dirs(name)
        root_dev = os.lstat(self.root).st_dev
        todo = []
        stack: list[tuple[bytes, tuple[str, ...]]] = [(b"", ())]
        while stack:
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
                    other_mount = mount_id(self.abs(child)) != self.root_mount
                except OSError as exc:
                    self._error("scan_unreadable_folder", child, exc.strerror)
                    self.protected.append(child)
                    continue
                if st.st_dev != root_dev or other_mount:
                    self._unrecognised(child, "another filesystem or mount is mounted here "
                                       "(not entered)", gen)
                    continue
                if os.path.lexists(self.abs(child) + b"/" + os.fsencode(MARKER)):
                    self._unrecognised(child, "another volume (has a volume marker; not entered)",
                                       gen)
                    continue
                self._saw_mtime(st.st_mtime_ns)
                try:
                    text = entry.name.decode("utf-8")
                except UnicodeDecodeError:
                    self._unrecognised(child, "folder name is not valid UTF-8", gen)
                    continue
                verdict = naming.classify(self.patterns, (*parts, text), self.today)
                if isinstance(verdict, naming.Container):
                    stack.append((child, (*parts, text)))
                elif not isinstance(verdict, naming.ShootName):
                    self._unrecognised(child, verdict.reason, gen)
                else:
                    known = ids.get(child)
                    if not self._skip_unchanged(known, verdict, known_dirs, child,
                                                st.st_mtime_ns):
                        todo.append((child, verdict, st.st_mtime_ns,
                                     known[0] if known else None))
        return todo

    def _saw_mtime(self, mtime_ns: int) -> None:
        """The newest plausible mtime of any folder or file seen: on a fresh index it stands in
        for the clock guard's mark, recognised shoots or not (a clock gone back makes dated
        folders look as if from the future)."""
        if mtime_ns >= PLAUSIBLE_NS:
            self.newest_ns = max(self.newest_ns, mtime_ns)

    def _error(self, event: str, rel: bytes, error: str | None) -> None:
        self.summary.errors += 1
        log.warning(event, volume=self.status.name, path=show_path(rel), error=error)

    def _unrecognised(self, rel: bytes, reason: str, gen: int) -> None:
        self.summary.unrecognised += 1
        self.store.record_unrecognised(self.status.name, rel, reason, gen)
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

    def _store_shoot(self, rel: bytes, name: naming.ShootName, shoot_id: int | None,
                     listing: walker.Listing, gen: int, at: str) -> None:
        store, summary = self.store, self.summary
        for event, path, error in listing.problems:
            if error:
                self._error(event, path, error)
            else:
                log.warning(event, volume=self.status.name, path=show_path(path))
        old = store.shoot(shoot_id) if shoot_id is not None else None
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
        new_id = store.upsert_shoot(self.status.name, rel, fields, gen, at, shoot_id)
        store.replace_files(new_id, self.status.name, listing.files, listing.dirs,
                            new=shoot_id is None)
        if old is None:
            summary.new += 1
        elif (old["files"], old["bytes"], old["newest_mtime_ns"], old["date"]) != (
                fields["files"], fields["bytes"], fields["newest_mtime_ns"], fields["date"]):
            summary.changed += 1
        self._count(fields["files"], fields["bytes"])

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
         now: datetime, exif_reader=None, progress=None,
         workers: int = 2) -> ScanSummary:
    """Scan every online volume of `statuses`; offline ones are reported, never touched. Shoot
    folders are listed in up to `workers` processes when there are many (walker.py)."""
    total = ScanSummary()
    store.prepare_for_bulk_writes()
    for status in statuses:
        if not status.online:
            total.offline.append(status.name)
            with store.transaction():
                store.set_volume_state(status.name, offline=True)
            continue
        try:
            with store.transaction():
                store.set_volume_state(status.name, offline=False)
                part = VolumeScan(status, store, patterns, full=full, today=today, now=now,
                                  exif_reader=exif_reader, progress=progress,
                                  workers=workers).run()
                try:
                    marker, _ = read_marker(status.path)
                except VolumeError:
                    marker = None
                if marker is None or marker["id"] != status.volume_id:
                    raise _VolumeVanished(f"{status.path}: the volume went away during the scan")
                store.mark_volume_seen(status.name, str(status.path), now, full)
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
    return total


class _VolumeVanished(Exception):
    pass
